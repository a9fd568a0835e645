import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import PQueue from 'p-queue'
import type { Logger } from 'pino'
import { ERRORS, isErrorCode } from '../../protocol/api/error-codes.ts'
import type { StudyStore } from '../store/study-store.ts'
import { systemClock, type Clock } from '../transfers/clock.ts'
import { errorRecord } from '../transfers/events.ts'
import { backoffDelay, RetrySchedule, type Backoff } from '../transfers/retry-schedule.ts'
import type { LocalIdentity } from './coerce.ts'
import { ExportStateError, PacsRefusedError, PacsStoreFailedError, PacsUnreachableError } from './errors.ts'
import { FINAL_EXPORT_STATES, type ExportRecord, type ExportStore } from './export-store.ts'
import { RECONCILIATION_HOLDER, type ExportRequest, type PacsExporter } from './pacs-export.ts'

/*
 * Exports to the PACS as a persistent queue, as the outgoing transfers are (transfers/queue.ts): a
 * reconciled study is recorded first, then sent; a failure whose code the error record marks
 * retryable (the PACS down, instances failed with a status that may pass) waits with exponential
 * backoff, capped, and tries again, across restarts, up to maxAttempts. After a partial failure
 * only the instances that failed go again. A final failure (unknown destination, the study gone,
 * instances the PACS refuses for good) is not retried; IT can queue it again by hand. Audited once
 * when it reaches the PACS, once when it fails for good; the attempts in between are in the log.
 * While an export is unfinished its study is held, so retention does not take it away.
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
  exporter: Pick<PacsExporter, 'reconcile' | 'send' | 'recordSent' | 'recordFailed'>
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
  /** Ends waiting for retries and waits for the exports being sent (they end as they would). */
  stop (): Promise<void>
  /** Reconciles the study and queues its export, or holds it for a person (as PacsExporter.reconcile). */
  request (request: ExportRequest): Promise<ExportAnswer>
  /** Stops a queued or retrying export for good (one being sent finishes its association). */
  cancel (exportId: string): Promise<ExportRecord>
  /** Queues a failed or cancelled export again with a fresh count of attempts. */
  retry (exportId: string): Promise<ExportRecord>
  get (exportId: string): Promise<ExportRecord | undefined>
  /** newest first */
  list (): Promise<ExportRecord[]>
}

function isFinal (code: string): boolean {
  return isErrorCode(code) && !ERRORS[code].retry
}

class DefaultExportQueue extends EventEmitter<ExportQueueEvents> implements ExportQueue {
  private readonly exports: ExportStore
  private readonly exporter: ExportQueueComponents['exporter']
  private readonly store: ExportQueueComponents['store']
  private readonly logger: Logger
  private readonly clock: Clock
  private readonly maxAttempts: number
  private readonly backoff: Backoff
  private readonly slots: PQueue
  /** one per export waiting or being sent: aborting ends the wait (a sending runs to its end) */
  private readonly jobs: RetrySchedule
  /**
   * The attempt each export's 'sending' state belongs to: an attempt still under way when its export
   * was cancelled and queued again must not take the next attempt's state for its own.
   */
  private readonly attempts = new Map<string, symbol>()
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
    await this.jobs.abortAll(new Error('the export queue is stopping'))
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

  async cancel (exportId: string): Promise<ExportRecord> {
    const record = await this.write(exportId, (r) => {
      if (FINAL_EXPORT_STATES.has(r.state)) throw new ExportStateError(exportId, r.state, 'cancel')
      const { nextAttemptAt: _, ...rest } = r
      return { ...rest, state: 'cancelled', updatedAt: this.nowIso() }
    })
    this.jobs.abort(exportId, new Error('cancelled'))
    await this.releaseHold(record)
    this.logger.info({ exportId, study: record.studyInstanceUID }, 'export to the PACS cancelled')
    this.emit('state', record)
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
    let outcome
    try {
      outcome = await this.exporter.send({
        studyInstanceUID: record.studyInstanceUID,
        destination: record.destination,
        local: record.local,
        source: record.source,
        ...(record.remaining === undefined ? {} : { only: new Set(record.remaining) })
      })
    } catch (err) {
      await this.failed(exportId, attempt, err)
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
    await this.failed(exportId, attempt, error, { remaining: [...retryable, ...refused], completed: outcome.completed })
  }

  // The audit record goes first, then the holds, then the record's end: a crash in between sends the
  // study again (the PACS takes it as a copy) rather than leave a disclosure unrecorded, and an
  // export that reads as ended holds its study no more.
  private async completed (exportId: string, attempt: symbol, completedNow: number): Promise<void> {
    const current = await this.exports.get(exportId)
    if (current === undefined) return
    const own = this.attempts.get(exportId) === attempt
    if (own) this.attempts.delete(exportId)
    const instances = Math.min(current.totals.instances, current.done.instances + completedNow)
    // Recorded even when cancelled while it was sent: the study did reach the PACS.
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
    if (record.state !== 'complete') return
    this.logger.info({ exportId, study: record.studyInstanceUID, destination: record.destination, attempts: record.attempts }, 'export to the PACS complete')
    this.emit('state', record)
  }

  private async failed (exportId: string, attempt: symbol, err: unknown, progress?: { remaining: string[], completed: number }): Promise<void> {
    const now = new Date(this.clock.now())
    const error = errorRecord(err, now)
    if (this.attempts.get(exportId) !== attempt) return // a newer attempt owns the record
    this.attempts.delete(exportId)
    // Only cancel() changes a record while it is being sent, and then it stays cancelled.
    const current = await this.exports.get(exportId)
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
