import { createReadStream } from 'node:fs'
import type { ParsedHeader } from '../dicom/dataset-reader.ts'
import { fileMetaInformation } from '../dicom/file-meta.ts'
import { inflatedRange } from '../dicom/inflated-source.ts'
import { Tags, TransferSyntax } from '../dicom/tags.ts'
import type { StoredFrame } from './stored-frame.ts'

/*
 * A small Part 10 file holding one frame of a stored instance: the stored header as it is (up to
 * pixel data, NumberOfFrames set to 1) followed by that frame's pixel data alone, native or as one
 * encapsulated fragment. dcmjs-imaging draws it through the instance's own modality and VOI LUTs
 * and photometric interpretation, and never sees the other frames. A deflated instance's header is
 * inflated as far as pixel data, and the file made is explicit VR little endian, as it inflates to.
 */

export interface SingleFrameTarget {
  sopClassUID: string
  sopInstanceUID: string
}

/** Part 10 bytes of one frame, in an ArrayBuffer of its own (dcmjs parses an ArrayBuffer). */
export async function singleFramePart10 (path: string, parsed: ParsedHeader, frame: StoredFrame, target: SingleFrameTarget): Promise<ArrayBuffer> {
  const syntax = parsed.deflated ? TransferSyntax.ExplicitVRLittleEndian : parsed.transferSyntaxUID
  const encoding = { implicit: syntax === TransferSyntax.ImplicitVRLittleEndian, bigEndian: syntax === TransferSyntax.ExplicitVRBigEndian }
  const header = await storedHeader(path, parsed)
  const parts: Buffer[] = [fileMetaInformation({ ...target, transferSyntaxUID: syntax })]
  const frames = parsed.spans.get(Tags.NumberOfFrames)
  if (frames === undefined) {
    parts.push(header)
  } else {
    const from = frames.start - parsed.datasetOffset
    const to = frames.end - parsed.datasetOffset
    parts.push(header.subarray(0, from), element(Tags.NumberOfFrames, 'IS', Buffer.from('1 ', 'latin1'), encoding), header.subarray(to))
  }
  parts.push(...pixelData(frame, parsed, encoding))
  const whole = Buffer.concat(parts)
  return whole.buffer.slice(whole.byteOffset, whole.byteOffset + whole.length) as ArrayBuffer
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
  const bytes = frame.bytes.length === 1 ? frame.bytes[0]! : Buffer.concat(frame.bytes)
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
