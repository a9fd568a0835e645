import { writeFile } from 'node:fs/promises'
import { dictionaryVr } from '../../../node/dicom/dataset-reader.ts'
import { PROFILE_TABLE, type ProfileRow } from '../../../node/deidentify/profile-table.ts'
import { EXPLICIT_LE, el, encodeDataset, encodeElementHeader, encodeFilePreamble, encodeItemHeader, type Element, type Item, type Syntax, type VR } from '../../../simulations/generator/dataset-writer.ts'

/*
 * Test instances for de-identification: one that carries every attribute of Table E.1-1 the dataset
 * writer can write (a value of its dictionary VR), private attributes, references to other instances,
 * pixel data and elements after it.
 */

export const IMPLICIT_LE: Syntax = { explicit: false, littleEndian: true }
export const ORIGINAL_STUDY = '1.2.826.0.1.3680043.10.543.1'
export const ORIGINAL_SERIES = '1.2.826.0.1.3680043.10.543.1.1'
export const PATIENT_NAME = 'Jansen^Pieter'
export const PATIENT_ID = '123456782'
/** a text value with the patient's name and a date in it, for Clean Descriptors to find */
export const TEXT_VALUE = 'Jansen 20240301'

/** The rows a test instance can carry: a standard tag the dictionary knows, outside File Meta and SOP identity. */
export function writableRows (): Array<{ row: ProfileRow, tag: number, vr: VR }> {
  const out: Array<{ row: ProfileRow, tag: number, vr: VR }> = []
  for (const row of PROFILE_TABLE) {
    if (row.tag === 'PRIVATE' || row.tag.includes('x')) continue
    const t = Number.parseInt(row.tag, 16) >>> 0
    // File Meta is rewritten whole; Digital Signatures and Trailing Padding follow pixel data (written there).
    if ((t >>> 16) === 0x0002 || (t >>> 16) >= 0x7FE0) continue
    const vr = dictionaryVr(t) as VR | undefined
    if (vr === undefined) continue
    out.push({ row, tag: t, vr })
  }
  return out
}

function uidFor (t: number): string {
  return `1.2.826.0.1.3680043.10.543.9.${t}`
}

/** A value of `vr` for the table attribute `t`: text with identifying words, UIDs of their own. */
function valueFor (t: number, vr: VR, refs: { sopInstanceUID: string, referenced: string }): Element['value'] {
  switch (vr) {
    case 'UI':
      if (t === 0x00080018) return refs.sopInstanceUID
      if (t === 0x0020000D) return ORIGINAL_STUDY
      if (t === 0x0020000E) return ORIGINAL_SERIES
      if (t === 0x00081155) return refs.referenced
      return uidFor(t)
    case 'SQ': return [[
      el(0x00081150, 'UI', '1.2.840.10008.5.1.4.1.1.2'),
      el(0x00081155, 'UI', refs.referenced),
      el(0x00100010, 'PN', PATIENT_NAME),
      el(0x00091001, 'LO', 'private in an item')
    ]]
    case 'PN': return PATIENT_NAME
    case 'DA': return '20240301'
    case 'TM': return '101500'
    case 'DT': return '20240301101500'
    case 'AS': return '045Y'
    case 'CS': return 'JANSEN'
    case 'AE': return 'JANSEN_AE'
    case 'IS': return '7'
    case 'DS': return '1.5'
    case 'UR': return 'http://example.org/jansen'
    case 'US': case 'SS': case 'UL': case 'SL': case 'FL': case 'FD': return 7
    case 'AT': return 0x00100010
    case 'OB': case 'OW': case 'UN': case 'OF': case 'OD': case 'OL': case 'OV': case 'SV': case 'UV': return Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)
    default: return TEXT_VALUE
  }
}

export interface TestInstance {
  sopInstanceUID: string
  /** the file's bytes */
  bytes: Buffer
  /** where pixel data's value starts, and its bytes */
  pixels: Buffer
}

export interface InstanceInit {
  sopInstanceUID: string
  /** another instance this one references (Referenced SOP Instance UID, in sequences) */
  referenced?: string
  /** carry every writable table attribute (default true) */
  everyAttribute?: boolean
  modality?: string
  sopClassUID?: string
  /** Burned In Annotation (0028,0301); absent when undefined */
  burnedIn?: 'YES' | 'NO'
  syntax?: Syntax
  /** encapsulated pixel data (two fragments) under JPEG baseline instead of native */
  encapsulated?: boolean
  extra?: Element[]
}

export function makeInstance (init: InstanceInit): TestInstance {
  const syntax = init.syntax ?? EXPLICIT_LE
  const refs = { sopInstanceUID: init.sopInstanceUID, referenced: init.referenced ?? init.sopInstanceUID }
  const elements = new Map<number, Element>()
  if (init.everyAttribute ?? true) {
    for (const { tag: t, vr } of writableRows()) elements.set(t, el(t, vr, valueFor(t, vr, refs)))
  }
  const add = (e: Element): void => { elements.set(e.tag, e) }
  add(el(0x00080016, 'UI', init.sopClassUID ?? '1.2.840.10008.5.1.4.1.1.2'))
  add(el(0x00080018, 'UI', init.sopInstanceUID))
  add(el(0x0020000D, 'UI', ORIGINAL_STUDY))
  add(el(0x0020000E, 'UI', ORIGINAL_SERIES))
  add(el(0x00080060, 'CS', init.modality ?? 'CT'))
  add(el(0x00100010, 'PN', PATIENT_NAME))
  add(el(0x00100020, 'LO', PATIENT_ID))
  add(el(0x00100021, 'LO', 'NLMINBIZA'))
  add(el(0x00101002, 'SQ', [[el(0x00100020, 'LO', PATIENT_ID), el(0x00100021, 'LO', 'NLMINBIZA')]]))
  add(el(0x00080005, 'CS', 'ISO_IR 100'))
  add(el(0x00280002, 'US', 1))
  add(el(0x00280004, 'CS', 'MONOCHROME2'))
  add(el(0x00280010, 'US', 4))
  add(el(0x00280011, 'US', 4))
  add(el(0x00280100, 'US', 16))
  add(el(0x00280101, 'US', 12))
  add(el(0x00280102, 'US', 11))
  add(el(0x00280103, 'US', 0))
  if (init.burnedIn !== undefined) add(el(0x00280301, 'CS', init.burnedIn))
  else elements.delete(0x00280301)
  // Private attributes: two blocks, one of them partly allow-listed in a test.
  add(el(0x00090010, 'LO', 'ACME 1.0'))
  add(el(0x00091001, 'LO', 'secret of ACME'))
  add(el(0x00091002, 'LO', 'keep me'))
  add(el(0x00110010, 'LO', 'OTHER'))
  add(el(0x00111001, 'LO', 'other secret'))
  // A group length, which the rewrite drops.
  add(el(0x00180000, 'UL', 1234))
  for (const e of init.extra ?? []) add(e)

  const transferSyntaxUID = init.encapsulated === true ? '1.2.840.10008.1.2.4.50' : syntax.explicit ? '1.2.840.10008.1.2.1' : '1.2.840.10008.1.2'
  const preamble = encodeFilePreamble({ sopClassUID: init.sopClassUID ?? '1.2.840.10008.5.1.4.1.1.2', sopInstanceUID: init.sopInstanceUID, transferSyntaxUID })
  const dataset = encodeDataset([...elements.values()] as Item, syntax)
  let pixelElement: Buffer
  let pixels: Buffer
  if (init.encapsulated === true) {
    const fragments = [Buffer.from([0xFF, 0xD8, 1, 2, 3, 4, 0xFF, 0xD9]), Buffer.alloc(1000, 0x5A)]
    pixels = Buffer.concat([
      Buffer.from(encodeItemHeader(0xFFFEE000, 0)),
      ...fragments.flatMap((f) => [Buffer.from(encodeItemHeader(0xFFFEE000, f.length)), f]),
      Buffer.from(encodeItemHeader(0xFFFEE0DD, 0))
    ])
    pixelElement = Buffer.from(encodeElementHeader(0x7FE00010, 'OB', 0xFFFFFFFF, syntax))
  } else {
    pixels = Buffer.alloc(4 * 4 * 2)
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37) & 0xFF
    pixelElement = Buffer.from(encodeElementHeader(0x7FE00010, 'OW', pixels.length, syntax))
  }
  // After pixel data: a Digital Signatures Sequence and Data Set Trailing Padding (both X).
  const trailing = Buffer.from(encodeDataset([
    el(0xFFFAFFFA, 'SQ', [[el(0x04000100, 'UI', '1.2.3.4')]]),
    el(0xFFFCFFFC, 'OB', new Uint8Array(16))
  ], syntax))
  return { sopInstanceUID: init.sopInstanceUID, bytes: Buffer.concat([Buffer.from(preamble), Buffer.from(dataset), pixelElement, pixels, trailing]), pixels }
}

export async function writeInstance (path: string, init: InstanceInit): Promise<TestInstance> {
  const instance = makeInstance(init)
  await writeFile(path, instance.bytes)
  return instance
}

/** The bytes of `buffer` in chunks of `size`, as a stream would bring them. */
export async function * chunked (buffer: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < buffer.length; at += size) yield buffer.subarray(at, at + size)
}
