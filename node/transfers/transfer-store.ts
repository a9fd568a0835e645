import { summariseManifest, type Manifest, type SignedManifest } from '../../protocol/exchange/manifest.ts'
import type { SignedReceipt } from '../../protocol/exchange/receipt.ts'
import { LevelRecords, type RecordSublevel } from '../store/level-records.ts'
import { TransferConflictError, TransferNotFoundError } from './errors.ts'

/*
 * Transfer records, in a level database of their own (<data-dir>/transfers by default): outgoing
 * transfers by transfer id, incoming ones by sender peer id and transfer id (a transfer id is the
 * sender's choice, so another peer can never resume or spoil it). Manifests and per-instance
 * progress live in their own sublevels: a record stays small however large the study, and
 * confirming one instance is one small write.
 */

export type OutgoingState = 'queued' | 'connecting' | 'offering' | 'sending' | 'verifying' | 'complete' | 'declined' | 'failed' | 'cancelled'
export type IncomingState = 'receiving' | 'committing' | 'complete' | 'failed' | 'cancelled'

export const FINAL_OUTGOING_STATES: ReadonlySet<OutgoingState> = new Set(['complete', 'declined', 'failed', 'cancelled'])
export const FINAL_INCOMING_STATES: ReadonlySet<IncomingState> = new Set(['complete', 'failed', 'cancelled'])

export interface ErrorRecord {
  code: string
  message: string
  /** ISO 8601 */
  at: string
}

export interface TransferTotals {
  instances: number
  reports: number
  bytes: number
}

/** A transfer's totals, from the manifest's own summary. */
export function transferTotals (manifest: Manifest): TransferTotals {
  const { instances, reports, bytes } = summariseManifest(manifest)
  return { instances, reports, bytes }
}

interface RecordBase {
  transferId: string
  studyInstanceUID: string
  manifestHash: string
  /** ISO 8601 times */
  createdAt: string
  updatedAt: string
  completedAt?: string
  lastError?: ErrorRecord
  totals: TransferTotals
  /** instances (and their bytes) the receiver holds: verified in this transfer, or held before it */
  done: { instances: number, bytes: number }
  /** 'report-arrived' was raised (once per transfer, across restarts) */
  reportsNotified: boolean
  /** the receiver's signed receipt, once committed */
  receipt?: SignedReceipt
}

export interface OutgoingRecord extends RecordBase {
  direction: 'outgoing'
  /** the receiving node */
  peerId: string
  destination: { ura: string, department: string }
  state: OutgoingState
  /** deliveries started, the first included */
  attempts: number
  /** when a retry is due (ISO 8601), while waiting for one */
  nextAttemptAt?: string
  /** when the failures that are being retried began (ISO 8601): the retry budget counts from here */
  failingSince?: string
  /** `attempts` when the backoff last started over (the peer was seen again): the wait grows from there */
  backoffFrom?: number
}

export interface IncomingRecord extends RecordBase {
  direction: 'incoming'
  /** the sending node */
  peerId: string
  senderUra: string
  department: string
  state: IncomingState
  /** a hold on the study (it existed at the start) keeps retention and delete off what the receiver already had */
  holder?: string
}

export type TransferRecord = OutgoingRecord | IncomingRecord

/** One instance the receiver verified and keeps for the commit. */
export interface VerifiedInstance {
  sha256: string
  sopInstanceUID: string
  size: number
}

export interface TransferStoreInit {
  /** where the level database lives, e.g. `<data-dir>/transfers` */
  dir: string
}

export interface WriteOptions {
  /** fsync before resolving (default true); progress counters pass false */
  sync?: boolean
}

export interface TransferStore {
  start (): Promise<void>
  stop (): Promise<void>

  /** Records a new outgoing transfer and its manifest; refuses a transfer id already used. */
  createOutgoing (record: OutgoingRecord, manifest: SignedManifest): Promise<void>
  getOutgoing (transferId: string): Promise<OutgoingRecord | undefined>
  listOutgoing (): Promise<OutgoingRecord[]>
  /** Reads, changes and writes one record, serialised with every other update. */
  updateOutgoing (transferId: string, change: (record: OutgoingRecord) => OutgoingRecord, options?: WriteOptions): Promise<OutgoingRecord>
  outgoingManifest (transferId: string): Promise<SignedManifest>
  /** Instances the receiver confirmed (by SHA-256). */
  addConfirmed (transferId: string, sha256s: string[], options?: WriteOptions): Promise<void>
  confirmedOf (transferId: string): Promise<Set<string>>

  createIncoming (record: IncomingRecord, manifest: SignedManifest): Promise<void>
  getIncoming (peerId: string, transferId: string): Promise<IncomingRecord | undefined>
  listIncoming (): Promise<IncomingRecord[]>
  updateIncoming (peerId: string, transferId: string, change: (record: IncomingRecord) => IncomingRecord, options?: WriteOptions): Promise<IncomingRecord>
  incomingManifest (peerId: string, transferId: string): Promise<SignedManifest>
  /** Records one verified instance, durably: a later session for the transfer will not ask for it. */
  addVerified (peerId: string, transferId: string, instance: VerifiedInstance): Promise<void>
  /** Several verified instances, of one or more transfers, in one synced write. */
  addVerifiedMany (items: Array<{ peerId: string, transferId: string, instance: VerifiedInstance }>): Promise<void>
  verifiedOf (peerId: string, transferId: string): Promise<Map<string, VerifiedInstance>>
  /** Forgets verified instances (all of them when `sha256s` is omitted). */
  removeVerified (peerId: string, transferId: string, sha256s?: string[]): Promise<void>
}

type Sub<V> = RecordSublevel<V>

const SEP = '\x00'
const LAST = '\xff'
const key = (...parts: string[]): string => parts.join(SEP)
const prefixRange = (...parts: string[]): { gte: string, lt: string } => ({ gte: key(...parts) + SEP, lt: key(...parts) + SEP + LAST })

class LevelTransferStore implements TransferStore {
  /** Every read-modify-write goes through its one queue, so no update is lost to a concurrent one. */
  private readonly level: LevelRecords
  private readonly outgoing: Sub<OutgoingRecord>
  private readonly outgoingManifests: Sub<SignedManifest>
  private readonly confirmed: Sub<string>
  private readonly incoming: Sub<IncomingRecord>
  private readonly incomingManifests: Sub<SignedManifest>
  private readonly verified: Sub<VerifiedInstance>

  constructor (init: TransferStoreInit) {
    this.level = new LevelRecords(init.dir)
    this.outgoing = this.level.sublevel('outgoing')
    this.outgoingManifests = this.level.sublevel('outgoing-manifests')
    this.confirmed = this.level.sublevel('outgoing-confirmed')
    this.incoming = this.level.sublevel('incoming')
    this.incomingManifests = this.level.sublevel('incoming-manifests')
    this.verified = this.level.sublevel('incoming-verified')
  }

  async start (): Promise<void> {
    await this.level.start()
  }

  async stop (): Promise<void> {
    await this.level.stop()
  }

  async createOutgoing (record: OutgoingRecord, manifest: SignedManifest): Promise<void> {
    await this.level.serialised(async () => {
      if (await this.outgoing.get(record.transferId) !== undefined) throw new TransferConflictError(record.transferId)
      await this.level.db.batch()
        .put(record.transferId, manifest, { sublevel: this.outgoingManifests })
        .put(record.transferId, record, { sublevel: this.outgoing })
        .write({ sync: true })
    })
  }

  async getOutgoing (transferId: string): Promise<OutgoingRecord | undefined> {
    return this.outgoing.get(transferId)
  }

  async listOutgoing (): Promise<OutgoingRecord[]> {
    return this.outgoing.values().all() as Promise<OutgoingRecord[]>
  }

  async updateOutgoing (transferId: string, change: (record: OutgoingRecord) => OutgoingRecord, options: WriteOptions = {}): Promise<OutgoingRecord> {
    return this.level.update(this.outgoing, transferId, change, () => new TransferNotFoundError(transferId), options.sync ?? true)
  }

  async outgoingManifest (transferId: string): Promise<SignedManifest> {
    const manifest = await this.outgoingManifests.get(transferId)
    if (manifest === undefined) throw new TransferNotFoundError(transferId)
    return manifest
  }

  async addConfirmed (transferId: string, sha256s: string[], options: WriteOptions = {}): Promise<void> {
    if (sha256s.length === 0) return
    const batch = this.level.db.batch()
    for (const sha of sha256s) batch.put(key(transferId, sha), '', { sublevel: this.confirmed })
    await batch.write({ sync: options.sync ?? true })
  }

  async confirmedOf (transferId: string): Promise<Set<string>> {
    const out = new Set<string>()
    for await (const k of this.confirmed.keys(prefixRange(transferId))) out.add(k.split(SEP)[1]!)
    return out
  }

  async createIncoming (record: IncomingRecord, manifest: SignedManifest): Promise<void> {
    await this.level.serialised(async () => {
      const k = key(record.peerId, record.transferId)
      if (await this.incoming.get(k) !== undefined) throw new TransferConflictError(record.transferId)
      await this.level.db.batch()
        .put(k, manifest, { sublevel: this.incomingManifests })
        .put(k, record, { sublevel: this.incoming })
        .write({ sync: true })
    })
  }

  async getIncoming (peerId: string, transferId: string): Promise<IncomingRecord | undefined> {
    return this.incoming.get(key(peerId, transferId))
  }

  async listIncoming (): Promise<IncomingRecord[]> {
    return this.incoming.values().all() as Promise<IncomingRecord[]>
  }

  async updateIncoming (peerId: string, transferId: string, change: (record: IncomingRecord) => IncomingRecord, options: WriteOptions = {}): Promise<IncomingRecord> {
    return this.level.update(this.incoming, key(peerId, transferId), change, () => new TransferNotFoundError(transferId), options.sync ?? true)
  }

  async incomingManifest (peerId: string, transferId: string): Promise<SignedManifest> {
    const manifest = await this.incomingManifests.get(key(peerId, transferId))
    if (manifest === undefined) throw new TransferNotFoundError(transferId)
    return manifest
  }

  async addVerified (peerId: string, transferId: string, instance: VerifiedInstance): Promise<void> {
    await this.level.db.batch().put(key(peerId, transferId, instance.sha256), instance, { sublevel: this.verified }).write({ sync: true })
  }

  async addVerifiedMany (items: Array<{ peerId: string, transferId: string, instance: VerifiedInstance }>): Promise<void> {
    const batch = this.level.db.batch()
    for (const { peerId, transferId, instance } of items) batch.put(key(peerId, transferId, instance.sha256), instance, { sublevel: this.verified })
    await batch.write({ sync: true })
  }

  async verifiedOf (peerId: string, transferId: string): Promise<Map<string, VerifiedInstance>> {
    const out = new Map<string, VerifiedInstance>()
    for await (const v of this.verified.values(prefixRange(peerId, transferId))) out.set(v.sha256, v)
    return out
  }

  async removeVerified (peerId: string, transferId: string, sha256s?: string[]): Promise<void> {
    const batch = this.level.db.batch()
    const keys = sha256s?.map((sha) => key(peerId, transferId, sha)) ?? await this.verified.keys(prefixRange(peerId, transferId)).all()
    for (const k of keys) batch.del(k, { sublevel: this.verified })
    await batch.write({ sync: true })
  }
}

export function createTransferStore (init: TransferStoreInit): TransferStore {
  return new LevelTransferStore(init)
}
