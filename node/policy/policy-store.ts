import { randomUUID } from 'node:crypto'
import type { AbstractSublevel } from 'abstract-level'
import { Level } from 'level'
import type { PullRequest } from '../../protocol/exchange/pull.ts'
import type { Purpose } from '../../protocol/exchange/requester.ts'
import { LEVEL_MEMORY_OPTIONS, openLevel } from '../store/level-open.ts'
import type { ConsentRegistry } from './consent.ts'
import { ApprovalDecidedError, ApprovalNotFoundError } from './errors.ts'

/*
 * What the pull policy keeps (level database `<data-dir>/policy`): patients' consent records, pull
 * requests waiting for a person here to approve or refuse them (they survive a restart), and the
 * pulls this node asked of others with what the source decided, then or later.
 */

type Sub<V> = AbstractSublevel<Level<string, unknown>, string | Buffer | Uint8Array, string, V>

export interface ConsentRecord {
  id: string
  bsn: string
  /** the institution it covers (absent: any) */
  ura?: string
  /** the purposes it covers (absent: any) */
  purposes?: Purpose[]
  /** the last day it holds (YYYY-MM-DD, absent: until withdrawn) */
  until?: string
  note?: string
  recordedAt: string
}

export type ApprovalState = 'waiting' | 'approved' | 'refused'

export interface ApprovalRecord {
  requestId: string
  state: ApprovalState
  studyInstanceUID: string
  patient: { bsn?: string, id: string, name: string }
  from: { ura: string, name: string, peerId: string }
  requester: PullRequest['requester']
  deliverTo: string
  /** why it waits (the rule's reason) */
  reason: string
  receivedAt: string
  decidedAt?: string
  decidedBy?: string
  /** why it was refused, or what approving it did */
  decision?: string
}

/** A pull this node asked of another hospital, and what that hospital decided. */
export interface PullMade {
  requestId: string
  at: { ura: string, name?: string }
  studyInstanceUID: string
  requester: PullRequest['requester']
  deliverTo: string
  decision: 'allowed' | 'queued' | 'refused'
  reason: string
  code?: string
  askedAt: string
  /** when a queued pull was decided at the source */
  decidedAt?: string
}

export class PolicyStore implements ConsentRegistry {
  private readonly db: Level<string, unknown>
  private readonly consents: Sub<ConsentRecord>
  private readonly approvals: Sub<ApprovalRecord>
  private readonly settings: Sub<string>
  private readonly pullsMade: Sub<PullMade>

  constructor (dir: string) {
    this.db = new Level<string, unknown>(dir, { valueEncoding: 'json', ...LEVEL_MEMORY_OPTIONS })
    this.consents = this.db.sublevel<string, ConsentRecord>('consents', { valueEncoding: 'json' })
    this.approvals = this.db.sublevel<string, ApprovalRecord>('approvals', { valueEncoding: 'json' })
    this.settings = this.db.sublevel<string, string>('settings', { valueEncoding: 'json' })
    this.pullsMade = this.db.sublevel<string, PullMade>('pulls-made', { valueEncoding: 'json' })
  }

  async addPullMade (pull: PullMade): Promise<void> {
    await this.db.batch().put(pull.requestId, pull, { sublevel: this.pullsMade }).write({ sync: true })
  }

  async getPullMade (requestId: string): Promise<PullMade | undefined> {
    return this.pullsMade.get(requestId)
  }

  /** Newest first. */
  async listPullsMade (): Promise<PullMade[]> {
    const all = await this.pullsMade.values().all()
    return all.sort((a, b) => b.askedAt.localeCompare(a.askedAt))
  }

  /** The hash of the policy settings the node last recorded as in force (see policy-in-force.ts). */
  async policyHashInForce (): Promise<string | undefined> {
    return this.settings.get('policy-hash')
  }

  async setPolicyHashInForce (hash: string): Promise<void> {
    await this.db.batch().put('policy-hash', hash, { sublevel: this.settings }).write({ sync: true })
  }

  async start (): Promise<void> { await openLevel(this.db) }
  async stop (): Promise<void> { await this.db.close() }

  async addConsent (consent: Omit<ConsentRecord, 'id' | 'recordedAt'>, now = new Date()): Promise<ConsentRecord> {
    const record: ConsentRecord = { ...consent, id: randomUUID(), recordedAt: now.toISOString() }
    await this.db.batch().put(`${record.bsn}!${record.id}`, record, { sublevel: this.consents }).write({ sync: true })
    return record
  }

  async consentsOf (bsn: string): Promise<ConsentRecord[]> {
    return this.consents.values({ gte: `${bsn}!`, lt: `${bsn}!\uffff` }).all()
  }

  async withdrawConsent (bsn: string, id: string): Promise<boolean> {
    const key = `${bsn}!${id}`
    if (await this.consents.get(key) === undefined) return false
    await this.db.batch().del(key, { sublevel: this.consents }).write({ sync: true })
    return true
  }

  async find (bsn: string, use: { ura: string, purpose: Purpose }, now = new Date()): Promise<string | undefined> {
    const today = now.toISOString().slice(0, 10)
    const consent = (await this.consentsOf(bsn)).find((c) =>
      (c.ura === undefined || c.ura === use.ura) && (c.purposes === undefined || c.purposes.includes(use.purpose)) && (c.until === undefined || c.until >= today))
    return consent === undefined ? undefined : `recorded ${consent.recordedAt.slice(0, 10)}${consent.until === undefined ? '' : `, until ${consent.until}`}`
  }

  async addApproval (record: ApprovalRecord): Promise<void> {
    await this.db.batch().put(record.requestId, record, { sublevel: this.approvals }).write({ sync: true })
  }

  async listApprovals (state?: ApprovalState): Promise<ApprovalRecord[]> {
    const all = await this.approvals.values().all()
    return all.filter((a) => state === undefined || a.state === state).sort((a, b) => a.receivedAt.localeCompare(b.receivedAt))
  }

  async getApproval (requestId: string): Promise<ApprovalRecord> {
    const record = await this.approvals.get(requestId)
    if (record === undefined) throw new ApprovalNotFoundError(requestId)
    return record
  }

  /** Marks a waiting request decided; refuses to decide one twice. */
  async decideApproval (requestId: string, state: 'approved' | 'refused', by: string, decision: string, now = new Date()): Promise<ApprovalRecord> {
    const record = await this.getApproval(requestId)
    if (record.state !== 'waiting') throw new ApprovalDecidedError(record)
    const decided: ApprovalRecord = { ...record, state, decidedAt: now.toISOString(), decidedBy: by, decision }
    await this.db.batch().put(requestId, decided, { sublevel: this.approvals }).write({ sync: true })
    return decided
  }
}
