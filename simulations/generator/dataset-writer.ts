// A small DICOM dataset encoder: explicit/implicit VR little endian and explicit VR big endian, nested
// sequences, and per-dataset Specific Character Set. Our own rather than dcmjs's writer because we need exact
// charset bytes, big endian, item offsets for DICOMDIR, and the pixel data written separately (streamed).
import { CHARSETS, charsetFromTerms, type Charset } from './charsets.ts'
import { DatasetEncodingError } from './errors.ts'
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from './uids.ts'

export type VR = 'AE' | 'AS' | 'AT' | 'CS' | 'DA' | 'DS' | 'DT' | 'FD' | 'FL' | 'IS' | 'LO' | 'LT' | 'OB' | 'OD' |
  'OF' | 'OL' | 'OV' | 'OW' | 'PN' | 'SH' | 'SL' | 'SQ' | 'SS' | 'ST' | 'SV' | 'TM' | 'UC' | 'UI' | 'UL' | 'UN' |
  'UR' | 'US' | 'UT' | 'UV'

export type Item = Element[]
export type Value = string | readonly string[] | number | readonly number[] | Uint8Array | readonly Item[]

export interface Element {
  tag: number
  vr: VR
  value: Value
}

export interface Syntax {
  explicit: boolean
  littleEndian: boolean
}

export const EXPLICIT_LE: Syntax = { explicit: true, littleEndian: true }

/** Shorthand: el(0x00100010, 'PN', 'Doe^John'). Tags are (group << 16 | element). */
export function el (tag: number, vr: VR, value: Value): Element {
  return { tag, vr, value }
}

// VRs with a 4-byte length (and 2 reserved bytes) in explicit VR (PS3.5 7.1.2).
const LONG_VRS = new Set<VR>(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UR', 'UT', 'UN'])
// Text VRs that the Specific Character Set applies to; the rest are plain ASCII.
const CHARSET_VRS = new Set<VR>(['SH', 'LO', 'ST', 'LT', 'PN', 'UC', 'UT'])
const SPECIFIC_CHARACTER_SET = 0x00080005

class ByteWriter {
  private buf = new Uint8Array(4096)
  private view = new DataView(this.buf.buffer)
  length = 0
  readonly littleEndian: boolean
  constructor (littleEndian: boolean) { this.littleEndian = littleEndian }

  private ensure (n: number): void {
    if (this.length + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.length + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.length))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  u16 (v: number): void { this.ensure(2); this.view.setUint16(this.length, v, this.littleEndian); this.length += 2 }
  u32 (v: number): void { this.ensure(4); this.view.setUint32(this.length, v, this.littleEndian); this.length += 4 }
  bytes (b: Uint8Array): void { this.ensure(b.length); this.buf.set(b, this.length); this.length += b.length }
  tag (tag: number): void { this.u16(tag >>> 16); this.u16(tag & 0xFFFF) }
  result (): Uint8Array { return this.buf.slice(0, this.length) }
}

function asList<T> (v: T | readonly T[]): readonly T[] {
  return Array.isArray(v) ? v : [v as T]
}

function encodeText (el: Element, charset: Charset): Uint8Array {
  const text = asList(el.value as string | readonly string[]).join('\\')
  const bytes = CHARSET_VRS.has(el.vr) ? charset.encode(text) : CHARSETS.ascii.encode(text)
  if (bytes.length % 2 === 0) return bytes
  const padded = new Uint8Array(bytes.length + 1)
  padded.set(bytes)
  padded[bytes.length] = el.vr === 'UI' ? 0x00 : 0x20
  return padded
}

function encodeNumbers (el: Element, littleEndian: boolean): Uint8Array {
  const values = asList(el.value as number | readonly number[])
  const size = { US: 2, SS: 2, UL: 4, SL: 4, FL: 4, FD: 8, AT: 4 }[el.vr as 'US']
  const out = new Uint8Array(values.length * size)
  const dv = new DataView(out.buffer)
  values.forEach((v, i) => {
    const at = i * size
    switch (el.vr) {
      case 'US': dv.setUint16(at, v, littleEndian); break
      case 'SS': dv.setInt16(at, v, littleEndian); break
      case 'UL': dv.setUint32(at, v, littleEndian); break
      case 'SL': dv.setInt32(at, v, littleEndian); break
      case 'FL': dv.setFloat32(at, v, littleEndian); break
      case 'FD': dv.setFloat64(at, v, littleEndian); break
      case 'AT': dv.setUint16(at, v >>> 16, littleEndian); dv.setUint16(at + 2, v & 0xFFFF, littleEndian); break
    }
  })
  return out
}

function encodeBinary (el: Element, littleEndian: boolean): Uint8Array {
  const b = el.value as Uint8Array
  let out = b
  if (el.vr === 'OW' && !littleEndian) {
    out = new Uint8Array(b.length)
    for (let i = 0; i + 1 < b.length; i += 2) { out[i] = b[i + 1] as number; out[i + 1] = b[i] as number }
  }
  if (out.length % 2 === 0) return out
  const padded = new Uint8Array(out.length + 1)
  padded.set(out)
  return padded
}

function writeHeader (w: ByteWriter, tag: number, vr: VR, length: number, syntax: Syntax): void {
  w.tag(tag)
  if (!syntax.explicit) { w.u32(length); return }
  w.bytes(Uint8Array.of(vr.charCodeAt(0), vr.charCodeAt(1)))
  if (LONG_VRS.has(vr)) { w.u16(0); w.u32(length); return }
  if (length > 0xFFFF) throw new DatasetEncodingError(`value of (${tag.toString(16)}) too long for VR ${vr}`)
  w.u16(length)
}

export interface EncodeOptions {
  /** Charset of the enclosing dataset; an item with its own (0008,0005) overrides it. Default ascii. */
  charset?: Charset
  /** Byte position of the first encoded byte in the file, for the offsets reported to onItem. */
  baseOffset?: number
  /** Called with the absolute file offset of each sequence item's first byte (its item tag). */
  onItem?: (item: Item, offset: number) => void
}

function datasetCharset (items: Item, inherited: Charset): Charset {
  const sc = items.find((e) => e.tag === SPECIFIC_CHARACTER_SET)
  if (sc === undefined) return inherited
  const found = charsetFromTerms(asList(sc.value as string | readonly string[]))
  if (found === undefined) throw new DatasetEncodingError(`unsupported SpecificCharacterSet ${String(sc.value)}`)
  return found
}

function writeDataset (w: ByteWriter, dataset: Item, syntax: Syntax, charset: Charset, opts: EncodeOptions): void {
  const cs = datasetCharset(dataset, charset)
  const sorted = [...dataset].sort((a, b) => (a.tag >>> 0) - (b.tag >>> 0))
  for (const e of sorted) {
    if (e.vr === 'SQ') {
      // Undefined-length sequences and items: valid in every transfer syntax and no lengths to precompute.
      writeHeader(w, e.tag, 'SQ', 0xFFFFFFFF, syntax)
      for (const item of e.value as readonly Item[]) {
        opts.onItem?.(item, (opts.baseOffset ?? 0) + w.length)
        w.tag(0xFFFEE000); w.u32(0xFFFFFFFF)
        writeDataset(w, item, syntax, cs, opts)
        w.tag(0xFFFEE00D); w.u32(0)
      }
      w.tag(0xFFFEE0DD); w.u32(0)
      continue
    }
    let bytes: Uint8Array
    if (e.value instanceof Uint8Array) bytes = encodeBinary(e, syntax.littleEndian)
    else if (['US', 'SS', 'UL', 'SL', 'FL', 'FD', 'AT'].includes(e.vr)) bytes = encodeNumbers(e, syntax.littleEndian)
    else bytes = encodeText(e, cs)
    writeHeader(w, e.tag, e.vr, bytes.length, syntax)
    w.bytes(bytes)
  }
}

/** Encodes a dataset (no preamble, no File Meta). Elements are sorted by tag here. */
export function encodeDataset (dataset: Item, syntax: Syntax, opts: EncodeOptions = {}): Uint8Array {
  const w = new ByteWriter(syntax.littleEndian)
  writeDataset(w, dataset, syntax, opts.charset ?? CHARSETS.ascii, opts)
  return w.result()
}

export interface FileMeta {
  sopClassUID: string
  sopInstanceUID: string
  transferSyntaxUID: string
}

/** 128-byte preamble, "DICM" and the File Meta group (always explicit VR little endian, PS3.10 7.1). */
export function encodeFilePreamble (meta: FileMeta): Uint8Array {
  const group = encodeDataset([
    el(0x00020001, 'OB', Uint8Array.of(0, 1)),
    el(0x00020002, 'UI', meta.sopClassUID),
    el(0x00020003, 'UI', meta.sopInstanceUID),
    el(0x00020010, 'UI', meta.transferSyntaxUID),
    el(0x00020012, 'UI', IMPLEMENTATION_CLASS_UID),
    el(0x00020013, 'SH', IMPLEMENTATION_VERSION_NAME)
  ], EXPLICIT_LE)
  const groupLength = encodeDataset([el(0x00020000, 'UL', group.length)], EXPLICIT_LE)
  const out = new Uint8Array(132 + groupLength.length + group.length)
  out.set([0x44, 0x49, 0x43, 0x4D], 128)
  out.set(groupLength, 132)
  out.set(group, 132 + groupLength.length)
  return out
}

/** Header of an element whose value is written afterwards (PixelData): defined or undefined (-1) length. */
export function encodeElementHeader (tag: number, vr: VR, length: number, syntax: Syntax): Uint8Array {
  const w = new ByteWriter(syntax.littleEndian)
  writeHeader(w, tag, vr, length, syntax)
  return w.result()
}

/** Item tag + length, as used for encapsulated fragments (always little endian there). */
export function encodeItemHeader (tag: number, length: number): Uint8Array {
  const w = new ByteWriter(true)
  w.tag(tag)
  w.u32(length)
  return w.result()
}
