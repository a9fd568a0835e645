// Frame encoders: native bytes (either byte order), real DICOM RLE Lossless (PS3.5 Annex G), and stand-in
// JPEG / JPEG-LS / JPEG 2000 codestreams.
import { deflateRawSync } from 'node:zlib'
import type { TransferSyntaxName } from './transfer-syntaxes.ts'

export interface FrameInfo {
  rows: number
  columns: number
  bitsStored: number
}

const HOST_LE = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1

/** The frame's bytes as native pixel data in the given byte order (8-bit frames have no byte order). */
export function nativeFrameBytes (frame: Uint16Array | Uint8Array, littleEndian: boolean, target?: Uint8Array):
Uint8Array {
  const bytes = new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength)
  if (frame.BYTES_PER_ELEMENT === 1 || littleEndian === HOST_LE) return bytes
  const out = target ?? new Uint8Array(bytes.length)
  for (let i = 0; i < bytes.length; i += 2) { out[i] = bytes[i + 1] as number; out[i + 1] = bytes[i] as number }
  return out
}

/** 12-bit frame to 8 bits (JPEG Baseline is 8-bit only); the writer sets RescaleSlope 16 to match. */
export function to8Bit (frame: Uint16Array, target?: Uint8Array): Uint8Array {
  const out = target ?? new Uint8Array(frame.length)
  for (let i = 0; i < frame.length; i++) out[i] = (frame[i] as number) >> 4
  return out
}

// PackBits one row of a byte plane: replicate runs (257 - n, byte) for 2..128 equal bytes, literal runs
// (n - 1, bytes) otherwise; runs never cross rows (PS3.5 G.3.1).
function packRow (src: Uint8Array, start: number, end: number, out: Uint8Array, pos: number): number {
  let i = start
  while (i < end) {
    let run = 1
    while (i + run < end && run < 128 && src[i + run] === src[i]) run++
    if (run >= 2) {
      out[pos++] = 257 - run
      out[pos++] = src[i] as number
      i += run
      continue
    }
    const litStart = i
    i++
    // Extend the literal until a run of 3 equal bytes starts (a run of 2 costs the same either way).
    while (i < end && i - litStart < 128 && !(i + 2 < end && src[i] === src[i + 1] && src[i] === src[i + 2])) i++
    const n = i - litStart
    out[pos++] = n - 1
    out.set(src.subarray(litStart, i), pos)
    pos += n
  }
  return pos
}

/** One frame as a DICOM RLE Lossless fragment: 64-byte header, then one segment per byte plane, MSB first. */
export function encodeRleFrame (frame: Uint16Array | Uint8Array, info: FrameInfo): Uint8Array {
  const { rows, columns } = info
  const planes = frame.BYTES_PER_ELEMENT
  const n = rows * columns
  const plane = new Uint8Array(n)
  const worst = rows * (columns + Math.ceil(columns / 128)) + 1
  const out = new Uint8Array(64 + planes * worst)
  const header = new DataView(out.buffer)
  header.setUint32(0, planes, true)
  let pos = 64
  for (let p = 0; p < planes; p++) {
    header.setUint32(4 + 4 * p, pos, true)
    const shift = 8 * (planes - 1 - p)
    for (let i = 0; i < n; i++) plane[i] = (frame[i] as number) >> shift
    for (let y = 0; y < rows; y++) pos = packRow(plane, y * columns, (y + 1) * columns, out, pos)
    if (pos % 2 === 1) out[pos++] = 0x80 // 0x80 (-128) is a PackBits no-op: the even-length pad
  }
  return out.slice(0, pos)
}

// Entropy-coded data must not contain markers: stuff a 0x00 after each 0xFF, as JPEG does.
function stuffed (payload: Uint8Array): Uint8Array {
  let ff = 0
  for (const b of payload) if (b === 0xFF) ff++
  const out = new Uint8Array(payload.length + ff)
  let j = 0
  for (const b of payload) { out[j++] = b; if (b === 0xFF) out[j++] = 0 }
  return out
}

function segment (marker: number, body: number[]): number[] {
  const len = body.length + 2
  return [0xFF, marker, len >> 8, len & 0xFF, ...body]
}

const u16 = (v: number): number[] => [(v >> 8) & 0xFF, v & 0xFF]
const u32 = (v: number): number[] => [(v >>> 24) & 0xFF, (v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF]
const NOTE = Array.from(new TextEncoder().encode('Beeldnet synthetic frame: stand-in payload, not decodable'))

/**
 * A stand-in JPEG Baseline, JPEG-LS or JPEG 2000 codestream. The marker segments are real (SOI, a COM note,
 * SOF0 / SOF55 with the frame geometry, SOS, EOI; or SOC, SIZ, COD, QCD, SOT, SOD, EOC for J2K) but the
 * entropy-coded payload is the raw-deflated frame, byte-stuffed: NOT decodable. Nothing in Beeldnet decodes
 * pixel data; what matters is a well-formed encapsulation whose size is like real compressed data.
 */
export function encodeCodestreamStandIn (kind: 'jpeg-baseline' | 'jpeg-ls' | 'jpeg2000',
  frame: Uint16Array | Uint8Array, info: FrameInfo): Uint8Array {
  const raw = new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength)
  let payload = stuffed(deflateRawSync(raw, { level: 1 }))
  const { rows, columns, bitsStored } = info
  let head: number[]
  if (kind === 'jpeg2000') {
    const levels = 5
    head = [0xFF, 0x4F,
      ...segment(0x51, [...u16(0), ...u32(columns), ...u32(rows), ...u32(0), ...u32(0), ...u32(columns),
        ...u32(rows), ...u32(0), ...u32(0), ...u16(1), bitsStored - 1, 1, 1]),
      // COD: LRCP, 1 layer, no MCT, 5 decomposition levels, 64x64 code-blocks, reversible 5/3 wavelet.
      ...segment(0x52, [0, 0, ...u16(1), 0, levels, 4, 4, 0, 1]),
      // QCD: no quantisation, 2 guard bits, one exponent per sub-band.
      ...segment(0x5C, [0x40, ...new Array<number>(3 * levels + 1).fill((bitsStored + 1) << 3)])]
  } else {
    const sof = kind === 'jpeg-ls' ? 0xF7 : 0xC0
    const precision = kind === 'jpeg-ls' ? bitsStored : 8
    const sosTail = kind === 'jpeg-ls' ? [0, 0, 0, 0] : [0, 0, 63, 0] // JPEG-LS: T, NEAR, ILV, Al/Ah
    head = [0xFF, 0xD8,
      ...segment(0xFE, NOTE),
      ...segment(sof, [precision, ...u16(rows), ...u16(columns), 1, 1, 0x11, 0]),
      ...segment(0xDA, [1, 1, ...sosTail])]
  }
  const sot = kind === 'jpeg2000' ? 14 : 0 // SOT segment (12) + SOD marker (2)
  if ((head.length + sot + payload.length + 2) % 2 === 1) {
    const padded = new Uint8Array(payload.length + 1) // trailing 0x00 inside the payload keeps EOI last
    padded.set(payload)
    payload = padded
  }
  const out = new Uint8Array(head.length + sot + payload.length + 2)
  out.set(head)
  if (kind === 'jpeg2000') {
    out.set([...segment(0x90, [...u16(0), ...u32(sot + payload.length), 0, 1]), 0xFF, 0x93], head.length)
  }
  out.set(payload, head.length + sot)
  out.set([0xFF, 0xD9], out.length - 2)
  return out
}

/** Encoded fragment for an encapsulated transfer syntax. */
export function encodeFrame (ts: TransferSyntaxName, frame: Uint16Array | Uint8Array, info: FrameInfo): Uint8Array {
  switch (ts) {
    case 'rle': return encodeRleFrame(frame, info)
    case 'jpeg-baseline': case 'jpeg-ls': case 'jpeg2000': return encodeCodestreamStandIn(ts, frame, info)
    default: throw new RangeError(`${ts} is not an encapsulated transfer syntax`)
  }
}
