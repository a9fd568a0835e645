import type { Clock } from './clock.ts'

/*
 * How a persistent queue waits to try again: exponential backoff, capped, with jitter, and one
 * abortable waiting job per record. The outgoing transfer queue (queue.ts) and the export queue to
 * the PACS (reconcile/export-queue.ts) retry the same way; this is the one copy of it.
 */

export interface Backoff {
  /** wait before the first retry; doubles each time */
  initialMs: number
  /** longest wait between attempts */
  maxMs: number
  /** the share of a wait that is random (0..1): the wait is up to that much shorter, so jobs do not retry in step */
  jitter: number
}

/**
 * The wait after `attempts` attempts: exponential from initialMs, capped at maxMs, then shortened by
 * `random` (in [0, 1), the clock's) times `jitter` of it.
 */
export function backoffDelay (attempts: number, backoff: Backoff, random: number): number {
  const base = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.max(0, attempts - 1))
  return Math.round(base * (1 - backoff.jitter * random))
}

/**
 * One job per id: waits its delay (outside any concurrency slot), then runs. Each has its own
 * AbortController, so a cancel or a stop ends the wait at once, and `run` gets the signal for
 * what follows. A job scheduled again for the same id takes the place of the earlier one.
 */
export class RetrySchedule {
  private readonly clock: Clock
  private readonly onFault: (err: unknown, id: string) => void
  private readonly jobs = new Map<string, { controller: AbortController, done: Promise<void>, wake?: AbortController }>()

  /** `onFault`: an error `run` threw that no abort explains (a fault of the queue itself, its store failing, say). */
  constructor (clock: Clock, onFault: (err: unknown, id: string) => void) {
    this.clock = clock
    this.onFault = onFault
  }

  /** `settled` runs after the job ends, however it ends. */
  schedule (id: string, delayMs: number, run: (signal: AbortSignal) => Promise<unknown>, settled?: () => void): void {
    const controller = new AbortController()
    const { signal } = controller
    const wake = delayMs > 0 ? new AbortController() : undefined
    const done = (async () => {
      try {
        if (wake !== undefined) await this.clock.sleep(delayMs, AbortSignal.any([signal, wake.signal])).catch((err: unknown) => { if (!wake.signal.aborted || signal.aborted) throw err })
        signal.throwIfAborted()
        const job = this.jobs.get(id)
        if (job?.controller === controller) delete job.wake
        await run(signal)
      } catch (err) {
        if (!signal.aborted) this.onFault(err, id)
      } finally {
        if (this.jobs.get(id)?.controller === controller) this.jobs.delete(id)
        settled?.()
      }
    })()
    this.jobs.set(id, { controller, done, wake })
  }

  /** Ends the wait of `id`'s job now, so it runs at once; false when it is not waiting (running, or no job). */
  wake (id: string): boolean {
    const wake = this.jobs.get(id)?.wake
    if (wake === undefined || wake.signal.aborted) return false
    wake.abort()
    return true
  }

  /** Aborts the job of `id`, if there is one, with `reason`. */
  abort (id: string, reason: unknown): void {
    this.jobs.get(id)?.controller.abort(reason)
  }

  /** Aborts every job with `reason` and waits for them all to end. */
  async abortAll (reason: unknown): Promise<void> {
    const jobs = [...this.jobs.values()]
    for (const job of jobs) job.controller.abort(reason)
    await Promise.allSettled(jobs.map(async (j) => j.done))
  }
}
