import { open, type FileHandle } from 'node:fs/promises'
import { readHeader, type Dataset, type ParsedHeader } from '../dicom/dataset-reader.ts'
import { inflatedRange } from '../dicom/inflated-source.ts'
import { Tags, TransferSyntax, tag } from '../dicom/tags.ts'
import { DicomMalformedError, DicomTruncatedError } from '../errors.ts'
import { TranscodeUnsupportedError } from './errors.ts'

/*
 * The frames of a stored instance, one at a time, never the whole pixel data; the one reader of
 * frames for transcoding (native-dataset.ts, WADO-RS frames) and rendering (/rendered, /thumbnail).
 * Native pixel data is read by offset (big endian as stored), a deflated dataset by inflating up
 * to the frame as a stream (one inflater serves frames asked for in order). Encapsulated pixel
 * data: with a Basic or Extended Offset Table a frame's fragments are found by jumping to where it
 * starts; without one the item headers are walked once, on the first frame asked for, and grouped
 * one per frame or by where a codestream starts. All reads are asynchronous, so a late frame of a
 * large instance never holds up the event loop.
 *
 * `await openFrames(path)`, then `await frame(n)` or `for await (... of frames())`, then `close()`.
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

/** What a source knows of its instance once opened. */
export interface FrameSourceInfo {
  readonly sopInstanceUID: string
  /** the stored transfer syntax (frames of a deflated one are native) */
  readonly transferSyntaxUID: string
  /** true when frames are compressed bitstreams (one or more fragments joined), false when native pixels */
  readonly encapsulated: boolean
  readonly layout: PixelLayout
  /** the header walk the source was opened with (spans, offsets) */
  readonly header: ParsedHeader
  /**
   * bytes of one native frame: as stored for native pixel data (two samples a pixel for
   * YBR_*_422, PS3.3 C.7.6.3.1.2), as a decoder gives it for encapsulated pixel data
   */
  readonly nativeFrameBytes: number
}

export interface FrameSource extends FrameSourceInfo {
  /** frame `n` (1 to layout.frames): its compressed bitstream, or its native pixels */
  frame: (n: number) => Promise<Buffer>
  /** every frame in order */
  frames: () => AsyncGenerator<Buffer>
  close: () => Promise<void>
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

function u16 (dataset: Dataset, t: number, bigEndian: boolean): number | undefined {
  const value = dataset.get(t)?.value
  if (value === undefined || value.length < 2) return undefined
  return bigEndian ? value.readUInt16BE(0) : value.readUInt16LE(0)
}

function text (dataset: Dataset, t: number): string | undefined {
  const value = dataset.get(t)?.value
  return value?.toString('latin1').replace(/[\0 ]+$/, '').trim()
}

/** The Image Pixel attributes of a header; undefined where the instance has no image. */
export function pixelLayoutOf (header: ParsedHeader): PixelLayout | undefined {
  const { dataset } = header
  const bigEndian = header.transferSyntaxUID === TransferSyntax.ExplicitVRBigEndian
  const us = (t: number): number | undefined => u16(dataset, t, bigEndian)
  const rows = us(Tags.Rows)
  const columns = us(Tags.Columns)
  const bitsAllocated = us(Tags.BitsAllocated)
  if (rows === undefined || columns === undefined || bitsAllocated === undefined) return undefined
  const bitsStored = us(T.BitsStored) ?? bitsAllocated
  const frames = Number.parseInt(text(dataset, Tags.NumberOfFrames) ?? '1', 10)
  return {
    rows,
    columns,
    samplesPerPixel: us(T.SamplesPerPixel) ?? 1,
    bitsAllocated,
    bitsStored,
    highBit: us(T.HighBit) ?? bitsStored - 1,
    pixelRepresentation: us(T.PixelRepresentation) ?? 0,
    photometricInterpretation: text(dataset, T.PhotometricInterpretation) ?? 'MONOCHROME2',
    planarConfiguration: us(T.PlanarConfiguration) ?? 0,
    frames: Number.isFinite(frames) && frames > 0 ? frames : 1
  }
}

/** Bytes of one frame of native pixel data: frames follow each other without padding (PS3.5 8.1.1). */
function storedNativeFrameBytes (layout: PixelLayout, refuse: (why: string) => never): number {
  // YBR_FULL_422 and YBR_PARTIAL_422 keep one Cb and one Cr for every two pixels: two samples a pixel.
  const samples = layout.photometricInterpretation.endsWith('_422') ? 2 : layout.samplesPerPixel
  const bits = layout.rows * layout.columns * samples * layout.bitsAllocated
  if (bits === 0) refuse('its image has no rows, columns or bits allocated')
  if (bits % 8 !== 0 && layout.frames > 1) refuse('its frames of single bits do not end on a byte boundary')
  return Math.ceil(bits / 8)
}

/** What a header says of its frames, checked: refused when they cannot be read frame by frame. */
function frameSourceInfo (header: ParsedHeader): FrameSourceInfo {
  const sopInstanceUID = text(header.dataset, Tags.SOPInstanceUID) ?? '?'
  const syntax = header.transferSyntaxUID
  const refuse = (why: string): never => { throw new TranscodeUnsupportedError(sopInstanceUID, syntax, why) }
  if (header.pixelDataOffset === undefined) refuse('it has no pixel data')
  const layout = pixelLayoutOf(header) ?? refuse('it has no Rows, Columns or Bits Allocated')
  const encapsulated = header.pixelDataLength === undefined && !header.deflated
  let nativeFrameBytes: number
  if (encapsulated) {
    if (layout.bitsAllocated % 8 !== 0) refuse(`Bits Allocated ${layout.bitsAllocated} is not a whole number of bytes`)
    nativeFrameBytes = layout.rows * layout.columns * layout.samplesPerPixel * (layout.bitsAllocated / 8)
  } else {
    nativeFrameBytes = storedNativeFrameBytes(layout, refuse)
    const length = header.pixelDataLength
    if (length !== undefined && length < nativeFrameBytes * layout.frames) {
      throw new DicomTruncatedError(`pixel data holds ${length} bytes, less than ${layout.frames} frames of ${nativeFrameBytes}`)
    }
  }
  return { sopInstanceUID, transferSyntaxUID: syntax, encapsulated, layout, header, nativeFrameBytes }
}

/**
 * Where native frame `n` (1-based, checked by the caller) lies, in the positions the header counts
 * (the inflated dataset's, for a deflated file): for a caller that streams a large frame in pieces
 * rather than holding it (WADO-RS frames as stored). Undefined for encapsulated pixel data.
 */
export function nativeFrameRange (header: ParsedHeader, n: number): { offset: number, length: number } | undefined {
  const { encapsulated, nativeFrameBytes } = frameSourceInfo(header)
  if (encapsulated) return undefined
  return { offset: header.pixelDataOffset! + (n - 1) * nativeFrameBytes, length: nativeFrameBytes }
}

/** Opens the frames of the DICOM file at `path` (its header is walked unless given). Close it when done. */
export async function openFrames (path: string, init: { header?: ParsedHeader } = {}): Promise<FrameSource> {
  const header = init.header ?? readHeader(path)
  const info = frameSourceInfo(header)
  const { encapsulated } = info
  const handle = await open(path, 'r')
  try {
    const reading = !encapsulated
      ? header.deflated ? new InflatedFrames(path, info) : nativeFrames(handle, info)
      : await EncapsulatedFrames.open(handle, info)
    return frameSource(info, handle, reading)
  } catch (err) {
    await handle.close()
    throw err
  }
}

/** How frames of one kind of pixel data are read: `n` is checked by the source. */
interface FrameReading {
  read: (n: number) => Promise<Buffer>
  /** lets go of what the reading holds besides the file */
  release?: () => Promise<void>
}

function frameSource (info: FrameSourceInfo, handle: FileHandle, reading: FrameReading): FrameSource {
  const frames = info.layout.frames
  let closing: Promise<void> | undefined
  const frame = async (n: number): Promise<Buffer> => {
    if (!Number.isInteger(n) || n < 1 || n > frames) throw new RangeError(`instance ${info.sopInstanceUID} has frames 1 to ${frames}, not ${n}`)
    return reading.read(n)
  }
  return {
    ...info,
    frame,
    async * frames () {
      for (let n = 1; n <= frames; n++) yield await frame(n)
    },
    async close () {
      closing ??= (async () => {
        await reading.release?.()
        await handle.close()
      })()
      return closing
    }
  }
}

async function readAt (handle: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length)
  let read = 0
  while (read < length) {
    const { bytesRead } = await handle.read(buffer, read, length - read, offset + read)
    if (bytesRead === 0) throw new DicomTruncatedError(`the file ends at byte ${offset + read}, inside pixel data that needs ${offset + length}`)
    read += bytesRead
  }
  return buffer
}

/** Native frames: a byte range each. */
function nativeFrames (handle: FileHandle, { header, nativeFrameBytes }: FrameSourceInfo): FrameReading {
  return { read: async (n) => readAt(handle, header.pixelDataOffset! + (n - 1) * nativeFrameBytes, nativeFrameBytes) }
}

/**
 * Native frames of a deflated dataset: inflated as a stream from the dataset's start, the bytes
 * before the frame dropped. Frames asked for in order share one inflater, so each is inflated once.
 */
class InflatedFrames implements FrameReading {
  private readonly path: string
  private readonly info: FrameSourceInfo
  private inflating: { next: number, chunks: AsyncIterator<Buffer>, carry: Buffer } | undefined

  constructor (path: string, info: FrameSourceInfo) {
    this.path = path
    this.info = info
  }

  async read (n: number): Promise<Buffer> {
    const { header, layout, nativeFrameBytes: frameBytes } = this.info
    if (this.inflating?.next !== n) {
      await this.release()
      const range = { offset: header.pixelDataOffset! + (n - 1) * frameBytes, length: (layout.frames - n + 1) * frameBytes }
      const chunks = (inflatedRange(this.path, header.datasetOffset, range) as AsyncIterable<Buffer>)[Symbol.asyncIterator]()
      this.inflating = { next: n, chunks, carry: Buffer.alloc(0) }
    }
    const state = this.inflating!
    const parts: Buffer[] = [state.carry]
    let have = state.carry.length
    while (have < frameBytes) {
      const next = await state.chunks.next()
      if (next.done === true) throw new DicomTruncatedError(`the deflated dataset ends inside frame ${n}`)
      parts.push(next.value)
      have += next.value.length
    }
    const joined = parts.length === 1 ? parts[0]! : Buffer.concat(parts, have)
    state.carry = joined.subarray(frameBytes)
    state.next = n + 1
    return joined.subarray(0, frameBytes)
  }

  async release (): Promise<void> {
    const chunks = this.inflating?.chunks
    this.inflating = undefined
    await chunks?.return?.()
  }
}

interface Fragment {
  /** file offset of its value */
  offset: number
  length: number
}

/** Item header at `position`: its tag and length. */
async function itemAt (handle: FileHandle, position: number): Promise<{ t: number, length: number }> {
  const head = await readAt(handle, position, 8)
  return { t: tag(head.readUInt16LE(0), head.readUInt16LE(2)), length: head.readUInt32LE(4) }
}

class EncapsulatedFrames implements FrameReading {
  /** file offset of the first fragment's item, just past the Basic Offset Table */
  private readonly firstFragment: number
  /** where each frame's first fragment item starts, relative to `firstFragment`, from a table we trust */
  private readonly starts: number[] | undefined
  /** without a table: each frame's fragments, walked once when the first frame is asked for */
  private walked: Promise<Fragment[][]> | undefined

  private readonly handle: FileHandle
  private readonly info: FrameSourceInfo

  private constructor (handle: FileHandle, info: FrameSourceInfo, firstFragment: number, starts: number[] | undefined) {
    this.handle = handle
    this.info = info
    this.firstFragment = firstFragment
    this.starts = starts
  }

  /** Reads the Basic Offset Table item (its value only when it has one entry a frame). */
  static async open (handle: FileHandle, info: FrameSourceInfo): Promise<EncapsulatedFrames> {
    const position = info.header.pixelDataOffset!
    const bot = await itemAt(handle, position)
    if (bot.t !== ITEM) throw new DicomMalformedError('encapsulated pixel data does not start with the Basic Offset Table item')
    const frames = info.layout.frames
    const botValue = bot.length === 4 * frames ? await readAt(handle, position + 8, bot.length) : undefined
    const firstFragment = position + 8 + bot.length
    const starts = frameStarts(info.header.dataset, botValue, frames)
    // A table pointing past the end of the file is not the file's: its fragments are walked instead.
    const inFile = starts !== undefined && firstFragment + starts.at(-1)! + 8 <= info.header.fileSize
    return new EncapsulatedFrames(handle, info, firstFragment, inFile ? starts : undefined)
  }

  async read (n: number): Promise<Buffer> {
    const next = this.starts?.[n]
    if (this.starts !== undefined && next !== undefined) return this.between(n, this.firstFragment + this.starts[n - 1]!, this.firstFragment + next)
    const parts = this.starts === undefined
      ? (await (this.walked ??= this.walk()))[n - 1]!
      : await this.fragments(this.firstFragment + this.starts[n - 1]!, Infinity)
    if (parts.length === 0) throw new DicomMalformedError(`no fragment holds frame ${n}`)
    const bytes = await Promise.all(parts.map(async (f) => readAt(this.handle, f.offset, f.length)))
    return bytes.length === 1 ? bytes[0]! : Buffer.concat(bytes)
  }

  /** A frame the table bounds on both sides: its items read in one go (many small fragments are many reads otherwise). */
  private async between (n: number, from: number, to: number): Promise<Buffer> {
    const span = await readAt(this.handle, from, to - from)
    const values: Buffer[] = []
    for (let at = 0; at < span.length;) {
      if (at + 8 > span.length || span.readUInt16LE(at) !== 0xFFFE || span.readUInt16LE(at + 2) !== 0xE000) {
        throw new DicomMalformedError(`encapsulated pixel data holds something other than fragment items in frame ${n}`)
      }
      const length = span.readUInt32LE(at + 4)
      if (at + 8 + length > span.length) throw new DicomMalformedError(`a fragment of frame ${n} runs past where the offset table puts frame ${n + 1}`)
      values.push(span.subarray(at + 8, at + 8 + length))
      at += 8 + length
    }
    if (values.length === 0) throw new DicomMalformedError(`no fragment holds frame ${n}`)
    return values.length === 1 ? values[0]! : Buffer.concat(values)
  }

  /** Fragment items from `position` up to `end` (a next frame's start) or the sequence delimiter. */
  private async fragments (position: number, end: number): Promise<Fragment[]> {
    const found: Fragment[] = []
    while (position < end) {
      if (position + 8 > this.info.header.fileSize) throw new DicomTruncatedError('the file ends inside encapsulated pixel data')
      const item = await itemAt(this.handle, position)
      if (item.t === SEQUENCE_END) break
      if (item.t !== ITEM || item.length === 0xFFFFFFFF) throw new DicomMalformedError('encapsulated pixel data holds something other than fragment items')
      found.push({ offset: position + 8, length: item.length })
      position += 8 + item.length
    }
    return found
  }

  /** Without an offset table (PS3.5 A.4): one frame is all fragments, as many fragments as frames one each, else a frame starts where a codestream does. */
  private async walk (): Promise<Fragment[][]> {
    const frames = this.info.layout.frames
    const fragments = await this.fragments(this.firstFragment, Infinity)
    if (fragments.length === 0) throw new DicomMalformedError('encapsulated pixel data has no fragments')
    if (frames === 1) return [fragments]
    if (fragments.length === frames) return fragments.map((f) => [f])
    const table: Fragment[][] = []
    for (const fragment of fragments) {
      if (table.length === 0 || await this.startsCodestream(fragment)) table.push([fragment])
      else table.at(-1)!.push(fragment)
    }
    if (table.length !== frames) {
      throw new TranscodeUnsupportedError(this.info.sopInstanceUID, this.info.transferSyntaxUID, `${fragments.length} fragments for ${frames} frames, and no offset table says which belong together`)
    }
    return table
  }

  /** JPEG's SOI and the marker after it, JPEG 2000's SOC and SIZ, or a JP2 file's signature box: two bytes alone are too often inside a codestream. */
  private async startsCodestream (fragment: Fragment): Promise<boolean> {
    if (fragment.length < 4) return false
    const head = await readAt(this.handle, fragment.offset, Math.min(12, fragment.length))
    return (head[0] === 0xFF && head[1] === 0xD8 && head[2] === 0xFF) ||
      (head.readUInt16BE(0) === 0xFF4F && head.readUInt16BE(2) === 0xFF51) ||
      (head.length >= 12 && head.readUInt32BE(4) === 0x6A502020)
  }
}

/**
 * Where each frame's first fragment item starts, relative to the first fragment: the Extended
 * Offset Table's (7FE0,0001), else the Basic Offset Table's. A table without one entry a frame, or
 * that does not rise from 0, is not trusted: the fragments are then walked.
 */
function frameStarts (dataset: Dataset, botValue: Buffer | undefined, frames: number): number[] | undefined {
  const extended = dataset.get(EXTENDED_OFFSET_TABLE)?.value
  let starts: number[] | undefined
  if (extended !== undefined && extended.length === 8 * frames) {
    starts = Array.from({ length: frames }, (_, i) => Number(extended.readBigUInt64LE(8 * i)))
  } else if (botValue !== undefined) {
    starts = Array.from({ length: frames }, (_, i) => botValue.readUInt32LE(4 * i))
  }
  if (starts === undefined || starts[0] !== 0 || starts.some((s, i) => i > 0 && s <= starts[i - 1]!)) return undefined
  return starts
}
