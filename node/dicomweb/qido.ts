import { createRequire } from 'node:module'
import type { InstanceRecord, SeriesRecord, StudyRecord } from '../store/records.ts'
import { personName, type DicomJson, type DicomJsonAttribute } from './dicom-json.ts'
import { QueryKeyError } from './errors.ts'

/*
 * QIDO-RS (PS3.18 10.6) over the store's index: which attributes a search matches on and returns
 * at each level, and DICOM's matching rules for them (single value, list of UIDs, wildcard, range).
 * C-FIND uses the same attributes and matching.
 */

export type QueryLevel = 'study' | 'series' | 'instance'

/** One result row: a study, and for series and instance searches the series and instance in it. */
export interface QueryRow {
  study: StudyRecord
  series?: SeriesRecord
  instance?: InstanceRecord
}

type Matching = 'uid' | 'text' | 'name' | 'date' | 'time' | 'number' | 'code'

interface Attribute {
  keyword: string
  tag: string
  vr: string
  level: QueryLevel
  matching: Matching
  /** the row's values ('' or undefined: empty) */
  value: (row: QueryRow) => string | number | string[] | undefined
}

const ATTRIBUTES: Attribute[] = [
  { keyword: 'StudyDate', tag: '00080020', vr: 'DA', level: 'study', matching: 'date', value: (r) => r.study.date },
  { keyword: 'StudyTime', tag: '00080030', vr: 'TM', level: 'study', matching: 'time', value: (r) => r.study.time },
  { keyword: 'AccessionNumber', tag: '00080050', vr: 'SH', level: 'study', matching: 'text', value: (r) => r.study.accessionNumber },
  { keyword: 'ModalitiesInStudy', tag: '00080061', vr: 'CS', level: 'study', matching: 'code', value: (r) => r.study.modalities },
  { keyword: 'ReferringPhysicianName', tag: '00080090', vr: 'PN', level: 'study', matching: 'name', value: (r) => r.study.referringPhysician },
  { keyword: 'StudyDescription', tag: '00081030', vr: 'LO', level: 'study', matching: 'text', value: (r) => r.study.description },
  { keyword: 'PatientName', tag: '00100010', vr: 'PN', level: 'study', matching: 'name', value: (r) => r.study.patient.name },
  { keyword: 'PatientID', tag: '00100020', vr: 'LO', level: 'study', matching: 'text', value: (r) => r.study.patient.id },
  { keyword: 'IssuerOfPatientID', tag: '00100021', vr: 'LO', level: 'study', matching: 'text', value: (r) => r.study.patient.issuer },
  { keyword: 'PatientBirthDate', tag: '00100030', vr: 'DA', level: 'study', matching: 'date', value: (r) => r.study.patient.birthDate },
  { keyword: 'PatientSex', tag: '00100040', vr: 'CS', level: 'study', matching: 'code', value: (r) => r.study.patient.sex },
  { keyword: 'StudyInstanceUID', tag: '0020000D', vr: 'UI', level: 'study', matching: 'uid', value: (r) => r.study.studyInstanceUID },
  { keyword: 'StudyID', tag: '00200010', vr: 'SH', level: 'study', matching: 'text', value: (r) => r.study.studyId },
  { keyword: 'NumberOfStudyRelatedSeries', tag: '00201206', vr: 'IS', level: 'study', matching: 'number', value: (r) => r.study.numberOfSeries },
  { keyword: 'NumberOfStudyRelatedInstances', tag: '00201208', vr: 'IS', level: 'study', matching: 'number', value: (r) => r.study.numberOfInstances },
  { keyword: 'Modality', tag: '00080060', vr: 'CS', level: 'series', matching: 'code', value: (r) => r.series?.modality },
  { keyword: 'SeriesDescription', tag: '0008103E', vr: 'LO', level: 'series', matching: 'text', value: (r) => r.series?.description },
  { keyword: 'BodyPartExamined', tag: '00180015', vr: 'CS', level: 'series', matching: 'code', value: (r) => r.series?.bodyPart },
  { keyword: 'SeriesInstanceUID', tag: '0020000E', vr: 'UI', level: 'series', matching: 'uid', value: (r) => r.series?.seriesInstanceUID },
  { keyword: 'SeriesNumber', tag: '00200011', vr: 'IS', level: 'series', matching: 'number', value: (r) => r.series?.number },
  { keyword: 'NumberOfSeriesRelatedInstances', tag: '00201209', vr: 'IS', level: 'series', matching: 'number', value: (r) => r.series?.numberOfInstances },
  { keyword: 'SOPClassUID', tag: '00080016', vr: 'UI', level: 'instance', matching: 'uid', value: (r) => r.instance?.sopClassUID },
  { keyword: 'SOPInstanceUID', tag: '00080018', vr: 'UI', level: 'instance', matching: 'uid', value: (r) => r.instance?.sopInstanceUID },
  { keyword: 'AvailableTransferSyntaxUID', tag: '00083002', vr: 'UI', level: 'instance', matching: 'uid', value: (r) => r.instance?.transferSyntaxUID },
  { keyword: 'InstanceNumber', tag: '00200013', vr: 'IS', level: 'instance', matching: 'number', value: (r) => r.instance?.number },
  { keyword: 'NumberOfFrames', tag: '00280008', vr: 'IS', level: 'instance', matching: 'number', value: (r) => r.instance?.frames },
  { keyword: 'Rows', tag: '00280010', vr: 'US', level: 'instance', matching: 'number', value: (r) => r.instance?.rows },
  { keyword: 'Columns', tag: '00280011', vr: 'US', level: 'instance', matching: 'number', value: (r) => r.instance?.columns }
]

const BY_KEY = new Map<string, Attribute>()
for (const a of ATTRIBUTES) {
  BY_KEY.set(a.keyword, a)
  BY_KEY.set(a.tag, a)
}
const LEVEL_DEPTH: Record<QueryLevel, number> = { study: 0, series: 1, instance: 2 }

/** Parameters of a search that are not attribute matches. */
const CONTROL_PARAMETERS = new Set(['includefield', 'limit', 'offset', 'fuzzymatching'])

export interface ParsedQuery {
  level: QueryLevel
  matches: Array<{ attribute: Attribute, value: string }>
  limit: number | undefined
  offset: number
  /** for the Warning header: what was asked and is not supported (matching on it, fuzzy matching) */
  warnings: string[]
}

let nameMap: Record<string, unknown> | undefined

/** Every keyword and tag of the DICOM dictionary (dcmjs's), to tell a valid but unsupported key from a typo. */
function isDicomAttribute (key: string): boolean {
  if (/^[0-9A-Fa-f]{8}$/.test(key)) return true
  nameMap ??= (createRequire(import.meta.url)('dcmjs') as { data: { DicomMetaDictionary: { nameMap: Record<string, unknown> } } }).data.DicomMetaDictionary.nameMap
  return Object.hasOwn(nameMap, key)
}

/**
 * Reads a QIDO-RS query string (already split into parameters, repeated ones as arrays). Unknown
 * names are refused (QueryKeyError); valid DICOM attributes this node does not index are ignored
 * with a warning, as PS3.18 allows.
 */
export function parseQuery (level: QueryLevel, params: Record<string, string | string[] | undefined>, maxLimit: number): ParsedQuery {
  const query: ParsedQuery = { level, matches: [], limit: undefined, offset: 0, warnings: [] }
  const unsupported: string[] = []
  for (const [name, raw] of Object.entries(params)) {
    if (raw === undefined) continue
    const values = Array.isArray(raw) ? raw : [raw]
    if (CONTROL_PARAMETERS.has(name)) {
      if (name === 'limit') query.limit = Math.min(nonNegative(name, values), maxLimit)
      if (name === 'offset') query.offset = nonNegative(name, values)
      if (name === 'fuzzymatching' && values.includes('true')) query.warnings.push('fuzzy matching is not supported; matching was exact')
      if (name === 'includefield') checkIncludeFields(values, query)
      continue
    }
    const key = /^[0-9a-f]{8}$/i.test(name) ? name.toUpperCase() : name
    const attribute = BY_KEY.get(key)
    if (attribute === undefined || LEVEL_DEPTH[attribute.level] > LEVEL_DEPTH[level]) {
      if (!isDicomAttribute(key)) throw new QueryKeyError(`${name} is not a DICOM attribute keyword or tag`)
      unsupported.push(name)
      continue
    }
    if (values.length > 1) throw new QueryKeyError(`${name} is given more than once`)
    checkValue(attribute, values[0]!)
    query.matches.push({ attribute, value: values[0]! })
  }
  if (unsupported.length > 0) query.warnings.push(`not supported for matching at ${level} level, ignored: ${unsupported.join(', ')}`)
  query.limit ??= maxLimit
  return query
}

/** Every indexed attribute is returned anyway; one the node does not index cannot be, and the client is told. */
function checkIncludeFields (values: string[], query: ParsedQuery): void {
  const notIndexed: string[] = []
  for (const field of values.flatMap((v) => v.split(',')).map((f) => f.trim()).filter((f) => f !== '' && f !== 'all')) {
    const key = /^[0-9a-f]{8}$/i.test(field) ? field.toUpperCase() : field
    if (BY_KEY.has(key)) continue
    if (!isDicomAttribute(key)) throw new QueryKeyError(`includefield ${field} is not a DICOM attribute keyword or tag`)
    notIndexed.push(field)
  }
  if (notIndexed.length > 0) query.warnings.push(`not indexed, so not returned: ${notIndexed.join(', ')}`)
}

function nonNegative (name: string, values: string[]): number {
  const value = values[0] ?? ''
  if (values.length > 1 || !/^[0-9]{1,9}$/.test(value)) throw new QueryKeyError(`${name} must be a whole number`)
  return Number(value)
}

const DATE_RANGE = /^([0-9]{8})?(-([0-9]{8})?)?$/
const TIME_RANGE = /^([0-9]{2,6}(\.[0-9]{1,6})?)?(-([0-9]{2,6}(\.[0-9]{1,6})?)?)?$/

function checkValue (attribute: Attribute, value: string): void {
  const bad = (why: string): never => { throw new QueryKeyError(`${attribute.keyword}=${JSON.stringify(value.slice(0, 80))}: ${why}`) }
  if (value.length > 1024) bad('longer than any DICOM value')
  switch (attribute.matching) {
    case 'date': if (value !== '' && (!DATE_RANGE.test(value) || value === '-')) bad('dates are YYYYMMDD, ranges YYYYMMDD-YYYYMMDD'); break
    case 'time': if (value !== '' && (!TIME_RANGE.test(value) || value === '-')) bad('times are HHMMSS, ranges HHMMSS-HHMMSS'); break
    case 'number': if (value !== '' && !/^-?[0-9]{1,10}$/.test(value)) bad('a whole number'); break
    case 'uid': if (!value.split(/[,\\]/).every((u) => u === '' || /^[0-9.]{1,64}$/.test(u))) bad('UIDs are digits and dots'); break
  }
}

/** Whether a row matches every attribute of the query. */
export function matches (query: ParsedQuery, row: QueryRow): boolean {
  return query.matches.every(({ attribute, value }) => matchesOne(attribute, value, attribute.value(row)))
}

function matchesOne (attribute: Attribute, wanted: string, actual: string | number | string[] | undefined): boolean {
  // An empty key is universal matching: it only asks for the attribute to be returned.
  if (wanted === '' || wanted === '*') return true
  const values = Array.isArray(actual) ? actual : [actual === undefined ? '' : String(actual)]
  switch (attribute.matching) {
    case 'uid': {
      const list = new Set(wanted.split(/[,\\]/))
      return values.some((v) => list.has(v))
    }
    case 'date': return values.some((v) => inRange(v, wanted, (s) => s))
    case 'time': return values.some((v) => inRange(v, wanted, normaliseTime))
    case 'number': return values.some((v) => v !== '' && Number(v) === Number(wanted))
    case 'name': return values.some((v) => wildcard(wanted, true).test(v))
    default: return values.some((v) => wildcard(wanted, false).test(v))
  }
}

function inRange (value: string, range: string, normalise: (s: string) => string): boolean {
  if (value === '') return false
  const v = normalise(value)
  if (!range.includes('-')) return v === normalise(range) || (normalise === normaliseTime && v.startsWith(normalise(range)))
  const [from, to] = range.split('-')
  return (from === '' || v >= normalise(from!)) && (to === '' || v <= normalise(to!).padEnd(v.length, '9'))
}

function normaliseTime (t: string): string {
  return t.replace(/:/g, '')
}

/** DICOM wildcards (PS3.4 C.2.2.2.4): * any run of characters, ? one character. Routing rules use them too. */
export function wildcard (pattern: string, ignoreCase: boolean): RegExp {
  const source = pattern.split('').map((c) => c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')).join('')
  return new RegExp(`^${source}$`, ignoreCase ? 'i' : '')
}

/** The DICOM JSON of one result: every indexed attribute of its level and the levels above it. */
export function rowToJson (level: QueryLevel, row: QueryRow, retrieveUrl: string): DicomJson {
  const out: DicomJson = {}
  for (const attribute of ATTRIBUTES) {
    if (LEVEL_DEPTH[attribute.level] > LEVEL_DEPTH[level]) continue
    out[attribute.tag] = attributeJson(attribute, attribute.value(row))
  }
  out['00081190'] = { vr: 'UR', Value: [retrieveUrl] }
  out['00080056'] = { vr: 'CS', Value: ['ONLINE'] }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)))
}

function attributeJson (attribute: Attribute, value: string | number | string[] | undefined): DicomJsonAttribute {
  if (value === undefined || value === '' || (Array.isArray(value) && value.length === 0)) return { vr: attribute.vr }
  if (attribute.vr === 'PN') return { vr: 'PN', Value: [personName(String(value))] }
  if (attribute.vr === 'IS' || attribute.vr === 'US') return { vr: attribute.vr, Value: [Number(value)] }
  return { vr: attribute.vr, Value: Array.isArray(value) ? value : [value] }
}
