import type { StudyRecord } from '../store/records.ts'
import type { StudyQuery } from '../store/study-index.ts'
import type { StudyStore } from '../store/study-store.ts'
import { matches, parseQuery, rowToJson, type ParsedQuery, type QueryLevel, type QueryRow } from './qido.ts'
import type { DicomJson } from './dicom-json.ts'

/*
 * Runs a QIDO-RS search (or a C-FIND) against the store: narrows the candidate studies with the
 * index where a key allows it, then matches every row with DICOM's rules and pages the result.
 */

export interface SearchScope {
  studyInstanceUID?: string
  seriesInstanceUID?: string
}

export interface SearchResult {
  results: DicomJson[]
  warnings: string[]
  /** the studies the results come from, once each (whose patients were shown: the audit trail) */
  studies: StudyRecord[]
}

/** Where a result can be retrieved from (WADO-RS), for its RetrieveURL. */
export type RetrieveUrlOf = (level: QueryLevel, row: QueryRow) => string

export async function search (store: StudyStore, level: QueryLevel, params: Record<string, string | string[] | undefined>, scope: SearchScope,
  options: { maxResults: number, retrieveUrl: RetrieveUrlOf }): Promise<SearchResult> {
  const query = parseQuery(level, params, options.maxResults)
  const results: DicomJson[] = []
  const studies = new Map<string, StudyRecord>()
  let skipped = 0
  for await (const row of rowsOf(store, level, query, scope)) {
    if (!matches(query, row)) continue
    if (skipped < query.offset) {
      skipped++
      continue
    }
    results.push(rowToJson(level, row, options.retrieveUrl(level, row)))
    studies.set(row.study.studyInstanceUID, row.study)
    if (results.length >= query.limit!) break
  }
  return { results, warnings: query.warnings, studies: [...studies.values()] }
}

async function * rowsOf (store: StudyStore, level: QueryLevel, query: ParsedQuery, scope: SearchScope): AsyncGenerator<QueryRow> {
  for (const study of await candidateStudies(store, query, scope)) {
    if (level === 'study') {
      yield { study }
      continue
    }
    const entries = await store.index.getEntries(study.studyInstanceUID)
    if (entries === undefined) continue
    for (const series of entries.series) {
      if (scope.seriesInstanceUID !== undefined && series.seriesInstanceUID !== scope.seriesInstanceUID) continue
      if (level === 'series') {
        yield { study: entries.study, series }
        continue
      }
      for (const instance of entries.instances) {
        if (instance.seriesInstanceUID === series.seriesInstanceUID) yield { study: entries.study, series, instance }
      }
    }
  }
}

/** Studies to look at: the one in the path, the listed ones, or what an index narrows to (newest first). */
async function candidateStudies (store: StudyStore, query: ParsedQuery, scope: SearchScope): Promise<StudyRecord[]> {
  const value = (keyword: string): string | undefined => query.matches.find((m) => m.attribute.keyword === keyword)?.value
  const listed = value('StudyInstanceUID')
  const uids = scope.studyInstanceUID !== undefined ? [scope.studyInstanceUID] : listed !== undefined && listed !== '' ? listed.split(/[,\\]/) : undefined
  if (uids !== undefined) return (await Promise.all(uids.map(async (uid) => store.index.getStudy(uid)))).filter((s): s is StudyRecord => s !== undefined)
  const hint: StudyQuery = {}
  const exact = (v: string | undefined): string | undefined => v === undefined || v === '' || /[*?]/.test(v) ? undefined : v
  hint.accessionNumber = exact(value('AccessionNumber'))
  const patientId = exact(value('PatientID'))
  const issuer = value('IssuerOfPatientID')
  if (patientId !== undefined && issuer !== undefined && exact(issuer) !== undefined) {
    hint.patientId = patientId
    hint.issuer = issuer
  }
  const date = value('StudyDate')
  if (date !== undefined && date !== '') {
    const [from, to] = date.includes('-') ? date.split('-') : [date, date]
    if (from !== '') hint.dateFrom = from
    if (to !== '') hint.dateTo = to
  }
  for (const key of Object.keys(hint) as Array<keyof StudyQuery>) if (hint[key] === undefined) delete hint[key]
  return store.findStudies(hint)
}
