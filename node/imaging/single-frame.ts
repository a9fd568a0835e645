import { createReadStream } from 'node:fs'
import type { ParsedHeader } from '../dicom/dataset-reader.ts'
import { fileMetaInformation } from '../dicom/file-meta.ts'
import { inflatedRange } from '../dicom/inflated-source.ts'
import { Tags, TransferSyntax, tag } from '../dicom/tags.ts'

/*
 * A small Part 10 file holding one frame of a stored instance: the stored header as it is (up to
 * pixel data, NumberOfFrames set to 1, the frame's functional groups lifted to the top level)
 * followed by that frame's pixel data alone, native or as one encapsulated fragment. dcmjs-imaging draws it through the instance's own modality and VOI LUTs
 * and photometric interpretation, and never sees the other frames. A deflated instance's header is
 * inflated as far as pixel data, and the file made is explicit VR little endian, as it inflates to.
 */

export interface SingleFrameTarget {
  sopClassUID: string
  sopInstanceUID: string
}

/** One frame as the frame reader (node/transcode/frame-reader.ts) gives it: native pixel bytes, or its compressed fragments joined. */
export interface StoredFrame {
  encapsulated: boolean
  bytes: Buffer
}

/** Part 10 bytes of one frame, in an ArrayBuffer of its own (dcmjs parses an ArrayBuffer). */
export async function singleFramePart10 (path: string, parsed: ParsedHeader, frame: StoredFrame, target: SingleFrameTarget, frameNumber = 1): Promise<ArrayBuffer> {
  const syntax = parsed.deflated ? TransferSyntax.ExplicitVRLittleEndian : parsed.transferSyntaxUID
  const encoding = { implicit: syntax === TransferSyntax.ImplicitVRLittleEndian, bigEndian: syntax === TransferSyntax.ExplicitVRBigEndian }
  const header = await storedHeader(path, parsed)
  const overrides = new Map<number, Buffer | null>(functionalGroupValues(parsed, frameNumber, encoding))
  overrides.set(Tags.NumberOfFrames, parsed.spans.has(Tags.NumberOfFrames) ? element(Tags.NumberOfFrames, 'IS', Buffer.from('1 ', 'latin1'), encoding) : null)
  // The other frames' functional groups (thousands of items in an enhanced MR) are not this frame's.
  overrides.set(PER_FRAME_FUNCTIONAL_GROUPS, null)
  const whole = Buffer.concat([
    fileMetaInformation({ ...target, transferSyntaxUID: syntax }),
    ...rewrite(header, parsed, overrides),
    ...pixelData(frame, parsed, encoding)
  ])
  return whole.buffer.slice(whole.byteOffset, whole.byteOffset + whole.length) as ArrayBuffer
}

const SHARED_FUNCTIONAL_GROUPS = tag(0x5200, 0x9229)
const PER_FRAME_FUNCTIONAL_GROUPS = tag(0x5200, 0x9230)
/** Functional group macros (PS3.3 C.7.6.16) whose attributes dcmjs-imaging reads only at the top level. */
const LIFTED: ReadonlyMap<number, number[]> = new Map([
  // Pixel Value Transformation: RescaleIntercept, RescaleSlope, RescaleType
  [tag(0x0028, 0x9145), [tag(0x0028, 0x1052), tag(0x0028, 0x1053), tag(0x0028, 0x1054)]],
  // Frame VOI LUT: WindowCenter, WindowWidth, WindowCenterWidthExplanation, VOILUTFunction
  [tag(0x0028, 0x9132), [tag(0x0028, 0x1050), tag(0x0028, 0x1051), tag(0x0028, 0x1055), tag(0x0028, 0x1056)]]
])

/**
 * An enhanced multi-frame instance keeps rescale and window in functional groups, shared or per
 * frame: those of this frame become top-level elements (per frame over shared), as a single-frame
 * instance would carry them.
 */
function functionalGroupValues (parsed: ParsedHeader, frameNumber: number, encoding: Encoding): Map<number, Buffer> {
  const values = new Map<number, Buffer>()
  const groups = [parsed.dataset.get(SHARED_FUNCTIONAL_GROUPS)?.items?.[0], parsed.dataset.get(PER_FRAME_FUNCTIONAL_GROUPS)?.items?.[frameNumber - 1]]
  for (const group of groups) {
    for (const [macro, tags] of LIFTED) {
      const item = group?.get(macro)?.items?.[0]
      for (const t of tags) {
        const found = item?.get(t)
        if (found?.value !== undefined) values.set(t, element(t, found.vr, found.value, encoding))
      }
    }
  }
  return values
}

/** The header with some top-level elements replaced, added (in tag order) or dropped (null). */
function rewrite (header: Buffer, parsed: ParsedHeader, overrides: Map<number, Buffer | null>): Buffer[] {
  const out: Buffer[] = []
  const added = [...overrides.entries()].filter(([t, v]) => v !== null && !parsed.spans.has(t)).sort(([a], [b]) => a - b)
  let at = 0
  for (const [t, span] of [...parsed.spans.entries()].sort(([, a], [, b]) => a.start - b.start)) {
    const start = span.start - parsed.datasetOffset
    while (added.length > 0 && added[0]![0] < t) {
      out.push(header.subarray(at, start), added.shift()![1]!)
      at = start
    }
    if (!overrides.has(t)) continue
    out.push(header.subarray(at, start))
    const value = overrides.get(t)
    if (value !== null && value !== undefined) out.push(value)
    at = span.end - parsed.datasetOffset
  }
  out.push(header.subarray(at), ...added.map(([, v]) => v!))
  return out
}

/** The dataset's bytes from its start to where pixel data begins. */
async function storedHeader (path: string, parsed: ParsedHeader): Promise<Buffer> {
  const length = parsed.headerEnd - parsed.datasetOffset
  if (length <= 0) return Buffer.alloc(0)
  const source = parsed.deflated
    ? inflatedRange(path, parsed.datasetOffset, { offset: parsed.datasetOffset, length })
    : createReadStream(path, { start: parsed.datasetOffset, end: parsed.headerEnd - 1, highWaterMark: 256 * 1024 })
  const chunks: Buffer[] = []
  for await (const chunk of source as AsyncIterable<Buffer>) chunks.push(chunk)
  return Buffer.concat(chunks, length)
}

interface Encoding { implicit: boolean, bigEndian: boolean }

const LONG_VRS = new Set(['OB', 'OW'])

/** One element in the dataset's own encoding (the header is copied as stored, so it must match). */
function element (t: number, vr: string, value: Buffer, encoding: Encoding, length = value.length): Buffer {
  const long = encoding.implicit || LONG_VRS.has(vr)
  const head = Buffer.alloc(long && !encoding.implicit ? 12 : 8)
  const u16 = (v: number, at: number): void => { if (encoding.bigEndian) head.writeUInt16BE(v, at); else head.writeUInt16LE(v, at) }
  const u32 = (v: number, at: number): void => { if (encoding.bigEndian) head.writeUInt32BE(v, at); else head.writeUInt32LE(v, at) }
  u16(t >>> 16, 0)
  u16(t & 0xFFFF, 2)
  if (encoding.implicit) {
    u32(length, 4)
  } else {
    head.write(vr, 4, 'latin1')
    if (long) u32(length, 8)
    else u16(length, 6)
  }
  return Buffer.concat([head, value])
}

/** Pixel Data holding the one frame: native bytes padded to even length, or an empty offset table and one fragment. */
function pixelData (frame: StoredFrame, parsed: ParsedHeader, encoding: Encoding): Buffer[] {
  const bytes = frame.bytes
  const even = bytes.length % 2 === 0 ? bytes : Buffer.concat([bytes, Buffer.alloc(1)])
  if (!frame.encapsulated) {
    const bits = parsed.dataset.get(Tags.BitsAllocated)?.value
    const wide = bits !== undefined && bits.length >= 2 && (encoding.bigEndian ? bits.readUInt16BE(0) : bits.readUInt16LE(0)) > 8
    return [element(Tags.PixelData, wide ? 'OW' : 'OB', even, encoding)]
  }
  // Encapsulated pixel data is always explicit VR little endian.
  const item = (length: number): Buffer => {
    const head = Buffer.alloc(8)
    head.writeUInt16LE(0xFFFE, 0)
    head.writeUInt16LE(0xE000, 2)
    head.writeUInt32LE(length, 4)
    return head
  }
  const end = Buffer.from([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0])
  return [element(Tags.PixelData, 'OB', Buffer.alloc(0), { implicit: false, bigEndian: false }, 0xFFFFFFFF), item(0), item(even.length), even, end]
}
