import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import PQueue from 'p-queue'
import type { Logger } from 'pino'
import { ERRORS, isErrorCode } from '../../protocol/api/error-codes.ts'
import type { StudyStore } from '../store/study-store.ts'
import { systemClock, type Clock } from '../transfers/clock.ts'
import { errorRecord } from '../transfers/events.ts'
import { backoffDelay, RetrySchedule, type Backoff } from '../transfers/retry-schedule.ts'
import type { AuditPerson } from '../audit/audit-log.ts'
import type { LocalIdentity } from './coerce.ts'
import { ExportStateError, PacsRefusedError, PacsStoreFailedError, PacsUnreachableError } from './errors.ts'
import { FINAL_EXPORT_STATES, type ExportRecord, type ExportStore } from './export-store.ts'
import { RECONCILIATION_HOLDER, type ExportRequest, type PacsExporter, type SendResult } from './pacs-export.ts'

/*
 * Exports to the PACS as a persistent queue, as the outgoing transfers are (transfers/queue.ts): a
 * reconciled study is recorded first, then sent; a failure whose code the error record marks
 * retryable (the PACS down, instances failed with a status that may pass) waits with exponential
 * backoff, capped, and tries again, across restarts, up to maxAttempts. After a partial failure
 * only the instances that failed go again. A final failure (unknown destination, the study gone,
 * instances the PACS refuses for good) is not retried; IT can queue it again by hand. Audited once
 * when it ends: when it reaches the PACS, when it fails for good, when it is cancelled (with the
 * instances that reached the PACS by then); the attempts in between are in the log. While an
 * export is unfinished its study is held, so retention does not take it away.
 *
 * Each attempt has its job's AbortSignal: a cancel, or the queue's stop, ends the association at
 * once (store-scu.ts). Cancelled, the export stays cancelled, and the instances not yet stored stay
 * its `remaining` for a retry by hand; stopped, it is queued again and the next start sends the rest.
 */

/** The hold an unfinished export places on its study. */
export function exportHolder (exportId: string): string {
  return `pacs-export:${exportId}`
}

export interface ExportQueueEvents {
  /** an export changed state (queued, sending, complete, failed, cancelled) */
  state: [ExportRecord]
}

export interface ExportQueueComponents {
  exports: ExportStore
  exporter: Pick<PacsExporter, 'reconcile' | 'send' | 'recordSent' | 'recordFailed' | 'recordCancelled'>
  store: Pick<StudyStore, 'getStudyRecord' | 'hold' | 'release'>
  logger: Logger
  /** default: the system clock */
  clock?: Clock
}

export interface ExportQueueInit {
  /** exports sent at once (default 2) */
  concurrency?: number
  /** attempts per export before it fails, the first included (default 100: about two days at the cap) */
  maxAttempts?: number
  /** wait before the first retry; doubles each time (default 30 s) */
  backoffInitialMs?: number
  /** longest wait between attempts (default 30 min) */
  backoffMaxMs?: number
}

export type ExportAnswer =
  | { status: 'queued', export: ExportRecord }
  | { status: 'held', reason: string }

export interface ExportQueue extends EventEmitter<ExportQueueEvents> {
  /** Resumes queued exports, and those a stop or crash interrupted (a retry keeps its due time). */
  start (): Promise<void>
  /** Ends waiting for retries and the associations of the exports being sent (queued again, for the next start), and waits for them to end. */
  stop (): Promise<void>
  /** Reconciles the study and queues its export, or holds it for a person (as PacsExporter.reconcile). */
  request (request: ExportRequest): Promise<ExportAnswer>
  /** Stops a queued, retrying or sending export for good (its association ends at once); `by`: who, for the audit trail. */
  cancel (exportId: string, by?: AuditPerson): Promise<ExportRecord>
  /** Queues a failed or cancelled export again with a fresh count of attempts. */
  retry (exportId: string): Promise<ExportRecord>
  get (exportId: string): Promise<ExportRecord | undefined>
  /** newest first */
  list (): Promise<ExportRecord[]>
}

function isFinal (code: string): boolean {
  return isErrorCode(code) && !ERRORS[code].retry
}

/** The abort reason of a cancel: the export ends cancelled. */
class ExportCancelled extends Error {
  constructor () { super('the export was cancelled') }
}

/** The abort reason when the queue stops: an export being sent is interrupted, not failed. */
class QueueStopping extends Error {
  constructor () { super('the export queue is stopping') }
}

/** The instances of a sending the PACS has not stored: what a later attempt sends. */
const notStored = (outcome: SendResult): string[] => [...outcome.retryable, ...outcome.refused, ...outcome.cancelled]

class DefaultExportQueue extends EventEmitter<ExportQueueEvents> implements ExportQueue {
  private readonly exports: ExportStore
  private readonly exporter: ExportQueueComponents['exporter']
  private readonly store: ExportQueueComponents['store']
  private readonly logger: Logger
  private readonly clock: Clock
  private readonly maxAttempts: number
  private readonly backoff: Backoff
  private readonly slots: PQueue
  /** one per export waiting or being sent: aborting ends the wait, or the association being sent on */
  private readonly jobs: RetrySchedule
  /**
   * The attempt each export's 'sending' state belongs to: an attempt still under way when its export
   * was cancelled and queued again must not take the next attempt's state for its own.
   */
  private readonly attempts = new Map<string, symbol>()
  /** who cancelled an export while it was sent: its attempt audits the cancel when it ends */
  private readonly cancelledBy = new Map<string, AuditPerson | undefined>()
  private running = false

  constructor (components: ExportQueueComponents, init: ExportQueueInit) {
    super()
    this.exports = components.exports
    this.exporter = components.exporter
    this.store = components.store
    this.logger = components.logger.child({ component: 'pacs-export-queue' })
    this.clock = components.clock ?? systemClock
    this.maxAttempts = init.maxAttempts ?? 100
    // Up to a quarter of each wait less at random, so exports do not retry in step.
    this.backoff = { initialMs: init.backoffInitialMs ?? 30_000, maxMs: init.backoffMaxMs ?? 30 * 60_000, jitter: 1 / 4 }
    this.slots = new PQueue({ concurrency: init.concurrency ?? 2 })
    // A fault of the queue itself (its database failing): the record says where it stopped.
    this.jobs = new RetrySchedule(this.clock, (err, exportId) => { this.logger.error({ err, exportId }, 'export job failed') })
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    const records = (await this.exports.list()).sort((a, b) => a.createdAt.localeCompare(b.createdAt))
    for (const record of records) {
      if (FINAL_EXPORT_STATES.has(record.state)) continue
      // Sending when the node stopped or crashed: sent again (a PACS takes a re-sent instance as a copy).
      const current = record.state === 'sending' ? await this.write(record.exportId, (r) => ({ ...r, state: 'queued', updatedAt: this.nowIso() })) : record
      const due = current.nextAttemptAt === undefined ? 0 : Date.parse(current.nextAttemptAt) - this.clock.now()
      this.logger.info({ exportId: current.exportId, study: current.studyInstanceUID, destination: current.destination, dueInMs: Math.max(0, due) }, 'export to the PACS resumed')
      this.schedule(current.exportId, Math.max(0, due))
    }
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    await this.jobs.abortAll(new QueueStopping())
    this.slots.clear()
  }

  async request (request: ExportRequest): Promise<ExportAnswer> {
    const reconciled = await this.exporter.reconcile(request)
    if (reconciled.status === 'held') return reconciled
    return { status: 'queued', export: await this.enqueue(request, reconciled.local, reconciled.matched) }
  }

  private async enqueue (request: ExportRequest, local: LocalIdentity, matched: ExportRecord['matched']): Promise<ExportRecord> {
    const study = await this.store.getStudyRecord(request.studyInstanceUID)
    const now = this.nowIso()
    const record: ExportRecord = {
      exportId: randomUUID(),
      studyInstanceUID: request.studyInstanceUID,
      destination: request.destination,
      local,
      matched,
      source: request.source,
      state: 'queued',
      attempts: 0,
      createdAt: now,
      updatedAt: now,
      totals: { instances: study.numberOfInstances },
      done: { instances: 0 }
    }
    await this.store.hold(request.studyInstanceUID, exportHolder(record.exportId), `export to the PACS ${request.destination}`)
    await this.exports.create(record)
    this.logger.info({ exportId: record.exportId, study: record.studyInstanceUID, destination: record.destination }, 'export to the PACS queued')
    this.emit('state', record)
    if (this.running) this.schedule(record.exportId, 0)
    return record
  }

  async cancel (exportId: string, by?: AuditPerson): Promise<ExportRecord> {
    let sending = false
    const record = await this.write(exportId, (r) => {
      if (FINAL_EXPORT_STATES.has(r.state)) throw new ExportStateError(exportId, r.state, 'cancel')
      sending = r.state === 'sending'
      const { nextAttemptAt: _, ...rest } = r
      return { ...rest, state: 'cancelled', updatedAt: this.nowIso() }
    })
    // Being sent: its attempt ends the association now and audits the cancel with what got through.
    if (sending) this.cancelledBy.set(exportId, by)
    this.jobs.abort(exportId, new ExportCancelled())
    await this.releaseHold(record)
    this.logger.info({ exportId, study: record.studyInstanceUID, sending }, 'export to the PACS cancelled')
    this.emit('state', record)
    if (!sending) await this.auditCancelled(record, record.done.instances, by)
    return record
  }

  async retry (exportId: string): Promise<ExportRecord> {
    const record = await this.write(exportId, (r) => {
      if (r.state !== 'failed' && r.state !== 'cancelled') throw new ExportStateError(exportId, r.state, 'retry')
      const { nextAttemptAt: _, ...rest } = r
      return { ...rest, state: 'queued', attempts: 0, updatedAt: this.nowIso() }
    })
    // The study may be gone by now: then the attempt fails, final, saying so.
    await this.store.hold(record.studyInstanceUID, exportHolder(exportId), `export to the PACS ${record.destination}`).catch(() => {})
    this.logger.info({ exportId, study: record.studyInstanceUID }, 'export to the PACS queued again by hand')
    this.emit('state', record)
    if (this.running) this.schedule(exportId, 0)
    return record
  }

  async get (exportId: string): Promise<ExportRecord | undefined> {
    return this.exports.get(exportId)
  }

  async list (): Promise<ExportRecord[]> {
    return (await this.exports.list()).sort((a, b) => b.createdAt.localeCompare(a.createdAt))
  }

  /** Waits `delayMs` outside any slot, then takes a slot and makes one attempt. */
  private schedule (exportId: string, delayMs: number): void {
    this.jobs.schedule(exportId, delayMs, async (signal) => this.slots.add(async () => { await this.attempt(exportId, signal) }))
  }

  private async attempt (exportId: string, signal: AbortSignal): Promise<void> {
    // Stopped or cancelled while waiting for a slot: it stays as it is for the next start.
    if (signal.aborted) return
    const record = await this.write(exportId, (r) => {
      if (r.state !== 'queued') return r
      const { nextAttemptAt: _, ...rest } = r
      return { ...rest, state: 'sending', attempts: r.attempts + 1, updatedAt: this.nowIso() }
    })
    if (record.state !== 'sending') return
    const attempt = Symbol(exportId)
    this.attempts.set(exportId, attempt)
    this.emit('state', record)
    let outcome: SendResult | undefined
    let thrown: unknown
    try {
      outcome = await this.exporter.send({
        studyInstanceUID: record.studyInstanceUID,
        destination: record.destination,
        local: record.local,
        source: record.source,
        ...(record.remaining === undefined ? {} : { only: new Set(record.remaining) })
      }, { signal })
    } catch (err) {
      thrown = err
    }
    if (signal.reason instanceof ExportCancelled) {
      await this.endCancelled(exportId, attempt, outcome === undefined ? undefined : { remaining: notStored(outcome), completed: outcome.completed }, outcome?.cancelled.length)
      return
    }
    // Stopped before the PACS had answered every instance: the next start sends the rest.
    if (signal.reason instanceof QueueStopping && (outcome === undefined || outcome.cancelled.length > 0)) {
      await this.interrupted(exportId, attempt, outcome)
      return
    }
    if (outcome === undefined) {
      await this.failed(exportId, attempt, thrown)
      return
    }
    const { retryable, refused } = outcome
    if (retryable.length === 0 && refused.length === 0) {
      await this.completed(exportId, attempt, outcome.completed)
      return
    }
    const failed = retryable.length + refused.length
    const reason = outcome.reasons[0] ?? 'no reason given'
    const error = refused.length > 0
      ? new PacsRefusedError(record.destination, refused.length, outcome.total, outcome.reasons.find((r) => refused.some((sop) => r.startsWith(sop))) ?? reason)
      : outcome.unreachable ? new PacsUnreachableError(record.destination, reason) : new PacsStoreFailedError(record.destination, failed, outcome.total, reason)
    await this.failed(exportId, attempt, error, { remaining: notStored(outcome), completed: outcome.completed })
  }

  /** An attempt a cancel ended: the cancel stands; the record keeps what reached the PACS, and the cancel is audited once. */
  private async endCancelled (exportId: string, attempt: symbol, progress: { remaining: string[], completed: number } | undefined, notAnswered?: number): Promise<void> {
    const own = this.attempts.get(exportId) === attempt
    if (own) this.attempts.delete(exportId)
    const by = this.cancelledBy.get(exportId)
    this.cancelledBy.delete(exportId)
    let record = await this.exports.get(exportId)
    if (record === undefined) return
    const completed = progress?.completed ?? 0
    if (own && record.state === 'cancelled' && progress !== undefined) {
      const at = this.nowIso()
      record = await this.write(exportId, (r) => r.state !== 'cancelled'
        ? r
        : { ...r, remaining: progress.remaining, done: { instances: Math.min(r.totals.instances, r.done.instances + completed) }, updatedAt: at })
      this.emit('state', record)
    }
    // Queued again meanwhile: the record is the newer attempt's; what this one got through is in the audit.
    const instances = own ? record.done.instances : Math.min(record.totals.instances, record.done.instances + completed)
    this.logger.info({ exportId, study: record.studyInstanceUID, destination: record.destination, instances, notAnswered }, 'sending to the PACS ended by its cancel')
    await this.auditCancelled(record, instances, by)
  }

  /** An attempt the queue's stop ended: queued again with what is left, for the next start (no audit: it has not ended). */
  private async interrupted (exportId: string, attempt: symbol, outcome: SendResult | undefined): Promise<void> {
    if (this.attempts.get(exportId) !== attempt) return
    this.attempts.delete(exportId)
    const at = this.nowIso()
    const record = await this.write(exportId, (r) => {
      if (r.state !== 'sending') return r
      const { nextAttemptAt: _, ...rest } = r
      return {
        ...rest,
        state: 'queued',
        updatedAt: at,
        ...(outcome === undefined ? {} : { remaining: notStored(outcome), done: { instances: Math.min(r.totals.instances, r.done.instances + outcome.completed) } })
      }
    })
    if (record.state !== 'queued') return
    this.logger.info({ exportId, study: record.studyInstanceUID, destination: record.destination, remaining: record.remaining?.length }, 'export to the PACS interrupted by the stop; the next start sends the rest')
    this.emit('state', record)
  }

  private async auditCancelled (record: ExportRecord, instances: number, by: AuditPerson | undefined): Promise<void> {
    await this.exporter.recordCancelled(record, record.local, instances, by).catch((err: unknown) => {
      this.logger.error({ err, exportId: record.exportId }, 'the audit trail did not take a cancelled export to the PACS')
    })
  }

  // The audit record goes first, then the holds, then the record's end: a crash in between sends the
  // study again (the PACS takes it as a copy) rather than leave a disclosure unrecorded, and an
  // export that reads as ended holds its study no more.
  private async completed (exportId: string, attempt: symbol, completedNow: number): Promise<void> {
    const current = await this.exports.get(exportId)
    if (current === undefined) return
    // Cancelled as its last instance was answered: the cancel stands, audited with every instance it let through.
    if (current.state === 'cancelled' && this.cancelledBy.has(exportId)) {
      await this.endCancelled(exportId, attempt, { remaining: [], completed: completedNow })
      return
    }
    const own = this.attempts.get(exportId) === attempt
    if (own) this.attempts.delete(exportId)
    const instances = Math.min(current.totals.instances, current.done.instances + completedNow)
    // Cancelled between the read above and the write below: audited as sent, the study did reach the PACS.
    await this.exporter.recordSent({ ...current }, current, instances).catch((err: unknown) => {
      this.logger.error({ err, exportId }, 'the audit trail did not take an export to the PACS')
    })
    // Cancelled while it was sent and queued again since: the newer attempt owns the record.
    if (!own) return
    await this.releaseHold(current)
    await this.store.release(current.studyInstanceUID, RECONCILIATION_HOLDER).catch(() => {})
    const at = this.nowIso()
    const record = await this.write(exportId, (r) => {
      if (r.state !== 'sending') return r // cancelled while it was sent: that stands
      const { nextAttemptAt: _n, remaining: _r, ...rest } = r
      return { ...rest, state: 'complete', done: { instances }, updatedAt: at, completedAt: at }
    })
    if (record.state === 'cancelled') this.cancelledBy.delete(exportId)
    if (record.state !== 'complete') return
    this.logger.info({ exportId, study: record.studyInstanceUID, destination: record.destination, attempts: record.attempts }, 'export to the PACS complete')
    this.emit('state', record)
  }

  private async failed (exportId: string, attempt: symbol, err: unknown, progress?: { remaining: string[], completed: number }): Promise<void> {
    const now = new Date(this.clock.now())
    const error = errorRecord(err, now)
    if (this.attempts.get(exportId) !== attempt) return // a newer attempt owns the record
    // Only cancel() changes a record while it is being sent, and then it stays cancelled.
    const current = await this.exports.get(exportId)
    if (current?.state === 'cancelled' && this.cancelledBy.has(exportId)) {
      // The cancel came as this attempt ended: audited as cancelled, as when the cancel ends the attempt.
      await this.endCancelled(exportId, attempt, progress)
      return
    }
    this.attempts.delete(exportId)
    if (current?.state !== 'sending') return
    const final = isFinal(error.code) || current.attempts >= this.maxAttempts
    const retryIn = final ? undefined : backoffDelay(current.attempts, this.backoff, this.clock.random())
    if (final) {
      await this.exporter.recordFailed(current, current.local, error.code, error.message).catch((auditErr: unknown) => {
        this.logger.error({ err: auditErr, exportId }, 'the audit trail did not take a failed export to the PACS')
      })
      await this.releaseHold(current)
    }
    const record = await this.write(exportId, (r) => {
      if (r.state !== 'sending') return r // cancelled meanwhile
      const { nextAttemptAt: _, ...rest } = r
      return {
        ...rest,
        state: final ? 'failed' : 'queued',
        lastError: error,
        updatedAt: now.toISOString(),
        ...(progress === undefined ? {} : { remaining: progress.remaining, done: { instances: Math.min(r.totals.instances, r.done.instances + progress.completed) } }),
        ...(retryIn === undefined ? {} : { nextAttemptAt: new Date(now.getTime() + retryIn).toISOString() })
      }
    })
    if (record.state === 'cancelled' && !final && this.cancelledBy.has(exportId)) {
      // Cancelled between the read above and this write: audited as cancelled (a final failure was audited as that).
      const by = this.cancelledBy.get(exportId)
      this.cancelledBy.delete(exportId)
      await this.auditCancelled(record, record.done.instances, by)
    }
    if (record.state !== 'queued' && record.state !== 'failed') return
    this.emit('state', record)
    const fields = { exportId, study: record.studyInstanceUID, destination: record.destination, attempt: record.attempts, code: error.code, reason: error.message }
    if (record.state === 'queued') {
      this.logger.warn({ ...fields, retryInMs: retryIn }, 'export to the PACS failed; it is tried again')
      if (this.running) this.schedule(exportId, retryIn!)
      return
    }
    this.logger.error(fields, 'export to the PACS failed for good')
  }

  private async releaseHold (record: ExportRecord): Promise<void> {
    await this.store.release(record.studyInstanceUID, exportHolder(record.exportId)).catch((err: unknown) => {
      this.logger.warn({ err, exportId: record.exportId }, 'the hold of an export on its study was not released')
    })
  }

  private async write (exportId: string, change: (r: ExportRecord) => ExportRecord): Promise<ExportRecord> {
    return this.exports.update(exportId, change)
  }

  private nowIso (): string {
    return new Date(this.clock.now()).toISOString()
  }
}

export function createExportQueue (components: ExportQueueComponents, init: ExportQueueInit = {}): ExportQueue {
  return new DefaultExportQueue(components, init)
}
