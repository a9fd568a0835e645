import type { InstanceRecord, StudyRecord } from '../store/records.ts'
import type { StudyEntries, StudyQuery } from '../store/study-index.ts'
import type { StudyStore } from '../store/study-store.ts'
import { matches, parseQuery, returnedAt, rowToJson, type ParsedQuery, type QueryLevel, type QueryRow } from './qido.ts'
import type { DicomJson } from './dicom-json.ts'
import { headerAttributesOf, TOO_LARGE, type HeaderAttributes } from './header-attributes.ts'

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
  options: { maxResults: number, retrieveUrl: RetrieveUrlOf, headers?: HeaderAttributes }): Promise<SearchResult> {
  const query = parseQuery(level, params, options.maxResults)
  const results: DicomJson[] = []
  const studies = new Map<string, StudyRecord>()
  const extras = query.include.size > 0 || query.includeAll ? new ExtraAttributes(store, query, options.headers ?? headerAttributesOf(store)) : undefined
  let skipped = 0
  for await (const row of rowsOf(store, level, query, scope)) {
    if (!matches(query, row)) continue
    if (skipped < query.offset) {
      skipped++
      continue
    }
    results.push(rowToJson(level, row, options.retrieveUrl(level, row), await extras?.of(row)))
    studies.set(row.study.studyInstanceUID, row.study)
    if (results.length >= query.limit!) break
  }
  return { results, warnings: [...query.warnings, ...extras?.warnings() ?? []], studies: [...studies.values()] }
}

/**
 * The attributes a search returns beyond the index, read from one stored instance per result: the
 * instance itself, the first image of a series (for series and study attributes), the first image
 * of a study (for study attributes). An attribute the file does not have is simply absent.
 */
class ExtraAttributes {
  private readonly store: StudyStore
  private readonly query: ParsedQuery
  private readonly headers: HeaderAttributes
  /** the last study's entries: series rows come study by study */
  private last: { uid: string, entries: Promise<StudyEntries | undefined> } | undefined
  private unreadable = 0
  private readonly tooLarge = new Set<string>()

  constructor (store: StudyStore, query: ParsedQuery, headers: HeaderAttributes) {
    this.store = store
    this.query = query
    this.headers = headers
  }

  async of (row: QueryRow): Promise<DicomJson> {
    const instance = row.instance ?? await this.representative(row)
    const header = instance === undefined ? undefined : await this.headers.of(instance)
    if (header === undefined) {
      this.unreadable++
      return {}
    }
    const out: DicomJson = {}
    const wanted = this.query.includeAll ? Object.keys(header).filter((tag) => returnedAt(this.query.level, tag)) : [...this.query.include.keys()]
    for (const tag of wanted) {
      const attribute = header[tag]
      if (attribute === undefined) continue
      if (attribute.BulkDataURI === TOO_LARGE) this.tooLarge.add(this.query.include.get(tag) ?? tag)
      else out[tag] = attribute
    }
    return out
  }

  /** What cannot be returned, for the Warning header. */
  warnings (): string[] {
    const out: string[] = []
    if (this.unreadable > 0) out.push(`the stored header of ${this.unreadable} results could not be read; attributes not indexed are missing from them`)
    if (this.tooLarge.size > 0) out.push(`too large for a search result (retrieve the metadata instead): ${[...this.tooLarge].join(', ')}`)
    return out
  }

  private async representative (row: QueryRow): Promise<InstanceRecord | undefined> {
    const uid = row.study.studyInstanceUID
    if (this.last?.uid !== uid) this.last = { uid, entries: this.store.index.getEntries(uid) }
    const instances = (await this.last.entries)?.instances
      .filter((i) => row.series === undefined || i.seriesInstanceUID === row.series.seriesInstanceUID) ?? []
    // An image rather than a report: reports are often made elsewhere, with less of the header.
    return instances.find((i) => !i.isReport) ?? instances[0]
  }
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
