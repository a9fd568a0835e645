import { pipeline, Readable, type Transform } from 'node:stream'
import { constants, createZstdCompress, createZstdDecompress } from 'node:zlib'

/*
 * Wire compression of one instance (data-path.ts, 'zstd'). Level 1: on the generated CT of
 * bench:wan about 2.9x at ~370 MB/s compressing and ~550 MB/s decompressing per core (level 3: 3.8x
 * at ~230 MB/s), so it pays where the link is slower than the CPU, and is off on fast ones.
 * Already compressed pixel data (JPEG, JPEG 2000, RLE, deflate...) is sent as it is.
 */

const ZSTD_LEVEL = 1
/** zlib's output chunks: large, so each fills most of a data frame (its default, 16 KiB, makes sixteen times the frames and writes) */
const CHUNK_BYTES = 256 * 1024 - 64

/** Transfer syntaxes whose pixel data is stored as it is: compression pays for these. */
const UNCOMPRESSED_SYNTAXES = new Set([
  '1.2.840.10008.1.2', // Implicit VR Little Endian
  '1.2.840.10008.1.2.1', // Explicit VR Little Endian
  '1.2.840.10008.1.2.2' // Explicit VR Big Endian (retired)
])

export function worthCompressing (transferSyntaxUID: string | undefined): boolean {
  return transferSyntaxUID === undefined || UNCOMPRESSED_SYNTAXES.has(transferSyntaxUID)
}

/** One zstd frame of `source`'s bytes, as they are read (bounded memory both ways). */
export function zstdCompressed (source: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  return through(source, createZstdCompress({ chunkSize: CHUNK_BYTES, params: { [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } }))
}

/**
 * The bytes of a zstd frame, as they are read. The caller bounds what it takes (the manifest's size),
 * so a small frame that expands without end is stopped there, not buffered.
 */
export function zstdDecompressed (source: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  return through(source, createZstdDecompress({ chunkSize: CHUNK_BYTES }))
}

/** `source` through `transform`: a failure on either side ends the iteration with it (the pipeline destroys both). */
function through (source: AsyncIterable<Uint8Array>, transform: Transform): AsyncIterable<Uint8Array> {
  return pipeline(Readable.from(source, { objectMode: false }), transform, () => {})
}
