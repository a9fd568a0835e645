import { createRequire } from 'node:module'
import type { InstanceRecord, SeriesRecord, StudyRecord } from '../store/records.ts'
import { personName, type DicomJson, type DicomJsonAttribute } from './dicom-json.ts'
import { QueryKeyError } from './errors.ts'
import { levelOfTag } from './header-attributes.ts'

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
  /** attributes to return that the index does not keep (tag -> as asked), read from the stored header */
  include: Map<string, string>
  /** includefield=all: every attribute of the level, from the stored header */
  includeAll: boolean
  /** fuzzymatching=true: person names match case- and accent-insensitively, by whole name or one component */
  fuzzy: boolean
  /** for the Warning header: what was asked and cannot be done (matching on an attribute, returning one) */
  warnings: string[]
}

interface DcmjsDictionary { nameMap: Record<string, { tag: string }> }
let dictionary: DcmjsDictionary | undefined

/** A keyword or tag as the 8 upper-case hex digits of its tag; undefined when it names no DICOM attribute (dcmjs's dictionary). */
function tagOf (key: string): string | undefined {
  if (/^[0-9A-Fa-f]{8}$/.test(key)) return key.toUpperCase()
  dictionary ??= (createRequire(import.meta.url)('dcmjs') as { data: { DicomMetaDictionary: DcmjsDictionary } }).data.DicomMetaDictionary
  const entry = Object.hasOwn(dictionary.nameMap, key) ? dictionary.nameMap[key] : undefined
  return entry?.tag.replace(/[(),]/g, '').toUpperCase()
}

/**
 * Reads a QIDO-RS query string (already split into parameters, repeated ones as arrays). Unknown
 * names are refused (QueryKeyError). A valid DICOM attribute this node does not index is returned
 * (read from the stored header) but not matched on, with a warning, as PS3.18 allows.
 */
export function parseQuery (level: QueryLevel, params: Record<string, string | string[] | undefined>, maxLimit: number): ParsedQuery {
  const query: ParsedQuery = { level, matches: [], limit: undefined, offset: 0, include: new Map(), includeAll: false, fuzzy: false, warnings: [] }
  const unsupported: string[] = []
  const notOfLevel: string[] = []
  for (const [name, raw] of Object.entries(params)) {
    if (raw === undefined) continue
    const values = Array.isArray(raw) ? raw : [raw]
    if (CONTROL_PARAMETERS.has(name)) {
      if (name === 'limit') query.limit = Math.min(nonNegative(name, values), maxLimit)
      if (name === 'offset') query.offset = nonNegative(name, values)
      if (name === 'fuzzymatching') query.fuzzy = values.includes('true')
      if (name === 'includefield') includeFields(values, query, notOfLevel)
      continue
    }
    const key = /^[0-9a-f]{8}$/i.test(name) ? name.toUpperCase() : name
    const attribute = BY_KEY.get(key)
    if (attribute === undefined || LEVEL_DEPTH[attribute.level] > LEVEL_DEPTH[level]) {
      const tag = tagOf(key)
      if (tag === undefined) throw new QueryKeyError(`${name} is not a DICOM attribute keyword or tag`)
      if (values.length > 1) throw new QueryKeyError(`${name} is given more than once`)
      // An empty value only asks for the attribute back (universal matching): that much can be done.
      if (values[0] !== '') unsupported.push(name)
      else if (attribute !== undefined) notOfLevel.push(name)
      if (attribute === undefined) include(query, name, tag, notOfLevel)
      continue
    }
    if (values.length > 1) throw new QueryKeyError(`${name} is given more than once`)
    checkValue(attribute, values[0]!)
    query.matches.push({ attribute, value: values[0]! })
  }
  if (unsupported.length > 0) query.warnings.push(`not supported for matching at ${level} level, ignored: ${unsupported.join(', ')}`)
  if (notOfLevel.length > 0) query.warnings.push(`not ${level}-level attributes, so not returned: ${[...new Set(notOfLevel)].join(', ')}`)
  query.limit ??= maxLimit
  return query
}

/** Indexed attributes of the level are returned anyway; others are read from the header. */
function includeFields (values: string[], query: ParsedQuery, notOfLevel: string[]): void {
  for (const field of values.flatMap((v) => v.split(',')).map((f) => f.trim()).filter((f) => f !== '')) {
    if (field === 'all') {
      query.includeAll = true
      continue
    }
    const key = /^[0-9a-f]{8}$/i.test(field) ? field.toUpperCase() : field
    const indexed = BY_KEY.get(key)
    if (indexed !== undefined) {
      if (LEVEL_DEPTH[indexed.level] > LEVEL_DEPTH[query.level]) notOfLevel.push(field)
      continue
    }
    const tag = tagOf(key)
    if (tag === undefined) throw new QueryKeyError(`includefield ${field} is not a DICOM attribute keyword or tag`)
    include(query, field, tag, notOfLevel)
  }
}

function include (query: ParsedQuery, field: string, tag: string, notOfLevel: string[]): void {
  if (returnedAt(query.level, tag)) query.include.set(tag, field)
  else notOfLevel.push(field)
}

/** Whether an attribute the index does not keep (by tag) belongs in results of this level. */
export function returnedAt (level: QueryLevel, tag: string): boolean {
  return LEVEL_DEPTH[levelOfTag(tag)] <= LEVEL_DEPTH[level]
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
  return query.matches.every(({ attribute, value }) => matchesOne(attribute, value, attribute.value(row), query.fuzzy))
}

function matchesOne (attribute: Attribute, wanted: string, actual: string | number | string[] | undefined, fuzzy: boolean): boolean {
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
    case 'name': return values.some((v) => fuzzy ? fuzzyNameMatch(wanted, v) : wildcard(wanted, true).test(v))
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

/*
 * Fuzzy matching of person names (PS3.18 leaves it to the implementation). With fuzzymatching=true
 * a name matches when, after folding case and accents on both sides (Müller = muller = MULLER,
 * ß = ss, æ = ae, ø = o, ł = l, ĳ = ij), the pattern with its * and ? wildcards matches the whole
 * name, or, for a pattern without ^, any one of its components (muller finds Müller^Hans).
 * Without it, names match case-insensitively but accents count.
 */
const FOLDED: Record<string, string> = { ß: 'ss', æ: 'ae', œ: 'oe', ø: 'o', đ: 'd', ð: 'd', ł: 'l', ı: 'i', ĳ: 'ij', þ: 'th' }

export function foldName (name: string): string {
  return name.toLowerCase().normalize('NFKD').replace(/\p{M}/gu, '').replace(/[ßæœøđðłıĳþ]/g, (c) => FOLDED[c]!)
}

function fuzzyNameMatch (pattern: string, name: string): boolean {
  const wanted = wildcard(foldName(pattern), false)
  const folded = foldName(name)
  if (wanted.test(folded)) return true
  return !pattern.includes('^') && folded.split(/[=^]/).some((component) => wanted.test(component.trim()))
}

/** The DICOM JSON of one result: every indexed attribute of its level and the levels above it, and `extra` (read from the header). */
export function rowToJson (level: QueryLevel, row: QueryRow, retrieveUrl: string, extra: DicomJson = {}): DicomJson {
  const out: DicomJson = { ...extra }
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
