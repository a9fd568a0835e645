import type { AuditPatient, AuditPerson, AuditSink } from './audit-log.ts'
import { describePerson, recordShown } from './events.ts'

/*
 * A study's images seen by a person, recorded once per window rather than per request: a viewer
 * scrolling a 500-slice CT asks for 500 frames, and the trail (NEN 7513: who saw which patient's
 * data, when) would gain 500 records that say nothing the first did not. So a 'view' of a study is
 * written at most once per caller per study per window, the window running from the last record
 * written for that pair. The record itself is what recordShown writes (the first request's path
 * and outcome). A request that finds another one's record for its pair being written waits for it:
 * no image leaves before its view is durable. A caller we cannot name is recorded every time.
 */

export interface ViewRecordsComponents {
  /** the trail (optional: without it nothing is recorded) */
  audit?: AuditSink
}

export interface ViewRecordsInit {
  /** how long after a view of a study is recorded the same caller's views of it are not (default 30 minutes) */
  windowMs?: number
  /** most (caller, study) pairs remembered; the least recently recorded is forgotten first, and then recorded again (default 10_000) */
  maxPairs?: number
  /** the clock (default () => new Date()) */
  now?: () => Date
}

/** What the routes know of a request: who called (auth.ts) and where. */
export interface ViewRequest {
  caller?: { kind: string, name: string, person?: AuditPerson }
  ip: string
  url: string
}

export interface ViewRecords {
  /**
   * Records a 'view' of the study by the request's caller, unless one was recorded within the
   * window; resolves when the record is durable (or was not needed). `study` is read only when a
   * record is written.
   */
  viewed: (req: ViewRequest, kind: string, outcome: string, studyInstanceUID: string, study: () => Promise<{ patient: AuditPatient }>) => Promise<void>
}

class DefaultViewRecords implements ViewRecords {
  private readonly audit: AuditSink | undefined
  private readonly windowMs: number
  private readonly maxPairs: number
  private readonly now: () => Date
  /** pair -> when its last record was written; in the order written, so the first is the oldest */
  private readonly written = new Map<string, number>()
  /** pair -> its record being written now */
  private readonly writing = new Map<string, Promise<void>>()

  constructor (components: ViewRecordsComponents, init: ViewRecordsInit) {
    this.audit = components.audit
    this.windowMs = init.windowMs ?? 30 * 60_000
    this.maxPairs = init.maxPairs ?? 10_000
    this.now = init.now ?? (() => new Date())
  }

  async viewed (req: ViewRequest, kind: string, outcome: string, studyInstanceUID: string, study: () => Promise<{ patient: AuditPatient }>): Promise<void> {
    if (this.audit === undefined) return
    const write = async (): Promise<void> => recordShown(this.audit, req, kind, 'view', outcome, [{ studyInstanceUID, patient: (await study()).patient }])
    if (req.caller === undefined) { await write(); return }
    // The audited person too: two tokens may share a name, and each is its own user in the trail.
    const { caller } = req
    const pair = JSON.stringify([caller.kind, caller.name, caller.person === undefined ? '' : describePerson(caller.person), studyInstanceUID])
    for (let pending = this.writing.get(pair); pending !== undefined; pending = this.writing.get(pair)) {
      // Its failure is answered to its own request; this one then writes the record itself.
      await pending.catch(() => {})
    }
    const last = this.written.get(pair)
    if (last !== undefined && this.now().getTime() - last < this.windowMs) return
    const writing = (async () => {
      try {
        await write()
        this.remember(pair)
      } finally {
        this.writing.delete(pair)
      }
    })()
    this.writing.set(pair, writing)
    await writing
  }

  private remember (pair: string): void {
    const t = this.now().getTime()
    this.written.delete(pair)
    this.written.set(pair, t)
    // Expired pairs go first (they would be recorded again anyway), then the oldest over the bound.
    for (const [oldest, at] of this.written) {
      if (t - at < this.windowMs && this.written.size <= this.maxPairs) break
      this.written.delete(oldest)
    }
  }
}

export function createViewRecords (components: ViewRecordsComponents, init: ViewRecordsInit = {}): ViewRecords {
  return new DefaultViewRecords(components, init)
}
