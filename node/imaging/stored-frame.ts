import { open, type FileHandle } from 'node:fs/promises'
import { createReadStream } from 'node:fs'
import type { ParsedHeader } from '../dicom/dataset-reader.ts'
import { inflatedRange } from '../dicom/inflated-source.ts'
import { Tags, TransferSyntax, tag } from '../dicom/tags.ts'
import { DicomMalformedError } from '../errors.ts'

/*
 * One frame of a stored instance, read alone: a byte range of native pixel data, or the fragments
 * of one encapsulated frame found by walking item headers (never their contents) from pixel data
 * on. Memory is one frame whatever the size of the instance.
 */

export interface StoredFrame {
  /** native pixel bytes of the frame, or the frame's compressed fragments */
  encapsulated: boolean
  bytes: Buffer[]
}

const ITEM = tag(0xFFFE, 0xE000)
const SEQUENCE_END = tag(0xFFFE, 0xE0DD)
const EXTENDED_OFFSET_TABLE = tag(0x7FE0, 0x0001)
const SAMPLES_PER_PIXEL = tag(0x0028, 0x0002)
const PHOTOMETRIC_INTERPRETATION = tag(0x0028, 0x0004)

/** An unsigned short of the header (US), in the dataset's byte order. */
export function headerUs (parsed: ParsedHeader, t: number): number | undefined {
  const value = parsed.dataset.get(t)?.value
  if (value === undefined || value.length < 2) return undefined
  return parsed.transferSyntaxUID === TransferSyntax.ExplicitVRBigEndian ? value.readUInt16BE(0) : value.readUInt16LE(0)
}

/** Frame `n` (1-based, checked by the caller against NumberOfFrames) of the file at `path`. */
export async function readStoredFrame (path: string, parsed: ParsedHeader, frames: number, n: number): Promise<StoredFrame> {
  if (parsed.pixelDataOffset === undefined) throw new DicomMalformedError('the instance has no pixel data')
  if (parsed.pixelDataLength !== undefined) return { encapsulated: false, bytes: [await nativeFrame(path, parsed, frames, n)] }
  const handle = await open(path, 'r')
  try {
    return { encapsulated: true, bytes: await encapsulatedFrame(handle, parsed, frames, n) }
  } finally {
    await handle.close()
  }
}

/** Bytes of one native frame: frames follow each other without padding (PS3.5 8.1.1). */
async function nativeFrame (path: string, parsed: ParsedHeader, frames: number, n: number): Promise<Buffer> {
  const rows = headerUs(parsed, Tags.Rows) ?? 0
  const columns = headerUs(parsed, Tags.Columns) ?? 0
  // YBR_FULL_422 and YBR_PARTIAL_422 keep one Cb and one Cr for every two pixels: two samples a pixel (PS3.3 C.7.6.3.1.2).
  const photometric = parsed.dataset.get(PHOTOMETRIC_INTERPRETATION)?.value?.toString('latin1').trim() ?? ''
  const samples = photometric.endsWith('_422') ? 2 : headerUs(parsed, SAMPLES_PER_PIXEL) ?? 1
  const bits = headerUs(parsed, Tags.BitsAllocated) ?? 16
  const frameBits = rows * columns * samples * bits
  if (frameBits === 0) throw new DicomMalformedError('the image has no rows, columns or bits allocated')
  if (frameBits % 8 !== 0 && frames > 1) throw new DicomMalformedError('single-bit frames that do not end on a byte boundary are not drawn')
  const frameBytes = Math.ceil(frameBits / 8)
  const offset = parsed.pixelDataOffset! + (n - 1) * frameBytes
  if ((n - 1) * frameBytes + frameBytes > parsed.pixelDataLength!) throw new DicomMalformedError(`the pixel data holds ${parsed.pixelDataLength} bytes, too few for frame ${n} of ${frameBytes} bytes`)
  const source = parsed.deflated
    ? inflatedRange(path, parsed.datasetOffset, { offset, length: frameBytes })
    : createReadStream(path, { start: offset, end: offset + frameBytes - 1, highWaterMark: 1024 * 1024 })
  const chunks: Buffer[] = []
  for await (const chunk of source as AsyncIterable<Buffer>) chunks.push(chunk)
  return Buffer.concat(chunks, frameBytes)
}

interface Fragment { offset: number, length: number }

async function readAt (handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length)
  const { bytesRead } = await handle.read(buffer, 0, length, position)
  if (bytesRead !== length) throw new DicomMalformedError(`the encapsulated pixel data ends at byte ${position + bytesRead}, inside an item`)
  return buffer
}

/** Item header at `position`: its tag and length. */
async function itemAt (handle: FileHandle, position: number): Promise<{ t: number, length: number }> {
  const head = await readAt(handle, position, 8)
  return { t: tag(head.readUInt16LE(0), head.readUInt16LE(2)), length: head.readUInt32LE(4) }
}

/**
 * The fragments of frame `n`, PS3.5 A.4: by the Basic Offset Table or the Extended Offset Table
 * when there is one; else one frame is all fragments, as many fragments as frames is one each,
 * and otherwise a frame starts at each fragment that starts a codestream (JPEG SOI, JPEG 2000 SOC or JP2).
 */
async function encapsulatedFrame (handle: FileHandle, parsed: ParsedHeader, frames: number, n: number): Promise<Buffer[]> {
  let position = parsed.pixelDataOffset!
  const bot = await itemAt(handle, position)
  if (bot.t !== ITEM) throw new DicomMalformedError('encapsulated pixel data does not start with the Basic Offset Table item')
  const botValue = bot.length > 0 && bot.length <= 4 * frames ? await readAt(handle, position + 8, bot.length) : undefined
  position += 8 + bot.length
  const firstFragment = position

  // Fragments read header by header: with an offset table only the frame's own (a jump to where it
  // starts, whatever frame it is), else all of them.
  const starts = frameStarts(parsed, botValue, frames)
  const end = starts !== undefined && n < starts.length ? firstFragment + starts[n]! : Infinity
  if (starts !== undefined) position = firstFragment + starts[n - 1]!
  const fragments: Fragment[] = []
  while (position < end) {
    const item = await itemAt(handle, position)
    if (item.t === SEQUENCE_END) break
    if (item.t !== ITEM || item.length === 0xFFFFFFFF) throw new DicomMalformedError('encapsulated pixel data holds something other than a fragment')
    fragments.push({ offset: position, length: item.length })
    position += 8 + item.length
  }
  if (fragments.length === 0) throw new DicomMalformedError('encapsulated pixel data has no fragments')

  let chosen: Fragment[]
  if (starts !== undefined) {
    chosen = fragments
  } else if (frames === 1) {
    chosen = fragments
  } else if (fragments.length === frames) {
    chosen = [fragments[n - 1]!]
  } else {
    chosen = await fragmentsByCodestream(handle, fragments, n)
  }
  if (chosen.length === 0) throw new DicomMalformedError(`no fragment holds frame ${n}`)
  return Promise.all(chosen.map(async (f) => readAt(handle, f.offset + 8, f.length)))
}

/**
 * Where each frame starts, relative to the first fragment's item: the Extended Offset Table's, else
 * the Basic Offset Table's; a table that does not rise from 0 is not trusted.
 */
function frameStarts (parsed: ParsedHeader, botValue: Buffer | undefined, frames: number): number[] | undefined {
  const extended = parsed.dataset.get(EXTENDED_OFFSET_TABLE)?.value
  let starts: number[] | undefined
  if (extended !== undefined && extended.length === 8 * frames) {
    starts = Array.from({ length: frames }, (_, i) => Number(extended.readBigUInt64LE(8 * i)))
  } else if (botValue !== undefined && botValue.length === 4 * frames) {
    starts = Array.from({ length: frames }, (_, i) => botValue.readUInt32LE(4 * i))
  }
  if (starts === undefined || starts[0] !== 0 || starts.some((s, i) => i > 0 && s <= starts[i - 1]!)) return undefined
  return starts
}

async function fragmentsByCodestream (handle: FileHandle, fragments: Fragment[], n: number): Promise<Fragment[]> {
  let frame = 0
  const chosen: Fragment[] = []
  for (const f of fragments) {
    const head = f.length >= 4 ? await readAt(handle, f.offset + 8, Math.min(12, f.length)) : Buffer.alloc(0)
    // JPEG's SOI and a first marker, JPEG 2000's SOC and SIZ, or a JP2 file's signature box.
    const startsCodestream = (head.length >= 4 && head[0] === 0xFF && ((head[1] === 0xD8 && head[2] === 0xFF) || head.readUInt16BE(0) === 0xFF4F && head.readUInt16BE(2) === 0xFF51)) ||
      (head.length >= 12 && head.readUInt32BE(4) === 0x6A502020)
    if (startsCodestream || frame === 0) frame++
    if (frame === n) chosen.push(f)
    else if (frame > n) break
  }
  return chosen
}
