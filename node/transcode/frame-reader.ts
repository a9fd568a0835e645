import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { readHeader, type Dataset, type ParsedHeader } from '../dicom/dataset-reader.ts'
import { InflatingCursor } from '../dicom/inflated-source.ts'
import { Tags, TransferSyntax, tag } from '../dicom/tags.ts'
import { DicomMalformedError, DicomTruncatedError } from '../errors.ts'
import { TranscodeUnsupportedError } from './errors.ts'

/*
 * The frames of a stored instance, one at a time, never the whole pixel data: native pixel data by
 * offset, encapsulated pixel data by its fragments (grouped into frames by the Basic or Extended
 * Offset Table, else one fragment per frame, else by the codestream's start marker), a deflated
 * dataset by inflating up to the frame and dropping what comes before. Only item headers are read
 * to build the fragment table (16 bytes a fragment); a frame's bytes are read when it is asked for.
 *
 * Used by transcoding (node/transcode/native-dataset.ts) and free for anything else that needs one
 * frame (rendering): `openFrames(path)`, then `frame(n)` or `frames()`, then `close()`.
 */

/** What a decoder needs to know of the pixel data (Image Pixel module, PS3.3 C.7.6.3). */
export interface PixelLayout {
  rows: number
  columns: number
  samplesPerPixel: number
  bitsAllocated: number
  bitsStored: number
  highBit: number
  pixelRepresentation: number
  photometricInterpretation: string
  /** 0 interleaved (also when absent), 1 planar */
  planarConfiguration: number
  /** NumberOfFrames, 1 when absent */
  frames: number
}

export interface FrameSource {
  readonly sopInstanceUID: string
  /** the stored transfer syntax (frames of a deflated one are native) */
  readonly transferSyntaxUID: string
  /** true when frames are compressed bitstreams (one or more fragments joined), false when native pixels */
  readonly encapsulated: boolean
  readonly layout: PixelLayout
  /** the header walk the source was opened with (spans, offsets) */
  readonly header: ParsedHeader
  /** bytes of one native (decoded) frame: rows * columns * samples * bytes per sample */
  readonly nativeFrameBytes: number
  /** frame `n` (1 to layout.frames): its compressed bitstream, or its native pixels */
  frame (n: number): Buffer
  /** every frame in order; cheaper than frame(n) in a loop for a deflated dataset */
  frames (): Generator<Buffer>
  close (): void
}

const ITEM = tag(0xFFFE, 0xE000)
const SEQUENCE_END = tag(0xFFFE, 0xE0DD)
const EXTENDED_OFFSET_TABLE = tag(0x7FE0, 0x0001)
const T = {
  SamplesPerPixel: tag(0x0028, 0x0002),
  PhotometricInterpretation: tag(0x0028, 0x0004),
  PlanarConfiguration: tag(0x0028, 0x0006),
  BitsStored: tag(0x0028, 0x0101),
  HighBit: tag(0x0028, 0x0102),
  PixelRepresentation: tag(0x0028, 0x0103)
}

function u16 (dataset: Dataset, t: number): number | undefined {
  const value = dataset.get(t)?.value
  return value !== undefined && value.length >= 2 ? value.readUInt16LE(0) : undefined
}

function text (dataset: Dataset, t: number): string | undefined {
  const value = dataset.get(t)?.value
  return value?.toString('latin1').replace(/[\0 ]+$/, '').trim()
}

/** The Image Pixel attributes of a little endian header; undefined where the instance has no image. */
export function pixelLayoutOf (dataset: Dataset): PixelLayout | undefined {
  const rows = u16(dataset, Tags.Rows)
  const columns = u16(dataset, Tags.Columns)
  const bitsAllocated = u16(dataset, Tags.BitsAllocated)
  if (rows === undefined || columns === undefined || bitsAllocated === undefined) return undefined
  const bitsStored = u16(dataset, T.BitsStored) ?? bitsAllocated
  const frames = Number.parseInt(text(dataset, Tags.NumberOfFrames) ?? '1', 10)
  return {
    rows,
    columns,
    samplesPerPixel: u16(dataset, T.SamplesPerPixel) ?? 1,
    bitsAllocated,
    bitsStored,
    highBit: u16(dataset, T.HighBit) ?? bitsStored - 1,
    pixelRepresentation: u16(dataset, T.PixelRepresentation) ?? 0,
    photometricInterpretation: text(dataset, T.PhotometricInterpretation) ?? 'MONOCHROME2',
    planarConfiguration: u16(dataset, T.PlanarConfiguration) ?? 0,
    frames: Number.isFinite(frames) && frames > 0 ? frames : 1
  }
}

interface Fragment {
  /** file offset of the item's tag */
  itemStart: number
  /** file offset of its value */
  offset: number
  length: number
}

/** Opens the frames of the DICOM file at `path` (its header is walked unless given). Close it when done. */
export function openFrames (path: string, init: { header?: ParsedHeader } = {}): FrameSource {
  const header = init.header ?? readHeader(path)
  const sopInstanceUID = text(header.dataset, Tags.SOPInstanceUID) ?? '?'
  const syntax = header.transferSyntaxUID
  const refuse = (why: string): never => { throw new TranscodeUnsupportedError(sopInstanceUID, syntax, why) }
  if (syntax === TransferSyntax.ExplicitVRBigEndian) refuse('big endian pixel data is not read frame by frame')
  if (header.pixelDataOffset === undefined) refuse('it has no pixel data')
  const layout = pixelLayoutOf(header.dataset) ?? refuse('it has no Rows, Columns or Bits Allocated')
  if (layout.bitsAllocated % 8 !== 0) refuse(`Bits Allocated ${layout.bitsAllocated} is not a whole number of bytes`)
  const nativeFrameBytes = layout.rows * layout.columns * layout.samplesPerPixel * (layout.bitsAllocated / 8)
  const fd = openSync(path, 'r')
  try {
    const encapsulated = header.pixelDataLength === undefined && !header.deflated
    const common = { sopInstanceUID, transferSyntaxUID: syntax, encapsulated, layout, header, nativeFrameBytes }
    return encapsulated ? new EncapsulatedFrames(fd, common) : new NativeFrames(fd, common)
  } catch (err) {
    closeSync(fd)
    throw err
  }
}

function readAt (fd: number, offset: number, length: number): Buffer {
  const buffer = Buffer.allocUnsafe(length)
  let read = 0
  while (read < length) {
    const n = readSync(fd, buffer, read, length - read, offset + read)
    if (n === 0) throw new DicomTruncatedError(`the file ends at byte ${offset + read}, inside pixel data that needs ${offset + length}`)
    read += n
  }
  return buffer
}

type Common = Pick<FrameSource, 'sopInstanceUID' | 'transferSyntaxUID' | 'encapsulated' | 'layout' | 'header' | 'nativeFrameBytes'>

abstract class Frames implements FrameSource {
  readonly sopInstanceUID: string
  readonly transferSyntaxUID: string
  readonly encapsulated: boolean
  readonly layout: PixelLayout
  readonly header: ParsedHeader
  readonly nativeFrameBytes: number
  protected readonly fd: number
  private closed = false

  constructor (fd: number, common: Common) {
    this.fd = fd
    this.sopInstanceUID = common.sopInstanceUID
    this.transferSyntaxUID = common.transferSyntaxUID
    this.encapsulated = common.encapsulated
    this.layout = common.layout
    this.header = common.header
    this.nativeFrameBytes = common.nativeFrameBytes
  }

  protected check (n: number): void {
    if (!Number.isInteger(n) || n < 1 || n > this.layout.frames) throw new RangeError(`instance ${this.sopInstanceUID} has frames 1 to ${this.layout.frames}, not ${n}`)
  }

  abstract frame (n: number): Buffer

  * frames (): Generator<Buffer> {
    for (let n = 1; n <= this.layout.frames; n++) yield this.frame(n)
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    closeSync(this.fd)
  }
}

class NativeFrames extends Frames {
  private readonly frameBytes: number
  private readonly fileSize: number

  constructor (fd: number, common: Common) {
    super(fd, common)
    this.frameBytes = common.nativeFrameBytes
    this.fileSize = fstatSync(fd).size
    const length = common.header.pixelDataLength
    if (length !== undefined && length < this.frameBytes * this.layout.frames) {
      throw new DicomTruncatedError(`pixel data holds ${length} bytes, less than ${this.layout.frames} frames of ${this.frameBytes}`)
    }
  }

  frame (n: number): Buffer {
    this.check(n)
    const offset = this.header.pixelDataOffset! + (n - 1) * this.frameBytes
    if (!this.header.deflated) return readAt(this.fd, offset, this.frameBytes)
    const cursor = this.inflating()
    cursor.skip(offset - this.header.datasetOffset)
    return Buffer.from(cursor.bytes(this.frameBytes))
  }

  override * frames (): Generator<Buffer> {
    if (!this.header.deflated) {
      yield * super.frames()
      return
    }
    // One inflater for the whole walk: each frame is inflated once.
    const cursor = this.inflating()
    cursor.skip(this.header.pixelDataOffset! - this.header.datasetOffset)
    for (let n = 1; n <= this.layout.frames; n++) yield Buffer.from(cursor.bytes(this.frameBytes))
  }

  private inflating (): InflatingCursor {
    return new InflatingCursor(this.fd, this.fileSize, this.header.datasetOffset, Infinity)
  }
}

/** JPEG, JPEG-LS (SOI) and JPEG 2000 (SOC) codestreams start with these two bytes. */
const FRAME_START_MARKERS = new Set([0xFFD8, 0xFF4F])

class EncapsulatedFrames extends Frames {
  /** for each frame, the fragments it is made of */
  private readonly table: Fragment[][]

  constructor (fd: number, common: Common) {
    super(fd, common)
    const header = common.header
    const { offsetTable, fragments } = this.walk(header.pixelDataOffset!, header.fileSize)
    const starts = extendedOffsets(header.dataset) ?? (offsetTable.length > 0 ? offsetTable : undefined)
    this.table = this.group(fragments, starts, header.transferSyntaxUID)
  }

  /** Item headers from the Basic Offset Table item to the sequence delimiter. */
  private walk (start: number, fileSize: number): { offsetTable: number[], fragments: Fragment[] } {
    let position = start
    const next = (): { t: number, length: number } => {
      const head = readAt(this.fd, position, 8)
      position += 8
      return { t: tag(head.readUInt16LE(0), head.readUInt16LE(2)), length: head.readUInt32LE(4) }
    }
    const first = next()
    if (first.t !== ITEM) throw new DicomMalformedError('encapsulated pixel data does not start with the Basic Offset Table item')
    const table = readAt(this.fd, position, first.length)
    position += first.length
    const offsetTable: number[] = []
    for (let at = 0; at + 4 <= table.length; at += 4) offsetTable.push(table.readUInt32LE(at))
    const firstFragment = position
    const fragments: Fragment[] = []
    for (;;) {
      if (position + 8 > fileSize) throw new DicomTruncatedError('the file ends inside encapsulated pixel data')
      const itemStart = position
      const { t, length } = next()
      if (t === SEQUENCE_END) break
      if (t !== ITEM || length === 0xFFFFFFFF) throw new DicomMalformedError('encapsulated pixel data holds something other than fragment items')
      fragments.push({ itemStart: itemStart - firstFragment, offset: position, length })
      position += length
    }
    return { offsetTable, fragments }
  }

  private group (fragments: Fragment[], starts: number[] | undefined, syntax: string): Fragment[][] {
    const frames = this.layout.frames
    const unsupported = (why: string): never => { throw new TranscodeUnsupportedError(this.sopInstanceUID, syntax, why) }
    if (fragments.length === 0) unsupported('its encapsulated pixel data has no fragments')
    if (starts !== undefined) {
      if (starts.length !== frames) unsupported(`its offset table lists ${starts.length} frames, the header ${frames}`)
      return starts.map((from, i) => {
        const to = starts[i + 1] ?? Infinity
        return fragments.filter((f) => f.itemStart >= from && f.itemStart < to)
      })
    }
    if (frames === 1) return [fragments]
    if (fragments.length === frames) return fragments.map((f) => [f])
    // No offset table and more fragments than frames: a frame starts where a codestream does.
    const table: Fragment[][] = []
    for (const fragment of fragments) {
      const marker = fragment.length >= 2 ? readAt(this.fd, fragment.offset, 2).readUInt16BE(0) : -1
      if (FRAME_START_MARKERS.has(marker) || table.length === 0) table.push([fragment])
      else table.at(-1)!.push(fragment)
    }
    if (table.length !== frames) unsupported(`${fragments.length} fragments for ${frames} frames, and no offset table says which belong together`)
    return table
  }

  frame (n: number): Buffer {
    this.check(n)
    const parts = this.table[n - 1]!
    if (parts.length === 1) return readAt(this.fd, parts[0]!.offset, parts[0]!.length)
    return Buffer.concat(parts.map((f) => readAt(this.fd, f.offset, f.length)))
  }
}

/** Extended Offset Table (7FE0,0001), when the header kept its value: offsets of each frame's first fragment item. */
function extendedOffsets (dataset: Dataset): number[] | undefined {
  const value = dataset.get(EXTENDED_OFFSET_TABLE)?.value
  if (value === undefined || value.length === 0) return undefined
  const offsets: number[] = []
  for (let at = 0; at + 8 <= value.length; at += 8) offsets.push(Number(value.readBigUInt64LE(at)))
  return offsets
}
