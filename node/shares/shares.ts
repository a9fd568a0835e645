import { randomBytes, randomUUID } from 'node:crypto'
import type { AuditPerson, AuditSink } from '../audit/audit-log.ts'
import { auditPatient } from '../audit/events.ts'
import type { StudyRecord } from '../store/records.ts'
import { ShareCodeError, ShareEndedError, ShareLockedError, ShareSessionError } from './errors.ts'
import { formatCode, hashCode, isTokenShaped, newCode, newToken, tokenHash, verifyCode } from './share-secrets.ts'
import type { ShareRecord, ShareStore } from './share-store.ts'
import type { ShareState, ShareView } from '../../protocol/api/shares.ts'

export type { ShareState, ShareView }

/*
 * A patient's share link: one study, opened without an account by a token (the URL) and a code
 * (handed over apart from it), for a number of days and a number of downloads. Wrong codes are
 * counted on the link: 5 in a row lock it for 15 minutes, 10 in all for good. A token no link has
 * is answered in the same words and counted the same way, in memory, so guessing tells nothing.
 * The right code opens a session of at most an hour (kept in memory: a restart asks for the code
 * again), never past the link's end. Revoking or expiry ends the link's sessions at once; a link
 * whose downloads are used up or that is locked opens no new session, while one already open goes on
 * (its holder knew the code). Every open, refusal, creation and revocation is in the audit trail.
 */

/** A link just made: the only time its token and code are known. */
export interface MadeShare {
  record: ShareRecord
  token: string
  /** formatted: ABCD-EFGH */
  code: string
}

export interface ShareSession {
  shareId: string
  studyInstanceUID: string
  /** epoch ms */
  expires: number
}

export interface SharesComponents {
  store: ShareStore
  /** the study a link names, for its patient in the audit trail */
  studyRecord: (studyInstanceUID: string) => Promise<StudyRecord>
  audit?: AuditSink
}

export interface SharesInit {
  /** the clock (default () => new Date()) */
  now?: () => Date
  /** most sessions held at once; the oldest goes first (default 10_000) */
  maxSessions?: number
  /** most unknown tokens whose wrong codes are counted (default 10_000) */
  maxUnknownTokens?: number
}

export const SHARE_RULES = {
  wrongInARow: 5,
  wrongInAll: 10,
  lockMs: 15 * 60_000,
  sessionMs: 60 * 60_000
} as const

interface Counters { failedAttempts: number, failedInARow: number, lockedUntil?: string }

/** The patient, as the audit trail names whoever holds a link's code. */
export function sharePerson (shareId: string): AuditPerson {
  return { system: `patient via share link ${shareId}` }
}

export function stateOf (record: ShareRecord, now: Date): ShareState {
  if (record.revokedAt !== undefined) return 'revoked'
  if (record.expiresAt <= now.toISOString()) return 'expired'
  if (lockOf(record, now) !== undefined) return 'locked'
  if (record.downloads >= record.maxDownloads) return 'used-up'
  return 'active'
}

/** 'for good', the time a lock ends, or undefined when not locked. */
function lockOf (counters: Counters, now: Date): 'for good' | string | undefined {
  if (counters.failedAttempts >= SHARE_RULES.wrongInAll) return 'for good'
  if (counters.lockedUntil !== undefined && counters.lockedUntil > now.toISOString()) return counters.lockedUntil
  return undefined
}

function afterWrongCode<C extends Counters> (counters: C, now: Date): C {
  const next = { ...counters, failedAttempts: counters.failedAttempts + 1, failedInARow: counters.failedInARow + 1 }
  if (next.failedInARow >= SHARE_RULES.wrongInARow) {
    next.lockedUntil = new Date(now.getTime() + SHARE_RULES.lockMs).toISOString()
    next.failedInARow = 0
  }
  return next
}

/** The refusal of a wrong code with these counters (after it was counted). */
function wrongCodeError (counters: Counters, now: Date): ShareCodeError | ShareLockedError {
  const lock = lockOf(counters, now)
  if (lock !== undefined) return new ShareLockedError(lock === 'for good' ? undefined : lock)
  return new ShareCodeError(Math.min(SHARE_RULES.wrongInARow - counters.failedInARow, SHARE_RULES.wrongInAll - counters.failedAttempts))
}

export function shareView (record: ShareRecord, now: Date): ShareView {
  const state = stateOf(record, now)
  const lock = state === 'locked' ? lockOf(record, now) : undefined
  return {
    id: record.id,
    studyInstanceUID: record.studyInstanceUID,
    createdBy: record.createdBy,
    createdAt: record.createdAt,
    expiresAt: record.expiresAt,
    maxDownloads: record.maxDownloads,
    downloads: record.downloads,
    opens: record.opens,
    failedAttempts: record.failedAttempts,
    state,
    ...(lock === undefined || lock === 'for good' ? {} : { lockedUntil: lock })
  }
}

export class Shares {
  private readonly store: ShareStore
  private readonly studyRecord: SharesComponents['studyRecord']
  private readonly audit: AuditSink | undefined
  readonly now: () => Date
  private readonly maxSessions: number
  private readonly maxUnknownTokens: number
  private readonly sessions = new Map<string, ShareSession>()
  /** token hash -> its wrong codes, for tokens no link has */
  private readonly unknownTokens = new Map<string, Counters>()
  /** token hash -> the attempt under way: one at a time per link, so parallel guesses cannot pass the lock */
  private readonly attempts = new Map<string, Promise<unknown>>()

  constructor (components: SharesComponents, init: SharesInit = {}) {
    this.store = components.store
    this.studyRecord = components.studyRecord
    this.audit = components.audit
    this.now = init.now ?? (() => new Date())
    this.maxSessions = init.maxSessions ?? 10_000
    this.maxUnknownTokens = init.maxUnknownTokens ?? 10_000
  }

  /** A new link to the study for `days` and `maxDownloads`, audited as made by `by`. */
  async create (studyInstanceUID: string, by: { createdBy: string, person: AuditPerson }, options: { days: number, maxDownloads: number }): Promise<MadeShare> {
    const study = await this.studyRecord(studyInstanceUID)
    const token = newToken()
    const code = newCode()
    const now = this.now()
    const record: ShareRecord = {
      id: randomUUID(),
      tokenHash: tokenHash(token),
      codeHash: await hashCode(code),
      studyInstanceUID,
      createdBy: by.createdBy,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + options.days * 24 * 60 * 60_000).toISOString(),
      maxDownloads: options.maxDownloads,
      downloads: 0,
      opens: 0,
      failedAttempts: 0,
      failedInARow: 0
    }
    await this.store.create(record)
    await this.audit?.record({ event: 'share-created', outcome: 'success', patient: auditPatient(study.patient), user: by.person, studyInstanceUID, details: { shareId: record.id, expiresAt: record.expiresAt, maxDownloads: record.maxDownloads } })
    return { record, token, code: formatCode(code) }
  }

  async list (studyInstanceUID?: string): Promise<ShareView[]> {
    const now = this.now()
    return (await this.store.list())
      .filter((r) => studyInstanceUID === undefined || r.studyInstanceUID === studyInstanceUID)
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
      .map((r) => shareView(r, now))
  }

  /** Ends the link, and so every session on it at once. Revoking a revoked link changes nothing. */
  async revoke (id: string, by: AuditPerson): Promise<ShareView> {
    const now = this.now()
    let changed = false
    const record = await this.store.update(id, (r) => {
      if (r.revokedAt !== undefined) return r
      changed = true
      return { ...r, revokedAt: now.toISOString(), revokedBy: by.name ?? by.system ?? 'unknown' }
    })
    if (changed) {
      const study = await this.studyRecord(record.studyInstanceUID).catch(() => undefined)
      await this.audit?.record({ event: 'share-revoked', outcome: 'success', ...(study === undefined ? {} : { patient: auditPatient(study.patient) }), user: by, studyInstanceUID: record.studyInstanceUID, details: { shareId: id } })
    }
    return shareView(record, now)
  }

  /**
   * Opens a session with the link's code: resolves with the session's id (the cookie) and the link,
   * or refuses with ShareCodeError, ShareLockedError or ShareEndedError. `from`: the caller's address, for the trail.
   */
  async open (token: string, typedCode: string, from: string): Promise<{ sessionId: string, session: ShareSession, record: ShareRecord }> {
    const hash = tokenHash(token)
    const previous = this.attempts.get(hash) ?? Promise.resolve()
    const attempt = previous.catch(() => {}).then(async () => this.openNow(token, hash, typedCode, from))
    this.attempts.set(hash, attempt)
    void attempt.catch(() => {}).then(() => { if (this.attempts.get(hash) === attempt) this.attempts.delete(hash) })
    return attempt
  }

  private async openNow (token: string, hash: string, typedCode: string, from: string): Promise<{ sessionId: string, session: ShareSession, record: ShareRecord }> {
    const now = this.now()
    const record = isTokenShaped(token) ? await this.store.byTokenHash(hash) : undefined
    if (record === undefined) return this.unknownToken(hash, typedCode, from, now)
    const study = await this.studyRecord(record.studyInstanceUID)
    const refused = async (event: string, outcome: string): Promise<void> => {
      await this.audit?.record({ event, outcome, patient: auditPatient(study.patient), user: { system: `someone via share link ${record.id} from ${from}` }, studyInstanceUID: record.studyInstanceUID, details: { shareId: record.id } })
    }
    const state = stateOf(record, now)
    if (state === 'revoked' || state === 'expired' || state === 'used-up') {
      await refused('share-opened', `refused: ${state}`)
      throw new ShareEndedError(state)
    }
    const lock = lockOf(record, now)
    if (lock !== undefined) {
      await refused('share-code-refused', 'refused: locked')
      throw new ShareLockedError(lock === 'for good' ? undefined : lock)
    }
    if (!await verifyCode(typedCode, record.codeHash)) {
      const counted = await this.store.update(record.id, (r) => afterWrongCode(r, now))
      await refused('share-code-refused', `refused: wrong code (${counted.failedAttempts} of ${SHARE_RULES.wrongInAll})`)
      throw wrongCodeError(counted, now)
    }
    const opened = await this.store.update(record.id, (r) => {
      const { lockedUntil: _, ...rest } = r
      return { ...rest, opens: r.opens + 1, failedInARow: 0 }
    })
    const sessionId = randomBytes(32).toString('base64url')
    const session = { shareId: record.id, studyInstanceUID: record.studyInstanceUID, expires: Math.min(now.getTime() + SHARE_RULES.sessionMs, Date.parse(record.expiresAt)) }
    this.forgetOldSessions(now)
    this.sessions.set(sessionId, session)
    // Bounded: the oldest session goes first.
    if (this.sessions.size > this.maxSessions) this.sessions.delete(this.sessions.keys().next().value!)
    await this.audit?.record({ event: 'share-opened', outcome: 'success', patient: auditPatient(study.patient), user: sharePerson(record.id), studyInstanceUID: record.studyInstanceUID, details: { shareId: record.id, address: from, sessionUntil: new Date(session.expires).toISOString() } })
    return { sessionId, session, record: opened }
  }

  /** The same work, counting and answers as for a link (in memory), and a record without a link id. */
  private async unknownToken (hash: string, typedCode: string, from: string, now: Date): Promise<never> {
    const counters = this.unknownTokens.get(hash) ?? { failedAttempts: 0, failedInARow: 0 }
    const lock = lockOf(counters, now)
    if (lock === undefined) await verifyCode(typedCode, undefined)
    const counted = lock === undefined ? afterWrongCode(counters, now) : counters
    this.unknownTokens.delete(hash)
    this.unknownTokens.set(hash, counted)
    if (this.unknownTokens.size > this.maxUnknownTokens) this.unknownTokens.delete(this.unknownTokens.keys().next().value!)
    await this.audit?.record({ event: 'share-code-refused', outcome: lock === undefined ? 'refused: no link has this token' : 'refused: locked', user: { system: `someone via an unknown share link from ${from}` } })
    throw lock === undefined ? wrongCodeError(counted, now) : new ShareLockedError(lock === 'for good' ? undefined : lock)
  }

  /**
   * The live session `sessionId` of the link with this token, and the link as it is now, or
   * ShareSessionError without one. A session of a revoked or expired link is refused with
   * ShareEndedError from then on (so the patient's page can say the link has ended).
   */
  async session (token: string, sessionId: string | undefined): Promise<{ session: ShareSession, record: ShareRecord }> {
    const session = sessionId === undefined ? undefined : this.sessions.get(sessionId)
    const now = this.now()
    if (session === undefined || sessionId === undefined) throw new ShareSessionError()
    // A cookie of another link (sent by hand to this link's path) is no session here.
    const record = isTokenShaped(token) ? await this.store.byTokenHash(tokenHash(token)) : undefined
    if (record?.id !== session.shareId) throw new ShareSessionError()
    const state = stateOf(record, now)
    if (state === 'revoked' || state === 'expired') throw new ShareEndedError(state)
    if (session.expires <= now.getTime()) {
      this.sessions.delete(sessionId)
      throw new ShareSessionError()
    }
    return { session, record }
  }

  /** Counts one download of the link, or refuses when its downloads are used up (or it has ended). */
  async countDownload (id: string): Promise<ShareRecord> {
    const now = this.now()
    return this.store.update(id, (r) => {
      const state = stateOf(r, now)
      if (state === 'revoked' || state === 'expired') throw new ShareEndedError(state)
      if (r.downloads >= r.maxDownloads) throw new ShareEndedError('used-up')
      return { ...r, downloads: r.downloads + 1 }
    })
  }

  /** Sessions over for a day: by then a patient's page has been told its link ended. */
  private forgetOldSessions (now: Date): void {
    for (const [id, session] of this.sessions) if (session.expires < now.getTime() - 24 * 60 * 60_000) this.sessions.delete(id)
  }

  /** For the session's answer: how many downloads the link has left. */
  static downloadsLeft (record: ShareRecord): number {
    return Math.max(0, record.maxDownloads - record.downloads)
  }
}

export function createShares (components: SharesComponents, init: SharesInit = {}): Shares {
  return new Shares(components, init)
}
