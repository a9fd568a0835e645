import { LevelRecords, type RecordSublevel } from '../store/level-records.ts'
import type { ErrorRecord } from '../transfers/transfer-store.ts'
import type { LocalIdentity } from './coerce.ts'
import { ExportNotFoundError } from './errors.ts'

/*
 * Exports to the PACS, in a level database of their own (<data-dir>/exports): one small record per
 * export, written (synced) at each change of state, so queued and retrying exports outlive a
 * restart. A record holds what a later attempt needs without asking anyone again: the local
 * patient as reconciled, the source, and after a partial failure the instances still to send.
 */

export type ExportState = 'queued' | 'sending' | 'complete' | 'failed' | 'cancelled'

export const FINAL_EXPORT_STATES: ReadonlySet<ExportState> = new Set(['complete', 'failed', 'cancelled'])

export interface ExportRecord {
  exportId: string
  studyInstanceUID: string
  /** AE title of the destination in dimse.destinations */
  destination: string
  /** the patient the headers are coerced to */
  local: LocalIdentity
  matched: 'by BSN' | 'entered by a person'
  /** the sending institution, for Source of Previous Values */
  source: string
  state: ExportState
  /** attempts started, the first included (reset by a retry by hand) */
  attempts: number
  /** ISO 8601 times */
  createdAt: string
  updatedAt: string
  completedAt?: string
  /** when the next attempt is due, while waiting for one */
  nextAttemptAt?: string
  lastError?: ErrorRecord
  /** the study's instances, and those the PACS has stored in this export */
  totals: { instances: number }
  done: { instances: number }
  /** SOP Instance UIDs still to send after a partial failure; absent: the whole study */
  remaining?: string[]
}

export interface ExportStore {
  start (): Promise<void>
  stop (): Promise<void>
  create (record: ExportRecord): Promise<void>
  get (exportId: string): Promise<ExportRecord | undefined>
  list (): Promise<ExportRecord[]>
  /** Reads, changes and writes one record (synced), serialised with every other update. */
  update (exportId: string, change: (record: ExportRecord) => ExportRecord): Promise<ExportRecord>
}

class LevelExportStore implements ExportStore {
  private readonly level: LevelRecords
  private readonly exports: RecordSublevel<ExportRecord>

  constructor (dir: string) {
    this.level = new LevelRecords(dir)
    this.exports = this.level.sublevel('exports')
  }

  async start (): Promise<void> {
    await this.level.start()
  }

  async stop (): Promise<void> {
    await this.level.stop()
  }

  async create (record: ExportRecord): Promise<void> {
    await this.level.serialised(async () => { await this.level.db.batch().put(record.exportId, record, { sublevel: this.exports }).write({ sync: true }) })
  }

  async get (exportId: string): Promise<ExportRecord | undefined> {
    return this.exports.get(exportId)
  }

  async list (): Promise<ExportRecord[]> {
    return this.exports.values().all() as Promise<ExportRecord[]>
  }

  async update (exportId: string, change: (record: ExportRecord) => ExportRecord): Promise<ExportRecord> {
    return this.level.update(this.exports, exportId, change, () => new ExportNotFoundError(exportId))
  }
}

/** `dir`: where the level database lives, e.g. `<data-dir>/exports`. */
export function createExportStore (dir: string): ExportStore {
  return new LevelExportStore(dir)
}
