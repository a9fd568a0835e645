import { randomUUID } from 'node:crypto'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { InstitutionKind } from '../../protocol/registry/documents.ts'
import type { AuditSink } from '../audit/audit-log.ts'
import { importFiles } from '../dicom/file-import.ts'
import { StudyNotFoundError } from '../errors.ts'
import type { StudyStore } from '../store/study-store.ts'
import type { SendRequest } from '../transfers/send/sending.ts'
import { FINAL_OUTGOING_STATES, type OutgoingRecord, type TransferRecord } from '../transfers/transfer-store.ts'
import { exportDeidentified } from './export.ts'
import { describeProfile, type DeidentifyProfile } from './options.ts'
import { createPushRecords, type DeidentifiedPushRecord, type PushRecords } from './push-records.ts'

/*
 * A de-identified push (PS3.15 Annex E), for a teaching or research institution or when the sender
 * asks: the study is de-identified into a folder under the data directory, imported into this
 * node's own store as a derived study (its own Study Instance UID), and that study is queued as an
 * ordinary push, so manifest, data path, resume and receipts are the ones every push has. The
 * record and UID map stay here (push-records.ts); the derived study is deleted once its transfer
 * has ended (complete, declined, failed or cancelled), and is held until then so retention leaves it.
 */

/** The store's hold on a derived study while its push runs. */
export const DERIVED_HOLDER = 'deidentified-push'

export interface DeidentifiedPushComponents {
  store: StudyStore
  exchange: {
    send: (request: SendRequest, options?: { signal?: AbortSignal }) => Promise<OutgoingRecord>
    on: (event: 'state', listener: (record: TransferRecord) => void) => unknown
    off: (event: 'state', listener: (record: TransferRecord) => void) => unknown
    queue: { get: (transferId: string) => Promise<OutgoingRecord | undefined> }
  }
  /** the kind governance gives the institution in the directory this node trusts */
  kindOf: (ura: string) => InstitutionKind | undefined
  audit?: AuditSink
  logger: Logger
}

export interface DeidentifiedPushInit {
  /** <data-dir>/deidentified: records/ (kept) and work/ (the copies being made) */
  dir: string
}

export interface DeidentifiedSendRequest extends SendRequest {
  deidentify: { profile: DeidentifyProfile, confirmBurnedIn?: { by: string } }
}

export interface DeidentifiedSend extends OutgoingRecord {
  deidentified: { recordId: string, original: string, studyInstanceUID: string, profile: string }
}

export interface DeidentifiedPushes {
  start (): Promise<void>
  stop (): Promise<void>
  /** governance marks `ura` as a teaching or research institution: its studies go de-identified only */
  required (ura: string): boolean
  send (request: DeidentifiedSendRequest, options?: { signal?: AbortSignal }): Promise<DeidentifiedSend>
  /** a derived study of a push under way: not one to list to clinicians */
  isDerived (studyInstanceUID: string): boolean
  /** how many such studies there are now */
  pendingCount (): number
  records (): Promise<DeidentifiedPushRecord[]>
}

class DefaultDeidentifiedPushes implements DeidentifiedPushes {
  private readonly components: DeidentifiedPushComponents
  private readonly pushRecords: PushRecords
  private readonly workDir: string
  /** derived study UID -> record id, for pushes not yet cleaned up */
  private readonly pending = new Map<string, string>()
  /** one change of a record file at a time */
  private writes: Promise<unknown> = Promise.resolve()
  // On the final state, raised before 'study-complete': the receipt's audit record reads the study's
  // patient at once, while the removal first rewrites the record file (an fsync) and queues behind commits.
  private readonly onState = (record: TransferRecord): void => {
    if (record.direction !== 'outgoing' || !FINAL_OUTGOING_STATES.has(record.state)) return
    const id = this.pending.get(record.studyInstanceUID)
    if (id !== undefined) void this.removeDerived(id, record.state)
  }

  constructor (components: DeidentifiedPushComponents, init: DeidentifiedPushInit) {
    this.components = components
    this.pushRecords = createPushRecords(join(init.dir, 'records'))
    this.workDir = join(init.dir, 'work')
  }

  async start (): Promise<void> {
    this.components.exchange.on('state', this.onState)
    // Copies a stop or crash left half made, and derived studies whose transfer ended meanwhile.
    await rm(this.workDir, { recursive: true, force: true })
    for (const r of await this.pushRecords.list()) {
      if (r.state === 'preparing') {
        await this.abandon(r.id, 'interrupted before it was queued')
      } else if (r.state === 'queued') {
        this.pending.set(r.derived.studyInstanceUID, r.id)
        const transfer = r.transferId === undefined ? undefined : await this.components.exchange.queue.get(r.transferId)
        if (transfer === undefined || FINAL_OUTGOING_STATES.has(transfer.state)) await this.removeDerived(r.id, transfer?.state ?? 'gone')
      }
    }
  }

  async stop (): Promise<void> {
    this.components.exchange.off('state', this.onState)
    await this.writes
  }

  required (ura: string): boolean {
    return this.components.kindOf(ura) === 'teaching-research'
  }

  isDerived (studyInstanceUID: string): boolean {
    return this.pending.has(studyInstanceUID)
  }

  pendingCount (): number {
    return this.pending.size
  }

  async records (): Promise<DeidentifiedPushRecord[]> {
    return this.pushRecords.list()
  }

  async send (request: DeidentifiedSendRequest, { signal }: { signal?: AbortSignal } = {}): Promise<DeidentifiedSend> {
    const { store, exchange, audit, logger } = this.components
    const { deidentify, ...push } = request
    const id = randomUUID()
    const work = join(this.workDir, id)
    const profile = describeProfile(deidentify.profile)
    await mkdir(work, { recursive: true, mode: 0o700 })
    try {
      // The original's trail gets the 'export' naming the profile and both UIDs (export.ts).
      const result = await exportDeidentified(store, push.studyInstanceUID, work, {
        profile: deidentify.profile,
        ...(deidentify.confirmBurnedIn === undefined ? {} : { confirmBurnedIn: deidentify.confirmBurnedIn }),
        ...(audit === undefined ? {} : { audit: { sink: audit, user: push.actor ?? { system: 'this node' }, details: { purpose: 'de-identified push', destination: `${push.to.ura}/${push.to.department}`, deidentifiedPush: id } } }),
        signal
      })
      const derived = result.record.studyInstanceUID
      // Written before the import: a crash from here on leaves a record that says what to clean up.
      const record: DeidentifiedPushRecord = {
        id,
        createdAt: new Date().toISOString(),
        state: 'preparing',
        original: { studyInstanceUID: push.studyInstanceUID },
        derived: { studyInstanceUID: derived },
        profile,
        destination: { ...push.to },
        record: result.record,
        map: result.map.entries()
      }
      await this.write(async () => { await this.pushRecords.save(record) })
      this.pending.set(derived, id)
      let queued: OutgoingRecord
      try {
        const summary = await importFiles([work], { store, signal })
        if (summary.rejected.length > 0 || summary.studies.length !== 1 || summary.studies[0]!.studyInstanceUID !== derived) {
          throw new Error(`the de-identified copy did not import as one study ${derived}: ${JSON.stringify(summary.rejected.slice(0, 3))}`)
        }
        await store.hold(derived, DERIVED_HOLDER, `de-identified copy of ${push.studyInstanceUID} for a push to URA ${push.to.ura}`)
        queued = await exchange.send({ ...push, studyInstanceUID: derived, deidentified: { from: push.studyInstanceUID, profile } }, { signal })
      } catch (err) {
        await this.abandon(id, (err as { code?: string }).code ?? 'failed')
        throw err
      }
      // The transfer may have ended already (a small study): removeDerived wrote that, and stands.
      await this.update(id, (r) => r.state === 'preparing' ? { ...r, state: 'queued', transferId: queued.transferId } : { ...r, transferId: queued.transferId })
      logger.info({ transferId: queued.transferId, study: push.studyInstanceUID, derived, profile }, 'de-identified push queued')
      return { ...queued, deidentified: { recordId: id, original: push.studyInstanceUID, studyInstanceUID: derived, profile } }
    } finally {
      await rm(work, { recursive: true, force: true })
    }
  }

  /** The transfer of a derived study ended: the copy leaves the store; its record stays. */
  private async removeDerived (id: string, outcome: string): Promise<void> {
    try {
      const r = await this.update(id, (r) => r.state === 'removed' ? r : { ...r, state: 'removed', outcome, removedAt: new Date().toISOString() })
      await this.deleteDerived(r.derived.studyInstanceUID)
      this.pending.delete(r.derived.studyInstanceUID)
      this.components.logger.info({ study: r.original.studyInstanceUID, derived: r.derived.studyInstanceUID, outcome }, 'de-identified copy removed after its transfer')
    } catch (err) {
      this.components.logger.error({ err, record: id }, 'removing a de-identified copy after its transfer failed; the next start tries again')
    }
  }

  private async abandon (id: string, why: string): Promise<void> {
    const r = await this.update(id, (r) => ({ ...r, state: 'abandoned', outcome: why, removedAt: new Date().toISOString() })).catch(() => undefined)
    if (r === undefined) return
    await this.deleteDerived(r.derived.studyInstanceUID)
    this.pending.delete(r.derived.studyInstanceUID)
  }

  private async deleteDerived (studyInstanceUID: string): Promise<void> {
    await this.components.store.deleteStudy(studyInstanceUID, { force: true }).catch((err: unknown) => {
      if (!(err instanceof StudyNotFoundError)) throw err
    })
  }

  private async update (id: string, change: (r: DeidentifiedPushRecord) => DeidentifiedPushRecord): Promise<DeidentifiedPushRecord> {
    return this.write(async () => {
      const current = await this.pushRecords.get(id)
      if (current === undefined) throw new Error(`no de-identified push record ${id}`)
      const next = change(current)
      if (next !== current) await this.pushRecords.save(next)
      return next
    })
  }

  private async write<T> (work: () => Promise<T>): Promise<T> {
    const run = this.writes.then(work)
    this.writes = run.catch(() => {})
    return run
  }
}

export function createDeidentifiedPushes (components: DeidentifiedPushComponents, init: DeidentifiedPushInit): DeidentifiedPushes {
  return new DefaultDeidentifiedPushes(components, init)
}
