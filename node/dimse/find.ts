import { createRequire } from 'node:module'
import type { StudyRecord } from '../store/records.ts'
import type { StudyStore } from '../store/study-store.ts'
import type { DicomJson } from '../dicomweb/dicom-json.ts'
import { QueryKeyError } from '../dicomweb/errors.ts'
import type { QueryLevel } from '../dicomweb/qido.ts'
import { search } from '../dicomweb/search.ts'

/*
 * C-FIND (PS3.4 C.4.1) on the same attributes and matching as QIDO-RS: the identifier's keys with
 * a value are matching keys, empty ones ask for the attribute back. Each response carries exactly
 * the keys asked for (empty when no instance of the match has them), as the standard requires.
 */

export type Identifier = Record<string, unknown>

const LEVELS: Record<string, QueryLevel | 'patient'> = { PATIENT: 'patient', STUDY: 'study', SERIES: 'series', IMAGE: 'instance' }
/** Keys that steer the query rather than match. */
const CONTROL_KEYS = new Set(['QueryRetrieveLevel', 'SpecificCharacterSet', 'RetrieveAETitle', 'InstanceAvailability', 'TimezoneOffsetFromUTC'])

type Naturalize = (json: DicomJson) => Record<string, unknown>
let naturalize: Naturalize | undefined

function naturalized (json: DicomJson): Record<string, unknown> {
  naturalize ??= (createRequire(import.meta.url)('dcmjs') as { data: { DicomMetaDictionary: { naturalizeDataset: Naturalize } } }).data.DicomMetaDictionary.naturalizeDataset
  return naturalize(json)
}

/** A matching value as QIDO-RS would take it: names as their alphabetic group, multiple values joined with '\'. */
function matchValue (value: unknown): string {
  if (value === null || value === undefined) return ''
  if (Array.isArray(value)) return value.map(matchValue).join('\\')
  if (typeof value === 'object') {
    const name = value as { Alphabetic?: string }
    return name.Alphabetic ?? ''
  }
  return String(value).trim()
}

export interface FindResult {
  level: string
  /** each response's dataset (naturalized, keyed by keyword) */
  matches: Array<Record<string, unknown>>
  /** the studies the answers come from (whose patients were shown: the audit trail) */
  studies: StudyRecord[]
}

export async function find (store: StudyStore, identifier: Identifier, options: { aeTitle: string, maxResults: number }): Promise<FindResult> {
  const levelName = String(identifier.QueryRetrieveLevel ?? '').trim().toUpperCase()
  const level = LEVELS[levelName]
  if (level === undefined) throw new QueryKeyError(`QueryRetrieveLevel ${JSON.stringify(levelName)} is not PATIENT, STUDY, SERIES or IMAGE`)
  const params: Record<string, string> = {}
  const asked: string[] = []
  for (const [keyword, raw] of Object.entries(identifier)) {
    // dcmjs keeps its own bookkeeping (_vrMap) next to the attributes
    if (CONTROL_KEYS.has(keyword) || keyword.startsWith('_')) continue
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(keyword)) throw new QueryKeyError(`the identifier holds ${keyword}, which is not a DICOM attribute this node knows`)
    asked.push(keyword)
    // An empty key is universal matching: it asks for the attribute back, read from the header when not indexed.
    params[keyword] = matchValue(raw)
  }
  const searchLevel: QueryLevel = level === 'patient' ? 'study' : level
  const { results, studies } = await search(store, searchLevel, params, {}, { maxResults: options.maxResults, retrieveUrl: () => '' })
  const matches: Array<Record<string, unknown>> = []
  const seenPatients = new Set<string>()
  for (const json of results) {
    const all = naturalized(json)
    if (level === 'patient') {
      // One answer per patient, not per study.
      const key = `${String(all.PatientID ?? '')}\\${String(all.IssuerOfPatientID ?? '')}`
      if (seenPatients.has(key)) continue
      seenPatients.add(key)
    }
    const answer: Record<string, unknown> = { QueryRetrieveLevel: levelName, RetrieveAETitle: options.aeTitle, SpecificCharacterSet: 'ISO_IR 192' }
    for (const keyword of asked) answer[keyword] = all[keyword] ?? ''
    matches.push(answer)
  }
  return { level: levelName, matches, studies }
}
