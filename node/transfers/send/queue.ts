import { EventEmitter } from 'node:events'
import PQueue from 'p-queue'
import type { Logger } from 'pino'
import { ERRORS, isErrorCode } from '../../../protocol/api/error-codes.ts'
import { manifestHash, type SignedManifest } from '../../../protocol/exchange/manifest.ts'
import { verifyReceipt, type SignedReceipt } from '../../../protocol/exchange/receipt.ts'
import { systemClock, type Clock } from '../clock.ts'
import { TransferCancelledError, TransferDeclinedError, TransferStateError } from '../errors.ts'
import { errorRecord, type TransferEvents } from '../events.ts'
import { createProgressMeter, createThrottle, type ProgressMeter } from '../progress.ts'
import { backoffDelay, RetrySchedule, type Backoff } from '../retry-schedule.ts'
import { FINAL_OUTGOING_STATES, transferTotals, type OutgoingRecord, type OutgoingState, type TransferStore } from '../transfer-store.ts'

/*
 * The sending side: a persistent queue of outgoing transfers. It knows nothing of the network: it
 * calls the injected `deliver` for one attempt and learns from it what happens (state, bytes, what
 * the receiver holds and confirms). Records survive a restart: queued and interrupted transfers
 * resume at start(), and since the receiver keeps what it verified, a resumed delivery sends only
 * what is still missing. Concurrency is limited in total and per receiving peer; failures with a
 * code protocol/api/error-codes.ts marks retryable wait (exponential backoff with jitter) and try
 * again, for a time budget (retryForMs) counted from the first failure, not a number of attempts a
 * few restarts of the receiver would use up. When the receiving peer is seen again (peerSeen: the
 * exchange calls it when a connection opens), a transfer waiting for it tries at once and its
 * backoff starts over.
 */

/** What deliver reports while it works. */
export type DeliveryUpdate =
  | { kind: 'state', state: 'connecting' | 'offering' | 'sending' | 'verifying' }
  /** the receiver's accept answer: SHA-256s it holds already (not sent) */
  | { kind: 'have', sha256s: string[] }
  /** more bytes written to the stream (a delta) */
  | { kind: 'bytes', bytes: number }
  /** the receiver verified this instance */
  | { kind: 'confirmed', sha256: string }

export interface DeliveryJob {
  record: OutgoingRecord
  manifest: SignedManifest
  /** instances the receiver confirmed in earlier attempts (informative: its answer is what counts) */
  confirmed: ReadonlySet<string>
}

export interface DeliveryOptions {
  onProgress: (update: DeliveryUpdate) => void
  /** aborts with TransferCancelledError on cancel(), or another reason when the queue stops */
  signal: AbortSignal
}

/**
 * One delivery attempt: connect, offer, send what is missing, return the receiver's signed
 * receipt. Throws TransferDeclinedError for a decline; any error's `code` decides a retry.
 */
export type Deliver = (job: DeliveryJob, options: DeliveryOptions) => Promise<SignedReceipt>

/** A code the error record marks as not worth retrying fails the transfer at once; any other (a socket's ECONNRESET too) is retried. */
function isFinal (code: string): boolean {
  return isErrorCode(code) && !ERRORS[code].retry
}

export interface TransferQueueComponents {
  transfers: TransferStore
  deliver: Deliver
  /** default: the system clock */
  clock?: Clock
  /** where faults of the queue itself go (a transfer's own errors are in its record) (default: none) */
  logger?: Logger
}

export interface TransferQueueInit {
  /** deliveries at once, all peers together (default 4) */
  concurrency?: number
  /** deliveries at once to one peer (default 2) */
  perPeerConcurrency?: number
  /** how long a transfer is retried after its first failure before it is marked failed (default 24 h) */
  retryForMs?: number
  /** also a cap on deliveries per transfer, the first included (default: none; the time budget decides) */
  maxAttempts?: number
  /** wait before the first retry; doubles each time (default 5000) */
  backoffInitialMs?: number
  /** longest wait between attempts (default 600000) */
  backoffMaxMs?: number
  /** at most one progress event per transfer per this many milliseconds (default 500) */
  progressIntervalMs?: number
}

export interface EnqueueRequest {
  /** the signed manifest (buildSignedManifest); its transfer id names the transfer */
  manifest: SignedManifest
  /** the receiving node, one of the destination institution's nodes */
  peerId: string
}

export interface TransferQueue extends EventEmitter<TransferEvents> {
  /** Resumes queued and interrupted transfers (a retry keeps its due time). */
  start: () => Promise<void>
  /** Stops deliveries (they stay queued for the next start) and waits for them to end. */
  stop: () => Promise<void>
  /** Records the transfer (durably) and queues it; refuses a transfer id already used. */
  enqueue: (request: EnqueueRequest) => Promise<OutgoingRecord>
  /** Stops a queued or running transfer for good: 'cancelled', or with `error` 'failed' with its code (a peer no longer admitted). */
  cancel: (transferId: string, error?: unknown) => Promise<OutgoingRecord>
  /** Queues a failed transfer again with a fresh count of attempts and a fresh retry budget. */
  retry: (transferId: string) => Promise<OutgoingRecord>
  /** The peer is reachable again (a connection opened): its transfers waiting for a retry try now, their backoff started over. */
  peerSeen: (peerId: string) => Promise<void>
  get: (transferId: string) => Promise<OutgoingRecord | undefined>
  list: () => Promise<OutgoingRecord[]>
}

/** The abort reason when the queue stops: the transfer is interrupted, not failed. */
class QueueStopping extends Error {
  constructor () { super('the transfer queue is stopping') }
}

const INTERRUPTED: ReadonlySet<OutgoingState> = new Set(['connecting', 'offering', 'sending', 'verifying'])

class DefaultTransferQueue extends EventEmitter<TransferEvents> implements TransferQueue {
  private readonly transfers: TransferStore
  private readonly deliver: Deliver
  private readonly clock: Clock
  private readonly logger: Logger | undefined
  private readonly perPeerConcurrency: number
  private readonly retryForMs: number
  private readonly maxAttempts: number
  private readonly backoff: Backoff
  private readonly progressIntervalMs: number
  private readonly all: PQueue
  private readonly peers = new Map<string, PQueue>()
  /** one job per transfer waiting, queued or running: aborting it ends that job */
  private readonly jobs: RetrySchedule
  /** transfers waiting for a retry, by id: the peer each waits for, and which wait it is */
  private readonly waiting = new Map<string, { peerId: string, wait: object }>()
  private running = false

  constructor (components: TransferQueueComponents, init: TransferQueueInit) {
    super()
    this.transfers = components.transfers
    this.deliver = components.deliver
    this.clock = components.clock ?? systemClock
    this.logger = components.logger
    this.perPeerConcurrency = init.perPeerConcurrency ?? 2
    this.retryForMs = init.retryForMs ?? 24 * 3_600_000
    this.maxAttempts = init.maxAttempts ?? Number.POSITIVE_INFINITY
    // Half of each wait random, so peers do not retry in step.
    this.backoff = { initialMs: init.backoffInitialMs ?? 5000, maxMs: init.backoffMaxMs ?? 600_000, jitter: 1 / 2 }
    this.progressIntervalMs = init.progressIntervalMs ?? 500
    this.all = new PQueue({ concurrency: init.concurrency ?? 4 })
    // A fault of the queue itself (its store failing, say): the record says where it stopped.
    this.jobs = new RetrySchedule(this.clock, (err, transferId) => { this.logger?.error({ err, transferId }, 'transfer job failed') })
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    // Oldest first, as they were queued.
    const records = (await this.transfers.listOutgoing()).sort((a, b) => a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0)
    for (const record of records) {
      if (FINAL_OUTGOING_STATES.has(record.state)) continue
      let current = record
      if (INTERRUPTED.has(record.state)) {
        current = await this.write(record.transferId, (r) => ({ ...r, state: 'queued', updatedAt: this.nowIso() }))
      }
      const due = current.nextAttemptAt === undefined ? 0 : Date.parse(current.nextAttemptAt) - this.clock.now()
      this.schedule(current, Math.max(0, due))
    }
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    await this.jobs.abortAll(new QueueStopping())
  }

  async enqueue (request: EnqueueRequest): Promise<OutgoingRecord> {
    const m = request.manifest.signed
    const now = this.nowIso()
    const record: OutgoingRecord = {
      direction: 'outgoing',
      transferId: m.transferId,
      peerId: request.peerId,
      destination: { ...m.destination },
      studyInstanceUID: m.study.studyInstanceUID,
      manifestHash: manifestHash(request.manifest),
      state: 'queued',
      attempts: 0,
      createdAt: now,
      updatedAt: now,
      totals: transferTotals(m),
      done: { instances: 0, bytes: 0 },
      reportsNotified: false
    }
    await this.transfers.createOutgoing(record, request.manifest)
    this.emit('state', record)
    if (this.running) this.schedule(record, 0)
    return record
  }

  async cancel (transferId: string, error?: unknown): Promise<OutgoingRecord> {
    const failure = error === undefined ? undefined : errorRecord(error, new Date(this.clock.now()))
    const record = await this.write(transferId, (r) => {
      if (FINAL_OUTGOING_STATES.has(r.state)) throw new TransferStateError(transferId, r.state, 'cancel')
      const { nextAttemptAt: _, ...rest } = r
      return failure === undefined
        ? { ...rest, state: 'cancelled', updatedAt: this.nowIso() }
        : { ...rest, state: 'failed', lastError: failure, updatedAt: this.nowIso() }
    })
    this.jobs.abort(transferId, error ?? new TransferCancelledError(transferId))
    this.emit('state', record)
    if (failure !== undefined) this.emit('transfer-failed', { ...refOf(record), state: record.state, error: failure })
    return record
  }

  async retry (transferId: string): Promise<OutgoingRecord> {
    const record = await this.write(transferId, (r) => {
      if (r.state !== 'failed') throw new TransferStateError(transferId, r.state, 'retry')
      const { nextAttemptAt: _, failingSince: __, backoffFrom: ___, ...rest } = r
      return { ...rest, state: 'queued', attempts: 0, updatedAt: this.nowIso() }
    })
    this.emit('state', record)
    if (this.running) this.schedule(record, 0)
    return record
  }

  async peerSeen (peerId: string): Promise<void> {
    if (!this.running) return
    for (const [transferId, waiting] of [...this.waiting]) {
      if (waiting.peerId !== peerId) continue
      this.waiting.delete(transferId)
      const record = await this.write(transferId, (r) => r.state === 'queued' && r.nextAttemptAt !== undefined
        ? { ...r, nextAttemptAt: this.nowIso(), backoffFrom: r.attempts, updatedAt: this.nowIso() }
        : r)
      if (record.state !== 'queued') continue
      this.emit('state', record)
      this.jobs.wake(transferId)
    }
  }

  async get (transferId: string): Promise<OutgoingRecord | undefined> {
    return this.transfers.getOutgoing(transferId)
  }

  async list (): Promise<OutgoingRecord[]> {
    return this.transfers.listOutgoing()
  }

  /** Waits `delayMs` outside any slot, then takes a slot for the peer, then one of the total. */
  private schedule (record: OutgoingRecord, delayMs: number): void {
    const { transferId, peerId } = record
    // The job before (whose failure scheduled this one) ends after this: it must not forget this wait.
    const wait = {}
    const forget = (): void => { if (this.waiting.get(transferId)?.wait === wait) this.waiting.delete(transferId) }
    if (delayMs > 0) this.waiting.set(transferId, { peerId, wait })
    // No signal for p-queue: it would free the slot at abort while the delivery still unwinds. A job
    // aborted while waiting for its slot ends as soon as it gets one.
    this.jobs.schedule(transferId, delayMs,
      async (signal) => {
        forget()
        return this.peerQueue(peerId).add(async () => this.all.add(async () => this.attempt(transferId, signal)))
      },
      () => { forget(); this.dropIdlePeerQueue(peerId) })
  }

  private peerQueue (peerId: string): PQueue {
    let queue = this.peers.get(peerId)
    if (queue === undefined) {
      queue = new PQueue({ concurrency: this.perPeerConcurrency })
      this.peers.set(peerId, queue)
    }
    return queue
  }

  private dropIdlePeerQueue (peerId: string): void {
    const queue = this.peers.get(peerId)
    if (queue !== undefined && queue.size === 0 && queue.pending === 0) this.peers.delete(peerId)
  }

  /** One delivery attempt and what follows from its outcome. */
  private async attempt (transferId: string, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted()
    // Only a queued transfer starts (one cancelled while it waited for a slot stays cancelled).
    let record = await this.write(transferId, (r) => {
      if (r.state !== 'queued') return r
      const { nextAttemptAt: _, ...rest } = r
      return { ...rest, state: 'connecting', attempts: r.attempts + 1, updatedAt: this.nowIso() }
    })
    if (record.state !== 'connecting') return
    this.emit('state', record)
    let tracker: DeliveryTracker | undefined
    try {
      const manifest = await this.transfers.outgoingManifest(transferId)
      const confirmed = await this.transfers.confirmedOf(transferId)
      tracker = new DeliveryTracker(this.trackerContext(), record, manifest, confirmed)
      const track = tracker
      const receipt = await this.deliver({ record, manifest, confirmed }, { signal, onProgress: (u) => { track.update(u) } })
      signal.throwIfAborted()
      verifyReceipt(receipt, { peerId: record.peerId, manifest: manifest.signed, manifestHash: record.manifestHash })
      await track.flush()
      const at = this.nowIso()
      record = await this.write(transferId, (r) => r.state === 'cancelled'
        ? { ...r, receipt }
        : { ...r, state: 'complete', receipt, updatedAt: at, completedAt: at, done: { instances: r.totals.instances, bytes: r.totals.bytes } })
      if (record.state !== 'complete') return
      this.emit('state', record)
      track.complete(record)
      this.emit('study-complete', { ...refOf(record), receipt })
    } catch (err) {
      await tracker?.flush().catch(() => {})
      await this.failed(transferId, signal, err)
    }
  }

  private async failed (transferId: string, signal: AbortSignal, err: unknown): Promise<void> {
    const reason: unknown = signal.aborted ? signal.reason : undefined
    if (reason instanceof TransferCancelledError) return // cancel() wrote the record
    const now = new Date(this.clock.now())
    if (reason instanceof QueueStopping) {
      // Interrupted, not failed: the next start resumes it.
      this.emit('state', await this.write(transferId, (r) => ({ ...r, state: 'queued', updatedAt: now.toISOString() })))
      return
    }
    const error = errorRecord(err, now)
    const current = await this.transfers.getOutgoing(transferId)
    // Ended meanwhile by cancel() (with or without an error): that record stands.
    if (current === undefined || FINAL_OUTGOING_STATES.has(current.state)) return
    let state: OutgoingState
    let nextAttemptAt: string | undefined
    const failingSince = current.failingSince ?? now.toISOString()
    // The budget is time: the last retry is due when it runs out, and a failure after that ends the transfer.
    const budgetEnds = Date.parse(failingSince) + this.retryForMs
    if (err instanceof TransferDeclinedError) state = 'declined'
    else if (isFinal(error.code) || current.attempts >= this.maxAttempts || now.getTime() >= budgetEnds) state = 'failed'
    else {
      state = 'queued'
      const wait = backoffDelay(current.attempts - (current.backoffFrom ?? 0), this.backoff, this.clock.random())
      nextAttemptAt = new Date(Math.min(now.getTime() + wait, budgetEnds)).toISOString()
    }
    const record = await this.write(transferId, (r) => r.state === 'cancelled'
      ? r
      : { ...r, state, lastError: error, failingSince, updatedAt: now.toISOString(), ...(nextAttemptAt === undefined ? {} : { nextAttemptAt }) })
    if (record.state === 'cancelled') return
    this.emit('state', record)
    if (state === 'queued') {
      if (this.running) this.schedule(record, Date.parse(nextAttemptAt!) - now.getTime())
      return
    }
    this.emit('transfer-failed', { ...refOf(record), state, error })
  }

  private async write (transferId: string, change: (r: OutgoingRecord) => OutgoingRecord, sync = true): Promise<OutgoingRecord> {
    return this.transfers.updateOutgoing(transferId, change, { sync })
  }

  private nowIso (): string {
    return new Date(this.clock.now()).toISOString()
  }

  /** What a DeliveryTracker may use of the queue. */
  private trackerContext (): TrackerContext {
    return {
      transfers: this.transfers,
      now: this.clock.now,
      progressIntervalMs: this.progressIntervalMs,
      emit: (name, event) => { (this.emit as (name: string, event: unknown) => boolean)(name, event) }
    }
  }
}

interface TrackerContext {
  transfers: TransferStore
  now: () => number
  progressIntervalMs: number
  emit: <K extends keyof TransferEvents>(name: K, event: TransferEvents[K][0]) => void
}

/**
 * Turns deliver's updates for one attempt into record writes and events. Writes are chained in
 * order and never block deliver; flush() waits for them.
 */
class DeliveryTracker {
  private readonly ctx: TrackerContext
  private record: OutgoingRecord
  private readonly manifest: SignedManifest
  private readonly meter: ProgressMeter
  private readonly throttle: () => boolean
  private readonly sizes: Map<string, number>
  private readonly reports: string[]
  private writes: Promise<unknown> = Promise.resolve()
  private writeError: unknown

  constructor (ctx: TrackerContext, record: OutgoingRecord, manifest: SignedManifest, confirmed: ReadonlySet<string>) {
    this.ctx = ctx
    this.record = record
    this.manifest = manifest
    this.sizes = new Map(manifest.signed.instances.map((i) => [i.sha256, i.size]))
    this.reports = manifest.signed.instances.filter((i) => i.report).map((i) => i.sha256)
    this.meter = createProgressMeter(ctx.now, { instancesTotal: record.totals.instances, bytesTotal: record.totals.bytes })
    this.throttle = createThrottle(ctx.now, ctx.progressIntervalMs)
    for (const sha of confirmed) this.meter.markDone(sha, this.sizes.get(sha) ?? 0)
  }

  update (u: DeliveryUpdate): void {
    switch (u.kind) {
      case 'state':
        // Known at once (progress events name it); written in order with the other updates.
        this.record = { ...this.record, state: u.state }
        this.progress(true)
        this.chain(async () => {
          const written = await this.write((r) => r.state === 'cancelled' ? r : { ...r, state: u.state, updatedAt: this.nowIso() }, false)
          this.record = { ...written, state: this.record.state }
          if (written.state === u.state) this.ctx.emit('state', written)
        })
        return
      case 'have': {
        const fresh = u.sha256s.filter((sha) => this.sizes.has(sha) && this.meter.markDone(sha, this.sizes.get(sha)!))
        this.recordDone(fresh)
        return
      }
      case 'bytes':
        this.meter.addBytes(u.bytes)
        this.progress(false)
        return
      case 'confirmed':
        if (this.sizes.has(u.sha256) && this.meter.markDone(u.sha256, this.sizes.get(u.sha256)!)) this.recordDone([u.sha256])
    }
  }

  private recordDone (sha256s: string[]): void {
    if (sha256s.length === 0) return
    const snap = this.meter.snapshot()
    this.chain(async () => {
      // Not synced: losing the last few after a crash costs nothing, the receiver's answer is authoritative.
      await this.ctx.transfers.addConfirmed(this.record.transferId, sha256s, { sync: false })
      const written = await this.write((r) => ({ ...r, done: { instances: snap.instancesDone, bytes: snap.bytesDone } }), false)
      this.record = { ...written, state: this.record.state }
      if (!this.record.reportsNotified && this.reports.length > 0 && this.reports.every((sha) => this.meter.isDone(sha))) {
        this.record = { ...await this.write((r) => ({ ...r, reportsNotified: true })), state: this.record.state }
        const sops = new Map(this.manifest.signed.instances.map((i) => [i.sha256, i.sopInstanceUID]))
        this.ctx.emit('report-arrived', { ...refOf(this.record), reports: this.reports.map((sha) => sops.get(sha)!) })
      }
    })
    this.progress(false)
  }

  complete (record: OutgoingRecord): void {
    this.record = record
    for (const [sha, size] of this.sizes) this.meter.markDone(sha, size)
    this.progress(true)
  }

  private progress (force: boolean): void {
    if (!force && !this.throttle()) return
    this.ctx.emit('progress', {
      ...refOf(this.record),
      state: this.record.state,
      ...this.meter.snapshot(),
      at: this.nowIso()
    })
  }

  private async write (change: (r: OutgoingRecord) => OutgoingRecord, sync = true): Promise<OutgoingRecord> {
    return this.ctx.transfers.updateOutgoing(this.record.transferId, change, { sync })
  }

  private nowIso (): string {
    return new Date(this.ctx.now()).toISOString()
  }

  private chain (work: () => Promise<void>): void {
    this.writes = this.writes.then(work).catch((err: unknown) => { this.writeError ??= err })
  }

  async flush (): Promise<void> {
    await this.writes
    if (this.writeError !== undefined) throw this.writeError
  }
}

function refOf (record: OutgoingRecord): { direction: 'outgoing', transferId: string, peerId: string, studyInstanceUID: string } {
  return { direction: 'outgoing', transferId: record.transferId, peerId: record.peerId, studyInstanceUID: record.studyInstanceUID }
}

export function createTransferQueue (components: TransferQueueComponents, init: TransferQueueInit = {}): TransferQueue {
  return new DefaultTransferQueue(components, init)
}
