import { dictionaryVr } from '../dicom/dataset-reader.ts'
import { elementHeader } from '../dicom/element-writer.ts'
import { DicomMalformedError } from '../errors.ts'

/*
 * A dataset's elements re-encoded between Explicit and Implicit VR Little Endian (PS3.5 7.1): the
 * values are the same bytes, only element headers change. Sequences and items come out of undefined
 * length, since defined lengths would change with the headers. Implicit to explicit takes each VR
 * from the data dictionary (UN where it has none, or where a short VR's value is too long for it).
 */

export const LONG_VRS: ReadonlySet<string> = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT', 'SV', 'UV'])
export const UNDEFINED = 0xFFFFFFFF
export const ITEM = 0xFFFEE000
export const ITEM_END = 0xFFFEE00D
export const SEQUENCE_END = 0xFFFEE0DD

/**
 * Explicit VR little endian element(s) to implicit: tag and a 32-bit length, sequences and items
 * of undefined length (their defined lengths would change with the shorter element headers).
 */
export function toImplicit (explicit: Buffer): Buffer {
  const out: Buffer[] = []
  let at = 0
  const walk = (end: number): void => {
    while (at < end) {
      const t = ((explicit.readUInt16LE(at) << 16) | explicit.readUInt16LE(at + 2)) >>> 0
      if (t === ITEM_END || t === SEQUENCE_END) {
        at += 8
        return
      }
      if (t === ITEM) {
        const length = explicit.readUInt32LE(at + 4)
        at += 8
        out.push(itemHead())
        walk(length === UNDEFINED ? explicit.length : at + length)
        out.push(Buffer.from([0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]))
        continue
      }
      const vr = explicit.toString('latin1', at + 4, at + 6)
      const long = LONG_VRS.has(vr)
      const length = long ? explicit.readUInt32LE(at + 8) : explicit.readUInt16LE(at + 6)
      at += long ? 12 : 8
      if (vr === 'SQ' || (vr === 'UN' && length === UNDEFINED)) {
        // Its items are implicit VR already (PS3.5 6.2.2), which this walk does not read: Explicit VR is offered instead.
        if (vr === 'UN') throw new DicomMalformedError(`element ${t.toString(16)} is an undefined-length UN, not re-encoded implicit`)
        out.push(elementHeader(t, 'SQ', UNDEFINED, true))
        walk(length === UNDEFINED ? explicit.length : at + length)
        out.push(Buffer.from([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]))
        continue
      }
      out.push(elementHeader(t, vr, length, true), explicit.subarray(at, at + length))
      at += length
    }
  }
  walk(explicit.length)
  return Buffer.concat(out)
}

function itemHead (): Buffer {
  const head = Buffer.alloc(8)
  head.writeUInt32LE(0xE000FFFE, 0)
  head.writeUInt32LE(UNDEFINED, 4)
  return head
}

const SHORT_LIMIT = 0xFFFF

/** The explicit VR an implicit element gets: the dictionary's, else what its tag says it must be, else UN. */
function vrOf (t: number, length: number): string {
  const element = t & 0xFFFF
  const group = t >>> 16
  if (element === 0x0000) return 'UL' // group length
  if (group % 2 === 1 && element >= 0x0010 && element <= 0x00FF) return 'LO' // private creator
  const vr = group % 2 === 1 ? undefined : dictionaryVr(t)
  if (vr === undefined || vr === 'xs' || vr === 'ox' || vr === 'NO' || vr.length !== 2) return length === UNDEFINED ? 'SQ' : 'UN'
  if (!LONG_VRS.has(vr) && length > SHORT_LIMIT) return 'UN'
  return vr
}

/** Implicit VR little endian element(s) to explicit, VRs from the data dictionary. */
export function toExplicit (implicit: Buffer): Buffer {
  const out: Buffer[] = []
  let at = 0
  const walk = (end: number): void => {
    while (at < end) {
      const t = ((implicit.readUInt16LE(at) << 16) | implicit.readUInt16LE(at + 2)) >>> 0
      const length = implicit.readUInt32LE(at + 4)
      at += 8
      if (t === ITEM_END || t === SEQUENCE_END) return
      if (t === ITEM) {
        out.push(itemHead())
        walk(length === UNDEFINED ? implicit.length : at + length)
        out.push(Buffer.from([0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]))
        continue
      }
      const vr = vrOf(t, length)
      if (vr === 'SQ' || length === UNDEFINED) {
        if (length === UNDEFINED && vr !== 'SQ') throw new DicomMalformedError(`element ${t.toString(16)} has undefined length but is not a sequence`)
        out.push(elementHeader(t, 'SQ', UNDEFINED))
        walk(length === UNDEFINED ? implicit.length : at + length)
        out.push(Buffer.from([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]))
        continue
      }
      out.push(elementHeader(t, vr, length), implicit.subarray(at, at + length))
      at += length
    }
  }
  walk(implicit.length)
  return Buffer.concat(out)
}
