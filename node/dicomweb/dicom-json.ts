import type { DicomTextDecoder } from '../dicom/charset.ts'
import type { DataElement, Dataset } from '../dicom/dataset-reader.ts'

/*
 * The DICOM JSON model (PS3.18 F.2): what WADO-RS metadata, QIDO-RS results and STOW-RS responses
 * are made of. Values too large to keep while reading a header are not inlined: they get a
 * BulkDataURI the client fetches separately, so a metadata request never reads pixel data.
 */

export interface DicomJsonAttribute {
  vr: string
  Value?: unknown[]
  InlineBinary?: string
  BulkDataURI?: string
}

export type DicomJson = Record<string, DicomJsonAttribute>

/** A tag as the 8 upper-case hex digits DICOM JSON keys attributes by. */
export function tagKey (t: number): string {
  return (t >>> 0).toString(16).toUpperCase().padStart(8, '0')
}

export interface DatasetJsonInit {
  decoder: DicomTextDecoder
  littleEndian: boolean
  /** the URI a top-level value that was too large to keep is served at, if it is served */
  bulkDataUri?: (t: number, element: DataElement) => string | undefined
}

const ASCII_VRS = new Set(['AE', 'AS', 'CS', 'DA', 'DT', 'TM', 'UI', 'UR', 'DS', 'IS'])
const TEXT_VRS = new Set(['LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UT'])
const SINGLE_VALUED = new Set(['LT', 'ST', 'UT', 'UR'])
const BINARY_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN'])
const NUMBER_SIZES: Record<string, number> = { US: 2, SS: 2, UL: 4, SL: 4, FL: 4, FD: 8, SV: 8, UV: 8, AT: 4 }

export function datasetToJson (dataset: Dataset, init: DatasetJsonInit, topLevel = true): DicomJson {
  const out: DicomJson = {}
  for (const t of [...dataset.keys()].sort((a, b) => a - b)) {
    // Group lengths say nothing a JSON reader needs and go stale when values change.
    if ((t & 0xFFFF) === 0) continue
    out[tagKey(t)] = elementToJson(t, dataset.get(t)!, init, topLevel)
  }
  return out
}

function elementToJson (t: number, element: DataElement, init: DatasetJsonInit, topLevel: boolean): DicomJsonAttribute {
  const { vr } = element
  if (vr === 'SQ') return { vr, Value: (element.items ?? []).map((item) => datasetToJson(item, init, false)) }
  if (element.value === undefined) {
    if (element.length === 0) return { vr }
    const uri = topLevel ? init.bulkDataUri?.(t, element) : undefined
    return uri === undefined ? { vr } : { vr, BulkDataURI: uri }
  }
  const bytes = element.value
  if (bytes.length === 0) return { vr }
  if (BINARY_VRS.has(vr)) return { vr, InlineBinary: bytes.toString('base64') }
  const size = NUMBER_SIZES[vr]
  if (size !== undefined) return { vr, Value: numbersOf(vr, bytes, size, init.littleEndian) }
  const text = ASCII_VRS.has(vr) ? bytes.toString('latin1') : init.decoder.decode(bytes, vr)
  const values = SINGLE_VALUED.has(vr) ? [text] : text.split('\\')
  return { vr, Value: values.map((v) => stringValue(vr, v)) }
}

function stringValue (vr: string, raw: string): unknown {
  const value = TEXT_VRS.has(vr) ? raw.replace(/[\0 ]+$/, '') : raw.replace(/^[\0 ]+|[\0 ]+$/g, '')
  if (value === '') return null
  if (vr === 'PN') return personName(value)
  if (vr === 'DS' || vr === 'IS') {
    const n = Number(value)
    return Number.isFinite(n) ? n : value
  }
  return value
}

/** PN: up to three component groups, alphabetic = ideographic = phonetic. */
export function personName (value: string): Record<string, string> {
  const [alphabetic, ideographic, phonetic] = value.split('=')
  const name: Record<string, string> = {}
  if (alphabetic !== undefined && alphabetic !== '') name.Alphabetic = alphabetic
  if (ideographic !== undefined && ideographic !== '') name.Ideographic = ideographic
  if (phonetic !== undefined && phonetic !== '') name.Phonetic = phonetic
  return name
}

function numbersOf (vr: string, bytes: Buffer, size: number, le: boolean): unknown[] {
  const values: unknown[] = []
  for (let at = 0; at + size <= bytes.length; at += size) {
    switch (vr) {
      case 'US': values.push(le ? bytes.readUInt16LE(at) : bytes.readUInt16BE(at)); break
      case 'SS': values.push(le ? bytes.readInt16LE(at) : bytes.readInt16BE(at)); break
      case 'UL': values.push(le ? bytes.readUInt32LE(at) : bytes.readUInt32BE(at)); break
      case 'SL': values.push(le ? bytes.readInt32LE(at) : bytes.readInt32BE(at)); break
      case 'FL': values.push(le ? bytes.readFloatLE(at) : bytes.readFloatBE(at)); break
      case 'FD': values.push(le ? bytes.readDoubleLE(at) : bytes.readDoubleBE(at)); break
      case 'SV': values.push(Number(le ? bytes.readBigInt64LE(at) : bytes.readBigInt64BE(at))); break
      case 'UV': values.push(Number(le ? bytes.readBigUInt64LE(at) : bytes.readBigUInt64BE(at))); break
      case 'AT': {
        const group = le ? bytes.readUInt16LE(at) : bytes.readUInt16BE(at)
        const element = le ? bytes.readUInt16LE(at + 2) : bytes.readUInt16BE(at + 2)
        values.push(tagKey(((group << 16) | element) >>> 0))
        break
      }
    }
  }
  return values
}
