import { createHash } from 'node:crypto'
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs'
import { readHeader, type ParsedHeader } from '../dicom/dataset-reader.ts'
import { InflatingCursor } from '../dicom/inflated-source.ts'
import { encodeElement, elementHeader } from '../dicom/element-writer.ts'
import { TransferSyntax, tag } from '../dicom/tags.ts'
import { DicomMalformedError, StoredFileCorruptError } from '../errors.ts'
import { LOSSY_SYNTAXES, decodeFrame, loadDecoders, type DecodedFrame } from './codecs.ts'
import { TranscodeFailedError, TranscodeUnsupportedError } from './errors.ts'
import { openFrames, type FrameSource } from './frame-reader.ts'
import { canProduce } from './target-syntax.ts'
import { ITEM, ITEM_END, LONG_VRS, SEQUENCE_END, UNDEFINED, toExplicit, toImplicit } from './vr-encoding.ts'

/*
 * A stored instance as a native dataset (Explicit or Implicit VR Little Endian), produced as it is
 * sent: the header's elements copied (or re-encoded in the other VR encoding, vr-encoding.ts),
 * Photometric Interpretation and Planar Configuration said as the decoder gives the pixels, then
 * Pixel Data of defined length, one decoded frame at a time. Only the header and one frame are in
 * memory, whatever the instance's size. The first frame is decoded before anything is produced, so the dataset's
 * length is known (a WADO-RS part's Content-Length) and a stored syntax without a decoder is
 * refused before the first byte. Elements after Pixel Data (trailing padding) are not carried.
 */

/** The native syntaxes an instance can be given in. */
export const NATIVE_TARGETS: ReadonlySet<string> = new Set([TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian])

export interface NativeDataset {
  readonly transferSyntaxUID: string
  /** bytes of the dataset (no File Meta) */
  readonly length: number
  /**
   * header, then each frame, as it is sent: frames are read asynchronously, each is decoded
   * synchronously, and the file's hash (when `sha256` was given) is checked by reading it
   * asynchronously after the last frame, so nothing damaged goes out whole
   */
  stream (): AsyncGenerator<Buffer>
  /** lets go of the file (also done when `stream()` ends) */
  close (): void
}

export interface NativeDatasetInit {
  /** Explicit (default) or Implicit VR Little Endian */
  transferSyntaxUID?: string
  /** the stored file's SHA-256: checked after the last frame, so nothing damaged goes out whole */
  sha256?: string
  /**
   * the dataset's elements before Pixel Data as they should go out (a reconciled header), in the
   * stored file's VR encoding, instead of the stored ones
   */
  header?: Buffer
}

const PIXEL_DATA = tag(0x7FE0, 0x0010)
const PHOTOMETRIC = tag(0x0028, 0x0004)
const PLANAR = tag(0x0028, 0x0006)
const LOSSY_IMAGE_COMPRESSION = tag(0x0028, 0x2110)
/** Extended Offset Table and its lengths: they describe fragments the native dataset no longer has. */
const DROPPED = new Set([tag(0x7FE0, 0x0001), tag(0x7FE0, 0x0002)])

/** Opens the stored file at `path` as a native dataset; decodes frame 1 to learn its layout. */
export async function openNativeDataset (path: string, init: NativeDatasetInit = {}): Promise<NativeDataset> {
  const target = init.transferSyntaxUID ?? TransferSyntax.ExplicitVRLittleEndian
  if (!NATIVE_TARGETS.has(target)) throw new Error(`${target} is not a native target syntax`)
  const parsed = readHeader(path)
  if (parsed.pixelDataOffset === undefined) return headerOnly(path, parsed, target, init)
  const source = await openFrames(path, { header: parsed })
  try {
    if (!canProduce(source.transferSyntaxUID, target)) {
      throw new TranscodeUnsupportedError(source.sopInstanceUID, source.transferSyntaxUID, `it cannot be given in ${target} here`)
    }
    if (source.encapsulated) await loadDecoders()
    const first = await decodeFrame(source, 1)
    return new Transcoded(path, source, first, target, init)
  } catch (err) {
    await source.close()
    throw err
  }
}

/** A dataset opened but never read nor closed (its requester went away first) still lets go of its file. */
const unclosed = new FinalizationRegistry<FrameSource>((source) => { source.close().catch(() => {}) })

class Transcoded implements NativeDataset {
  readonly transferSyntaxUID: string
  readonly length: number
  private readonly header: Buffer
  private readonly pixelBytes: number
  private first: DecodedFrame | undefined
  /** what frame 1 decoded as: every other frame must decode alike */
  private readonly photometric: string
  private readonly planar: number
  private closed = false
  private readonly path: string
  private readonly source: FrameSource
  private readonly sha256: string | undefined

  constructor (path: string, source: FrameSource, first: DecodedFrame, target: string, init: NativeDatasetInit) {
    this.path = path
    this.source = source
    this.sha256 = init.sha256
    this.transferSyntaxUID = target
    this.first = first
    this.photometric = first.photometricInterpretation
    this.planar = first.planarConfiguration
    this.pixelBytes = source.nativeFrameBytes * source.layout.frames
    const elements = init.header === undefined
      ? { bytes: storedHeaderBytes(path, source), base: source.header.datasetOffset, spans: source.header.spans, implicit: source.transferSyntaxUID === TransferSyntax.ImplicitVRLittleEndian }
      : explicitElements(init.header, source.transferSyntaxUID === TransferSyntax.ImplicitVRLittleEndian)
    this.header = nativeHeader(elements, source, first, target === TransferSyntax.ImplicitVRLittleEndian, this.pixelBytes)
    this.length = this.header.length + this.pixelBytes + (this.pixelBytes % 2)
    unclosed.register(this, source, this)
  }

  async * stream (): AsyncGenerator<Buffer> {
    yield * this.produce()
    if (this.sha256 !== undefined) await verifyStreaming(this.path, this.sha256)
  }

  private async * produce (): AsyncGenerator<Buffer> {
    try {
      yield this.header
      const frames = this.source.layout.frames
      for (let n = 1; n <= frames; n++) {
        const frame = n === 1 && this.first !== undefined ? this.first : await decodeFrame(this.source, n)
        this.first = undefined
        if (n > 1 && (frame.photometricInterpretation !== this.photometric || frame.planarConfiguration !== this.planar)) {
          throw new TranscodeFailedError(this.source.sopInstanceUID, n, new Error(`it decodes as ${frame.photometricInterpretation}, frame 1 as ${this.photometric}`))
        }
        yield frame.pixels
      }
      // Pixel Data's value has even length (PS3.5 7.1.1).
      if (this.pixelBytes % 2 === 1) yield Buffer.alloc(1)
    } finally {
      this.close()
    }
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    unclosed.unregister(this)
    this.source.close().catch(() => {})
  }
}

/**
 * An instance without pixel data (a report, a document): its elements re-encoded whole (a header
 * is at most 64 MiB, the header walk's limit).
 */
function headerOnly (path: string, parsed: ParsedHeader, target: string, init: NativeDatasetInit): NativeDataset {
  const sopInstanceUID = parsed.dataset.get(tag(0x0008, 0x0018))?.value?.toString('latin1').replace(/[\0 ]+$/, '') ?? '?'
  if (!canProduce(parsed.transferSyntaxUID, target)) {
    throw new TranscodeUnsupportedError(sopInstanceUID, parsed.transferSyntaxUID, `it cannot be given in ${target} here`)
  }
  const stored = init.header ?? storedBytes(path, parsed)
  const bytes = reencode(stored, parsed.transferSyntaxUID === TransferSyntax.ImplicitVRLittleEndian, target === TransferSyntax.ImplicitVRLittleEndian)
  return {
    transferSyntaxUID: target,
    length: bytes.length,
    async * stream () {
      yield bytes
      if (init.sha256 !== undefined) await verifyStreaming(path, init.sha256)
    },
    close () {}
  }
}

/** Hashes the stored file as a stream and throws when it no longer matches. */
async function verifyStreaming (path: string, sha256: string): Promise<void> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer)
  if (hash.digest('hex') !== sha256) throw new StoredFileCorruptError(sha256)
}

/** The stored header (dataset elements before Pixel Data), as the file holds them (inflated if deflated). */
function storedHeaderBytes (path: string, source: FrameSource): Buffer {
  return storedBytes(path, source.header)
}

function storedBytes (path: string, header: ParsedHeader): Buffer {
  const length = header.headerEnd - header.datasetOffset
  const fd = openSync(path, 'r')
  try {
    if (header.deflated) return Buffer.from(new InflatingCursor(fd, fstatSync(fd).size, header.datasetOffset, Infinity).bytes(length))
    const bytes = Buffer.allocUnsafe(length)
    let read = 0
    while (read < length) {
      const n = readSync(fd, bytes, read, length - read, header.datasetOffset + read)
      if (n === 0) throw new DicomMalformedError('the file shrank while its header was read')
      read += n
    }
    return bytes
  } finally {
    closeSync(fd)
  }
}

/** Elements in one VR encoding to another (values are the same little endian bytes). */
function reencode (bytes: Buffer, fromImplicit: boolean, toImplicitVr: boolean): Buffer {
  if (fromImplicit === toImplicitVr) return bytes
  return toImplicitVr ? toImplicit(bytes) : toExplicit(bytes)
}

/** Header elements to copy from: bytes, the position `bytes` starts at, and each top-level element's span. */
interface HeaderElements {
  bytes: Buffer
  base: number
  /** true when `bytes` are Implicit VR Little Endian */
  implicit: boolean
  spans: ReadonlyMap<number, { start: number, end: number }>
}

/** Given header elements (a reconciled header, in the stored file's VR encoding) as explicit VR elements with their spans. */
function explicitElements (given: Buffer, implicit: boolean): HeaderElements {
  const bytes = implicit ? toExplicit(given) : given
  return { bytes, base: 0, spans: topLevelSpans(bytes), implicit: false }
}

/** Each top-level element's span in explicit VR little endian `bytes` (elements before Pixel Data). */
function topLevelSpans (bytes: Buffer): Map<number, { start: number, end: number }> {
  const spans = new Map<number, { start: number, end: number }>()
  let at = 0
  /** Moves `at` past one element (or item, or delimiter) and its nested content. */
  const skipElement = (): number => {
    const t = ((bytes.readUInt16LE(at) << 16) | bytes.readUInt16LE(at + 2)) >>> 0
    if (t === ITEM || t === ITEM_END || t === SEQUENCE_END) {
      const length = bytes.readUInt32LE(at + 4)
      at += 8
      if (t === ITEM && length === UNDEFINED) while (skipElement() !== ITEM_END);
      else if (t === ITEM) at += length
      return t
    }
    const vr = bytes.toString('latin1', at + 4, at + 6)
    const long = LONG_VRS.has(vr)
    const length = long ? bytes.readUInt32LE(at + 8) : bytes.readUInt16LE(at + 6)
    at += long ? 12 : 8
    if (length === UNDEFINED) while (skipElement() !== SEQUENCE_END);
    else at += length
    return t
  }
  while (at + 8 <= bytes.length) {
    const start = at
    const t = skipElement()
    spans.set(t, { start, end: at })
  }
  return spans
}

/** The native header: stored elements in tag order, the image pixel ones as decoded, Pixel Data's element header last. */
function nativeHeader (elements: HeaderElements, source: FrameSource, first: DecodedFrame, implicit: boolean, pixelBytes: number): Buffer {
  const { bytes: stored, base, spans } = elements
  const replaced = new Map<number, Buffer>()
  replaced.set(PHOTOMETRIC, encodeElement(PHOTOMETRIC, 'CS', first.photometricInterpretation, { implicit }))
  if (source.layout.samplesPerPixel > 1) replaced.set(PLANAR, encodeElement(PLANAR, 'US', u16(first.planarConfiguration), { implicit }))
  if (LOSSY_SYNTAXES.has(source.transferSyntaxUID) && !spans.has(LOSSY_IMAGE_COMPRESSION)) {
    replaced.set(LOSSY_IMAGE_COMPRESSION, encodeElement(LOSSY_IMAGE_COMPRESSION, 'CS', '01', { implicit }))
  }
  const tags = [...new Set([...spans.keys(), ...replaced.keys()])].filter((t) => !DROPPED.has(t)).sort((a, b) => a - b)
  const out: Buffer[] = []
  for (const t of tags) {
    const mine = replaced.get(t)
    if (mine !== undefined) {
      out.push(mine)
      continue
    }
    const span = spans.get(t)!
    const bytes = stored.subarray(span.start - base, span.end - base)
    out.push(reencode(bytes, elements.implicit, implicit))
  }
  const vr = source.layout.bitsAllocated > 8 ? 'OW' : 'OB'
  out.push(elementHeader(PIXEL_DATA, vr, pixelBytes + (pixelBytes % 2), implicit))
  return Buffer.concat(out)
}

function u16 (value: number): Buffer {
  const b = Buffer.alloc(2)
  b.writeUInt16LE(value, 0)
  return b
}

