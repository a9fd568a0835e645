import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs'
import { Readable } from 'node:stream'
import { createInflateRaw } from 'node:zlib'
import { Inflate, constants } from 'pako'
import { DicomHeaderTooLargeError, DicomMalformedError, DicomTruncatedError } from '../errors.ts'
import type { ByteCursor } from './byte-source.ts'

/*
 * Deflated Explicit VR Little Endian (PS3.5 A.5): everything after the File Meta group is one raw
 * deflate stream (RFC 1951, no zlib header). The header walk is synchronous (a dozen callers read a
 * header inside one step), and node:zlib's synchronous inflate is one-shot (it closes its engine
 * after one call), so the walk inflates with pako's streaming inflater, a few KiB of input at a
 * time, keeping only the bytes it has not walked past. Byte ranges served later (bulk data, frames,
 * documents) are streamed through node:zlib's createInflateRaw.
 */

/** Compressed bytes fed per step: deflate expands at most ~1032:1, so one step yields at most ~4 MiB. */
const INPUT_CHUNK = 4 * 1024
const OUTPUT_CHUNK = 64 * 1024

/**
 * A cursor over the inflated dataset of a deflated file. Positions count as if the file held the
 * inflated dataset right after its File Meta (so offsets read like those of any other file), and
 * nothing past `limit` is ever inflated: a small file cannot make the walk inflate gigabytes.
 */
export class InflatingCursor implements ByteCursor {
  readonly size = Infinity
  position: number
  littleEndian = true
  private readonly fd: number
  private readonly fileSize: number
  private readonly limit: number
  private readonly inflater: Inflate
  private compressedPosition: number
  /** logical position just past the last inflated byte */
  private produced: number
  private window: Buffer = Buffer.alloc(0)
  private windowStart: number
  private pieces: Buffer[] = []
  /** logical position just past the last byte kept (window and pieces) */
  private keptEnd: number
  private ended = false
  private failure: string | undefined

  constructor (fd: number, fileSize: number, datasetOffset: number, limit: number) {
    this.fd = fd
    this.fileSize = fileSize
    this.limit = limit
    this.position = datasetOffset
    this.compressedPosition = datasetOffset
    this.produced = datasetOffset
    this.windowStart = datasetOffset
    this.keptEnd = datasetOffset
    this.inflater = new Inflate({ raw: true, chunkSize: OUTPUT_CHUNK })
    this.inflater.onData = (chunk) => { this.take(chunk as Uint8Array) }
    this.inflater.onEnd = (status) => {
      this.ended = true
      if (status !== constants.Z_OK) this.failure = this.inflater.msg === '' ? `zlib status ${status}` : this.inflater.msg
    }
  }

  /** Bytes left: exact once the stream has ended, else at least 8 (all the walk ever asks about). */
  remaining (): number {
    this.inflateTo(this.position + 8)
    return this.produced - this.position
  }

  bytes (length: number): Buffer {
    const out = this.peek(length)
    this.position += length
    return out
  }

  peek (length: number): Buffer {
    const end = this.position + length
    this.inflateTo(end)
    this.checkEnd(end)
    if (this.pieces.length > 0) this.collect()
    const start = this.position - this.windowStart
    return this.window.subarray(start, start + length)
  }

  skip (length: number): void {
    const end = this.position + length
    // Move first: what is inflated on the way is dropped as it comes, never kept.
    this.position = end
    this.inflateTo(end)
    this.checkEnd(end)
  }

  u16 (): number {
    const b = this.bytes(2)
    return this.littleEndian ? b.readUInt16LE(0) : b.readUInt16BE(0)
  }

  u32 (): number {
    const b = this.bytes(4)
    return this.littleEndian ? b.readUInt32LE(0) : b.readUInt32BE(0)
  }

  private checkEnd (end: number): void {
    if (this.produced < end) throw new DicomTruncatedError(`the deflated dataset ends at inflated byte ${this.produced}, inside an element that needs ${end}`)
  }

  private inflateTo (end: number): void {
    if (end > this.limit) throw new DicomHeaderTooLargeError(`the deflated dataset inflates past ${this.limit} bytes before its pixel data`)
    while (this.produced < end && !this.ended) this.feed()
    if (this.failure !== undefined) throw new DicomMalformedError(`the deflated dataset is not a valid deflate stream (${this.failure})`)
  }

  private feed (): void {
    const length = Math.min(INPUT_CHUNK, this.fileSize - this.compressedPosition)
    if (length <= 0) {
      // The file ended before the deflate stream did: whatever is missing is reported as truncation.
      this.ended = true
      return
    }
    const chunk = Buffer.allocUnsafe(length)
    let read = 0
    while (read < length) {
      const n = readSync(this.fd, chunk, read, length - read, this.compressedPosition + read)
      if (n === 0) throw new DicomTruncatedError('the file shrank while it was being read')
      read += n
    }
    this.compressedPosition += length
    this.inflater.push(chunk, constants.Z_SYNC_FLUSH)
  }

  /** Keeps what the walk has not yet passed; bytes skipped over are dropped as they are inflated. */
  private take (chunk: Uint8Array): void {
    const start = this.produced
    this.produced += chunk.length
    const from = Math.max(0, this.position - start)
    if (from >= chunk.length) return
    if (this.keptEnd !== start + from) {
      // the bytes before were skipped: start afresh here
      this.window = Buffer.alloc(0)
      this.pieces = []
      this.windowStart = start + from
    }
    this.pieces.push(Buffer.from(chunk.subarray(from)))
    this.keptEnd = this.produced
  }

  /** One buffer from the current position on, so the bytes walked past can be freed. */
  private collect (): void {
    const drop = Math.min(this.position - this.windowStart, this.window.length)
    this.window = Buffer.concat([this.window.subarray(drop), ...this.pieces])
    this.windowStart += drop
    this.pieces = []
  }
}

/**
 * A byte range of a deflated file's dataset, in the logical positions the cursor reports, streamed:
 * what comes before it is inflated and dropped, and inflating stops at its end.
 */
export function inflatedRange (path: string, datasetOffset: number, range: { offset: number, length: number }): Readable {
  return Readable.from(inflatedBytes(path, datasetOffset, range), { objectMode: false })
}

async function * inflatedBytes (path: string, datasetOffset: number, range: { offset: number, length: number }): AsyncGenerator<Buffer> {
  const end = range.offset + range.length
  if (range.length === 0) return
  const source = createReadStream(path, { start: datasetOffset, highWaterMark: 64 * 1024 })
  const inflate = createInflateRaw()
  source.on('error', (err) => inflate.destroy(err))
  source.pipe(inflate)
  let position = datasetOffset
  try {
    for await (const chunk of inflate as AsyncIterable<Buffer>) {
      const chunkEnd = position + chunk.length
      if (chunkEnd > range.offset) yield chunk.subarray(Math.max(0, range.offset - position), Math.min(chunk.length, end - position))
      position = chunkEnd
      if (position >= end) return
    }
  } catch (err) {
    throw new DicomMalformedError(`the deflated dataset cannot be inflated (${(err as Error).message})`)
  } finally {
    source.destroy()
    inflate.destroy()
  }
  throw new DicomTruncatedError(`the deflated dataset ends at inflated byte ${position}, before byte ${end}`)
}

/**
 * Proves a deflated file's dataset inflates at least to `end` (pixel data whole, as for any other
 * file) by inflating and dropping: the CPU cost of the instance, never its memory.
 */
export function checkInflatesTo (path: string, datasetOffset: number, end: number): void {
  const fd = openSync(path, 'r')
  try {
    new InflatingCursor(fd, fstatSync(fd).size, datasetOffset, Infinity).skip(end - datasetOffset)
  } finally {
    closeSync(fd)
  }
}
