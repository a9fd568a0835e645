import { Level } from 'level'
import type { AbstractSublevel } from 'abstract-level'
import { LEVEL_MEMORY_OPTIONS, openLevel } from './level-open.ts'
import type { HoldRecord, InstanceRecord, SeriesRecord, SopLocation, StudyRecord } from './records.ts'

/*
 * The level index: studies -> series -> instances (each study carries its patient), plus the
 * secondary keys queries use. Every change to one study is one synced batch, so a study is either
 * wholly indexed or not at all, and nothing of a deleted study's patient stays behind.
 * Keys join parts with NUL, which neither UIDs nor trimmed DICOM strings contain.
 */

/** studies whose entries are kept in memory after a write (a few concurrent arrivals) */
const RECENT_STUDIES = 8

const SEP = '\x00'
const LAST = '\xff'

type Sub<V> = AbstractSublevel<Level<string, unknown>, string | Buffer | Uint8Array, string, V>

export interface StudyQuery {
  patientId?: string
  issuer?: string
  bsn?: string
  /** YYYYMMDD, inclusive */
  dateFrom?: string
  dateTo?: string
  modality?: string
  accessionNumber?: string
  /** words that must all appear in the patient's name, any case ("jansen anna" finds Jansen^Anna) */
  name?: string
  /** YYYYMMDD */
  birthDate?: string
  limit?: number
}

/** The full contents of one study's index entries, as committed or deleted in one batch. */
export interface StudyEntries {
  study: StudyRecord
  series: SeriesRecord[]
  instances: InstanceRecord[]
}

export class StudyIndex {
  /** synced batches written for studies' instances (a group commit writes one for many instances) */
  readonly stats = { batches: 0 }
  /**
   * The entries of the studies written last, as written: a study arriving instance by instance
   * (C-STORE) is judged against its entries at every commit, and reading them all back from level
   * each time costs a 2,000-image CT two million record reads. Only this class writes them.
   */
  private readonly recent = new Map<string, StudyEntries>()
  private readonly db: Level<string, unknown>
  private readonly studies: Sub<StudyRecord>
  private readonly series: Sub<SeriesRecord>
  private readonly instances: Sub<InstanceRecord>
  private readonly sops: Sub<SopLocation>
  private readonly blobs: Sub<string>
  private readonly holds: Sub<HoldRecord>
  /** secondary keys: value is always '' — the key is the information */
  private readonly byPatient: Sub<string>
  private readonly byBsn: Sub<string>
  private readonly byDate: Sub<string>
  private readonly byAccession: Sub<string>

  constructor (location: string) {
    this.db = new Level<string, unknown>(location, { valueEncoding: 'json', ...LEVEL_MEMORY_OPTIONS })
    const sub = <V>(name: string): Sub<V> => this.db.sublevel<string, V>(name, { valueEncoding: 'json' })
    this.studies = sub('studies')
    this.series = sub('series')
    this.instances = sub('instances')
    this.sops = sub('sops')
    this.blobs = sub('blobs')
    this.holds = sub('holds')
    this.byPatient = sub('by-patient')
    this.byBsn = sub('by-bsn')
    this.byDate = sub('by-date')
    this.byAccession = sub('by-accession')
  }

  async start (): Promise<void> {
    await openLevel(this.db)
  }

  async stop (): Promise<void> {
    await this.db.close()
  }

  async getStudy (studyInstanceUID: string): Promise<StudyRecord | undefined> {
    return this.studies.get(studyInstanceUID)
  }

  async getSopLocation (sopInstanceUID: string): Promise<SopLocation | undefined> {
    // Read at once rather than through the thread pool: every arriving instance asks, and behind
    // the pool's fsyncs of other arrivals the question would wait for milliseconds.
    return this.sops.getSync(sopInstanceUID)
  }

  /** One indexed instance, where its SOP location says it is. */
  async getInstance (location: Pick<SopLocation, 'studyInstanceUID' | 'seriesInstanceUID'>, sopInstanceUID: string): Promise<InstanceRecord | undefined> {
    return this.instances.get(key(location.studyInstanceUID, location.seriesInstanceUID, sopInstanceUID))
  }

  /** The instance a content hash belongs to, as `study NUL series NUL sop`. */
  async getBlobOwner (sha256: string): Promise<string | undefined> {
    return this.blobs.get(sha256)
  }

  async getEntries (studyInstanceUID: string): Promise<StudyEntries | undefined> {
    const recent = this.recent.get(studyInstanceUID)
    if (recent !== undefined) return { study: recent.study, series: [...recent.series], instances: [...recent.instances] }
    const study = await this.getStudy(studyInstanceUID)
    if (study === undefined) return undefined
    return {
      study,
      series: await values(this.series, prefixRange(studyInstanceUID)),
      instances: await values(this.instances, prefixRange(studyInstanceUID))
    }
  }

  /** Keeps a study's entries as just written, dropping the least recently written beyond the bound. */
  private remember (entries: StudyEntries): void {
    const uid = entries.study.studyInstanceUID
    this.recent.delete(uid)
    // In key order, as level gives them back.
    this.recent.set(uid, {
      study: entries.study,
      series: inKeyOrder(entries.series, (s) => s.seriesInstanceUID),
      instances: inKeyOrder(entries.instances, (i) => key(i.seriesInstanceUID, i.sopInstanceUID))
    })
    for (const old of this.recent.keys()) {
      if (this.recent.size <= RECENT_STUDIES) break
      this.recent.delete(old)
    }
  }

  /**
   * Replaces everything indexed for one study with `next`, in one atomic batch. Only what changed
   * is written: instance records never change once indexed, so a study growing by one instance at
   * a time (DIMSE C-STORE) costs one instance's entries, not the whole study's again.
   */
  async writeStudy (next: StudyEntries, previous: StudyEntries | undefined): Promise<void> {
    await this.writeStudies([{ next, previous }])
  }

  /** Several studies' writeStudy in one synced batch: a group commit's one index write. */
  async writeStudies (changes: Array<{ next: StudyEntries, previous: StudyEntries | undefined }>): Promise<void> {
    const batch = this.db.batch()
    for (const { next, previous } of changes) this.studyOps(batch, next, previous)
    this.stats.batches++
    // Forgotten before the write, remembered after: a failed write leaves no entries it did not make.
    for (const { next } of changes) this.recent.delete(next.study.studyInstanceUID)
    await batch.write({ sync: true })
    for (const { next } of changes) this.remember(next)
  }

  private studyOps (batch: ReturnType<Level<string, unknown>['batch']>, next: StudyEntries, previous: StudyEntries | undefined): void {
    const { study } = next
    const uid = study.studyInstanceUID
    const instanceKey = (i: InstanceRecord): string => key(uid, i.seriesInstanceUID, i.sopInstanceUID)
    // By SOP Instance UID (one per study), without building a key string for every instance at every commit.
    const bySop = (list: InstanceRecord[]): Map<string, InstanceRecord> => new Map(list.map((i) => [i.sopInstanceUID, i]))
    const same = (a: InstanceRecord | undefined, b: InstanceRecord): boolean => a !== undefined && a.sha256 === b.sha256 && a.seriesInstanceUID === b.seriesInstanceUID
    const indexed = bySop(previous?.instances ?? [])
    if (previous !== undefined) {
      const kept = bySop(next.instances)
      const keptSeries = new Set(next.series.map((s) => s.seriesInstanceUID))
      for (const s of previous.series) if (!keptSeries.has(s.seriesInstanceUID)) batch.del(key(uid, s.seriesInstanceUID), { sublevel: this.series })
      for (const i of previous.instances) {
        // A replaced instance (same key, other file) loses its old content hash; its keys are put again below.
        if (same(kept.get(i.sopInstanceUID), i)) continue
        batch.del(instanceKey(i), { sublevel: this.instances })
        batch.del(i.sopInstanceUID, { sublevel: this.sops })
        batch.del(i.sha256, { sublevel: this.blobs })
      }
      for (const [sublevel, stale] of this.secondaryKeys(previous.study)) batch.del(stale, { sublevel })
    }
    batch.put(uid, study, { sublevel: this.studies })
    for (const s of next.series) batch.put(key(uid, s.seriesInstanceUID), s, { sublevel: this.series })
    for (const i of next.instances) {
      if (same(indexed.get(i.sopInstanceUID), i)) continue
      batch.put(instanceKey(i), i, { sublevel: this.instances })
      batch.put(i.sopInstanceUID, { studyInstanceUID: uid, seriesInstanceUID: i.seriesInstanceUID, sha256: i.sha256 }, { sublevel: this.sops })
      batch.put(i.sha256, instanceKey(i), { sublevel: this.blobs })
    }
    // A del and a put of the same key in one batch: the put wins, so unchanged keys survive.
    for (const [sublevel, fresh] of this.secondaryKeys(study)) batch.put(fresh, '', { sublevel })
  }

  /** The keys a study has in the lookup indexes (patient, BSN, date, accession). */
  private secondaryKeys (study: StudyRecord): Array<[Sub<string>, string]> {
    const uid = study.studyInstanceUID
    const p = study.patient
    const keys: Array<[Sub<string>, string]> = [[this.byPatient, key(p.issuer, p.id, uid)], [this.byDate, key(study.date, uid)]]
    if (p.bsn !== undefined) keys.push([this.byBsn, key(p.bsn, uid)])
    if (study.accessionNumber !== '') keys.push([this.byAccession, key(study.accessionNumber, uid)])
    return keys
  }

  /** Removes every index entry of a study in one batch (holds included). */
  async deleteStudy (entries: StudyEntries): Promise<void> {
    this.recent.delete(entries.study.studyInstanceUID)
    const batch = this.db.batch()
    this.deleteOps(batch, entries)
    for (const holder of await this.holdersOf(entries.study.studyInstanceUID)) {
      batch.del(key(entries.study.studyInstanceUID, holder), { sublevel: this.holds })
    }
    await batch.write({ sync: true })
  }

  private deleteOps (batch: ReturnType<Level<string, unknown>['batch']>, entries: StudyEntries): void {
    const { study } = entries
    const uid = study.studyInstanceUID
    batch.del(uid, { sublevel: this.studies })
    for (const s of entries.series) batch.del(key(uid, s.seriesInstanceUID), { sublevel: this.series })
    for (const i of entries.instances) {
      batch.del(key(uid, i.seriesInstanceUID, i.sopInstanceUID), { sublevel: this.instances })
      batch.del(i.sopInstanceUID, { sublevel: this.sops })
      batch.del(i.sha256, { sublevel: this.blobs })
    }
    for (const [sublevel, stale] of this.secondaryKeys(study)) batch.del(stale, { sublevel })
  }

  /** Studies matching every given criterion, newest study date first. */
  async findStudies (query: StudyQuery = {}): Promise<StudyRecord[]> {
    const uids = await this.candidateUids(query)
    const out: StudyRecord[] = []
    const limit = query.limit ?? Infinity
    for (const uid of uids) {
      const study = await this.studies.get(uid)
      if (study === undefined || !matches(study, query)) continue
      out.push(study)
      if (out.length >= limit) break
    }
    return out
  }

  /** Narrows by the most selective secondary key available; the rest is checked per record. */
  private async candidateUids (query: StudyQuery): Promise<string[]> {
    if (query.bsn !== undefined) return lastParts(this.byBsn, prefixRange(query.bsn))
    if (query.patientId !== undefined && query.issuer !== undefined) return lastParts(this.byPatient, prefixRange(query.issuer, query.patientId))
    if (query.accessionNumber !== undefined) return lastParts(this.byAccession, prefixRange(query.accessionNumber))
    if (query.dateFrom !== undefined || query.dateTo !== undefined) {
      const range = { gte: query.dateFrom ?? '', lt: (query.dateTo ?? '99999999') + SEP + LAST }
      return (await lastParts(this.byDate, range)).reverse()
    }
    return (await lastParts(this.byDate, {})).reverse()
  }

  async * allInstances (): AsyncGenerator<InstanceRecord> {
    for await (const value of this.instances.values()) yield value as InstanceRecord
  }

  async hold (studyInstanceUID: string, holder: string, record: HoldRecord): Promise<void> {
    await this.db.batch().put(key(studyInstanceUID, holder), record, { sublevel: this.holds }).write({ sync: true })
  }

  async release (studyInstanceUID: string, holder: string): Promise<void> {
    await this.db.batch().del(key(studyInstanceUID, holder), { sublevel: this.holds }).write({ sync: true })
  }

  /** A holder's hold on a study (why and since when), if it has one. */
  async getHold (studyInstanceUID: string, holder: string): Promise<HoldRecord | undefined> {
    return this.holds.get(key(studyInstanceUID, holder)) as Promise<HoldRecord | undefined>
  }

  async holdersOf (studyInstanceUID: string): Promise<string[]> {
    return lastParts(this.holds, prefixRange(studyInstanceUID))
  }

  async countStudies (): Promise<number> {
    let n = 0
    for await (const _ of this.studies.keys()) n++
    return n
  }
}

/** The items sorted as level sorts their keys (UIDs are ASCII: code unit order is byte order). */
function inKeyOrder<T> (items: T[], keyOf: (item: T) => string): T[] {
  return items.map((item) => ({ k: keyOf(item), item })).sort((a, b) => a.k < b.k ? -1 : a.k > b.k ? 1 : 0).map((x) => x.item)
}

export function key (...parts: string[]): string {
  return parts.join(SEP)
}

function prefixRange (...parts: string[]): { gte: string, lt: string } {
  const prefix = key(...parts) + SEP
  return { gte: prefix, lt: prefix + LAST }
}

async function values<V> (sub: Sub<V>, range: object): Promise<V[]> {
  const out: V[] = []
  for await (const value of sub.values(range)) out.push(value as V)
  return out
}

async function lastParts<V> (sub: Sub<V>, range: object): Promise<string[]> {
  const out: string[] = []
  for await (const k of sub.keys(range)) out.push((k as string).split(SEP).at(-1) as string)
  return out
}

function matches (study: StudyRecord, q: StudyQuery): boolean {
  if (q.bsn !== undefined && study.patient.bsn !== q.bsn) return false
  if (q.patientId !== undefined && study.patient.id !== q.patientId) return false
  if (q.issuer !== undefined && study.patient.issuer !== q.issuer) return false
  if (q.dateFrom !== undefined && study.date < q.dateFrom) return false
  if (q.dateTo !== undefined && study.date > q.dateTo) return false
  if (q.modality !== undefined && !study.modalities.includes(q.modality)) return false
  if (q.accessionNumber !== undefined && study.accessionNumber !== q.accessionNumber) return false
  if (q.birthDate !== undefined && study.patient.birthDate !== q.birthDate) return false
  if (q.name !== undefined) {
    const name = study.patient.name.toLowerCase()
    if (!q.name.toLowerCase().split(/[\s^,]+/).filter((w) => w !== '').every((w) => name.includes(w))) return false
  }
  return true
}
