import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { mkdir, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { acceptAnswer, type AcceptAnswer } from '../../../protocol/exchange/answer.ts'
import { reportsFirst, verifyManifest, type Manifest, type ManifestInstance } from '../../../protocol/exchange/manifest.ts'
import type { NodeSigner } from '../../../protocol/exchange/node-signature.ts'
import { signReceipt, type SignedReceipt } from '../../../protocol/exchange/receipt.ts'
import { SignerMismatchError } from '../../../protocol/exchange/errors.ts'
import { readInstanceHeader, type InstanceHeader } from '../../dicom/instance-header.ts'
import { InstanceConflictError, PatientMismatchError, StudyNotFoundError } from '../../errors.ts'
import { destroyIfStream, type StagedBlob } from '../../store/blob-store.ts'
import type { Reservation } from '../../store/disk-space.ts'
import type { Staged, StudyStore } from '../../store/study-store.ts'
import { systemClock, type Clock } from '../clock.ts'
import {
  InstanceHashError, InstanceHeaderMismatchError, InstanceNotInManifestError, InstanceNotRequestedError, InstanceOverrunError,
  InstanceTruncatedError, SessionClosedError, TransferBusyError, TransferCancelledError, TransferConflictError, TransferExpiredError,
  TransferIncompleteError, TransferNotFoundError, TransferStateError, WrongDestinationError
} from '../errors.ts'
import { errorRecord, type TransferEvents } from '../events.ts'
import { createProgressMeter, createThrottle, type ProgressMeter } from '../progress.ts'
import { transferTotals, type IncomingRecord, type IncomingState, type TransferStore, type VerifiedInstance } from '../transfer-store.ts'
import { fsyncPath, pathExists } from '../../store/durable-fs.ts'
import { createVerifiedKeeper, type VerifiedKeeper } from './keep-verified.ts'

/*
 * The receiving end of a push, independent of the transport: a session per offered manifest takes
 * instance byte streams one by one, verifies each (declared size, SHA-256, header UIDs and patient
 * against the signed manifest) and keeps it in store/incoming/<transfer>/<sha256>: durable, outside
 * the index, out of reach of retention and fsck, recorded in the transfer store. A later session
 * for the same transfer (after a broken connection or a restart of this node) asks only for what is
 * still missing. commit() moves everything into the blob store and indexes the study in one batch,
 * then signs the receipt.
 */

export interface IncomingTransfersComponents {
  store: StudyStore
  transfers: TransferStore
  /** this node: its peer id names it in receipts and its key signs them (NodeIdentity fits) */
  identity: { peerId: string, privateKey: NodeSigner }
  /** default: the system clock */
  clock?: Clock
}

export interface IncomingTransfersInit {
  /** this node's institution, or how to look it up when an offer arrives (the directory can change it): offers for another URA are refused, receipts name it */
  ura: string | (() => string)
  /** where verified instances wait for their commit; must be on the store's file system (default `<store>/incoming`) */
  dir?: string
  /** at most one progress event per transfer per this many milliseconds (default 500) */
  progressIntervalMs?: number
}

export interface ReceivedInstance {
  sopInstanceUID: string
  sha256: string
  size: number
  /** instances still missing after this one */
  remaining: number
}

export interface ReceiveSession {
  readonly transferId: string
  /** the sending node */
  readonly peerId: string
  readonly manifest: Manifest
  readonly manifestHash: string
  /** the record as last written */
  readonly record: IncomingRecord
  /**
   * Instances still to be sent, reports first: not verified in an earlier session of this transfer
   * and not already stored in this study with the same bytes.
   */
  missing: (signal?: AbortSignal) => Promise<ManifestInstance[]>
  /**
   * The accept answer: every manifest instance not missing is listed as held. The missing bytes are
   * promised first (store.space): BEELDNET_ERR_DISK_FULL when they do not fit, and the sender retries.
   */
  accept: (signal?: AbortSignal) => Promise<AcceptAnswer>
  /**
   * Streams one instance (named by SOP Instance UID or SHA-256) to a temp file while hashing,
   * then checks it; nothing of a refused instance stays. The source is read to its end, or
   * destroyed when refused. Several instances may arrive at once.
   */
  receiveInstance: (key: string, source: AsyncIterable<Uint8Array>, signal?: AbortSignal) => Promise<ReceivedInstance>
  /** Makes the study visible in one batch and returns the signed receipt (again, for a completed transfer). */
  commit: (signal?: AbortSignal) => Promise<SignedReceipt>
  /** Ends the session (connection gone): instances in flight are dropped, verified ones kept for resume. */
  abort: (reason?: unknown) => Promise<void>
  /** Ends the transfer: everything received is dropped. With an error, the transfer is 'failed' with its code, else 'cancelled'. */
  cancel: (error?: unknown) => Promise<void>
}

export interface IncomingTransfers extends EventEmitter<TransferEvents> {
  /** Creates the incoming directory and drops leftovers of transfers that no longer exist. */
  start: () => Promise<void>
  /** Aborts open sessions (verified instances are kept). */
  stop: () => Promise<void>
  /**
   * Opens (or resumes) the session for an offer from `peerId`, the authenticated remote peer, of
   * institution `ura` as the directory lists it (when given, a manifest naming another sender URA
   * is _SIGNER_MISMATCH). Verifies the manifest (BEELDNET_ERR_SCHEMA, _SIGNER_MISMATCH, _MANIFEST_FORGED) and refuses an
   * offer for another URA (_WRONG_DESTINATION), another manifest under a known transfer id
   * (_TRANSFER_CONFLICT), a cancelled or failed transfer (_TRANSFER_STATE) and a transfer with
   * a session still open (_TRANSFER_BUSY, retry later). Call it once the offer is accepted.
   */
  open: (offer: unknown, options: { peerId: string, ura?: string, signal?: AbortSignal }) => Promise<ReceiveSession>
  get: (peerId: string, transferId: string) => Promise<IncomingRecord | undefined>
  list: () => Promise<IncomingRecord[]>
  /** Ends a transfer with or without an open session (the sender cancelled, say). */
  cancel: (peerId: string, transferId: string, error?: unknown) => Promise<void>
  /** verified instances made durable so far, and in how many groups (one directory fsync and one synced write each) */
  durability: () => { groups: number, items: number, largestGroup: number }
  /** Drops unfinished transfers without a session that were not touched for `maxAgeMs`; returns them. */
  expire: (maxAgeMs: number, signal?: AbortSignal) => Promise<IncomingRecord[]>
}

class DefaultIncomingTransfers extends EventEmitter<TransferEvents> implements IncomingTransfers {
  readonly store: StudyStore
  readonly transfers: TransferStore
  readonly identity: { peerId: string, privateKey: NodeSigner }
  readonly clock: Clock
  private readonly uraOf: () => string
  readonly dir: string
  readonly progressIntervalMs: number
  private readonly sessions = new Map<string, Session>()
  /** makes verified instances durable in groups (keep-verified.ts) */
  readonly keeping: VerifiedKeeper
  /** keys being opened: a second open for the same transfer is refused, not raced */
  private readonly opening = new Set<string>()

  constructor (components: IncomingTransfersComponents, init: IncomingTransfersInit) {
    super()
    this.store = components.store
    this.transfers = components.transfers
    this.keeping = createVerifiedKeeper(components.transfers)
    this.identity = components.identity
    this.clock = components.clock ?? systemClock
    const ura = init.ura
    this.uraOf = typeof ura === 'string' ? () => ura : ura
    this.dir = init.dir ?? join(components.store.blobs.dir, 'incoming')
    this.progressIntervalMs = init.progressIntervalMs ?? 500
  }

  durability (): { groups: number, items: number, largestGroup: number } {
    return { ...this.keeping.stats }
  }

  async start (): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    const live = new Set((await this.transfers.listIncoming())
      .filter((r) => r.state === 'receiving' || r.state === 'committing')
      .map((r) => dirName(r.peerId, r.transferId)))
    // A directory without an unfinished transfer is what a crash in the middle of a cancel or commit left.
    for (const name of await readdir(this.dir)) {
      if (!live.has(name)) await rm(join(this.dir, name), { recursive: true, force: true })
    }
  }

  async stop (): Promise<void> {
    await Promise.all([...this.sessions.values()].map(async (s) => s.abort(new Error('the node is stopping'))))
  }

  async open (offer: unknown, options: { peerId: string, ura?: string, signal?: AbortSignal }): Promise<ReceiveSession> {
    const { manifest, hash, envelope } = verifyManifest(offer, { peerId: options.peerId })
    const { transferId } = manifest
    // The signature proves the node, not the institution it claims: without this check any admitted
    // node could file a study here as sent by another hospital (the record's senderUra, the audit trail).
    if (options.ura !== undefined && manifest.sender.ura !== options.ura) {
      throw new SignerMismatchError('manifest', `${options.peerId} of URA ${manifest.sender.ura}`, `${options.peerId} of URA ${options.ura}`)
    }
    if (manifest.destination.ura !== this.ura) throw new WrongDestinationError(transferId, manifest.destination.ura, this.ura)
    const k = sessionKey(options.peerId, transferId)
    if (this.sessions.has(k) || this.opening.has(k)) throw new TransferBusyError(transferId)
    this.opening.add(k)
    try {
      let record = await this.transfers.getIncoming(options.peerId, transferId)
      if (record === undefined) {
        record = newRecord(manifest, hash, options.peerId, new Date(this.clock.now()))
        // Recorded before the hold is placed: a crash in between leaves a release with nothing to release.
        await this.transfers.createIncoming(record, envelope)
        await this.store.hold(manifest.study.studyInstanceUID, record.holder!, `incoming transfer ${transferId} from ${options.peerId}`)
          .catch((err: unknown) => { if (!(err instanceof StudyNotFoundError)) throw err })
        this.emit('state', record)
      } else {
        if (record.manifestHash !== hash) throw new TransferConflictError(transferId)
        if (record.state === 'cancelled' || record.state === 'failed') throw new TransferStateError(transferId, record.state, 'resume')
        if (record.state === 'committing') {
          // The node stopped in the middle of a commit: the store holds the study whole or not at all; receive again.
          record = await this.transfers.updateIncoming(options.peerId, transferId, (r) => ({ ...r, state: 'receiving' }))
        }
      }
      options.signal?.throwIfAborted()
      const verified = await this.reconcile(record)
      const session = new Session(this, manifest, hash, record, verified)
      this.sessions.set(k, session)
      return session
    } finally {
      this.opening.delete(k)
    }
  }

  /** Verified instances whose file is still in place; files nobody recorded (a crash before the record) go. */
  private async reconcile (record: IncomingRecord): Promise<Map<string, VerifiedInstance>> {
    const verified = await this.transfers.verifiedOf(record.peerId, record.transferId)
    if (record.state === 'complete') return verified
    const dir = join(this.dir, dirName(record.peerId, record.transferId))
    const files = new Set(await readdir(dir).catch(() => [] as string[]))
    for (const name of files) if (!verified.has(name)) await rm(join(dir, name), { force: true })
    // Recorded but gone: moved into the store by a commit that crashed before completing the record,
    // or removed by hand. Either way not ours to commit; missing() finds it in the store or asks again.
    const gone = [...verified.keys()].filter((sha) => !files.has(sha))
    if (gone.length > 0) {
      await this.transfers.removeVerified(record.peerId, record.transferId, gone)
      for (const sha of gone) verified.delete(sha)
    }
    return verified
  }

  async get (peerId: string, transferId: string): Promise<IncomingRecord | undefined> {
    return this.transfers.getIncoming(peerId, transferId)
  }

  async list (): Promise<IncomingRecord[]> {
    return this.transfers.listIncoming()
  }

  async cancel (peerId: string, transferId: string, error?: unknown): Promise<void> {
    const session = this.sessions.get(sessionKey(peerId, transferId))
    if (session !== undefined) {
      await session.cancel(error)
      return
    }
    const record = await this.transfers.getIncoming(peerId, transferId)
    if (record === undefined) throw new TransferNotFoundError(transferId)
    await this.discard(record, error)
  }

  async expire (maxAgeMs: number, signal?: AbortSignal): Promise<IncomingRecord[]> {
    const cutoff = new Date(this.clock.now() - maxAgeMs).toISOString()
    const expired: IncomingRecord[] = []
    for (const record of await this.transfers.listIncoming()) {
      signal?.throwIfAborted()
      if (record.state !== 'receiving' && record.state !== 'committing') continue
      if (record.updatedAt >= cutoff || this.sessions.has(sessionKey(record.peerId, record.transferId))) continue
      expired.push(await this.discard(record, new TransferExpiredError(record.transferId)))
    }
    return expired
  }

  /** @internal ends a transfer: its files, verified records and hold go; the record stays as history. */
  async discard (record: IncomingRecord, error?: unknown): Promise<IncomingRecord> {
    if (record.state === 'complete') throw new TransferStateError(record.transferId, record.state, 'cancel')
    const failed = error !== undefined && !(error instanceof TransferCancelledError)
    const state: IncomingState = failed ? 'failed' : 'cancelled'
    const now = new Date(this.clock.now())
    const next = await this.transfers.updateIncoming(record.peerId, record.transferId, (r) => ({
      ...r,
      state,
      updatedAt: now.toISOString(),
      ...(error === undefined ? {} : { lastError: errorRecord(error, now) })
    }))
    await this.transfers.removeVerified(record.peerId, record.transferId)
    await rm(join(this.dir, dirName(record.peerId, record.transferId)), { recursive: true, force: true })
    if (record.holder !== undefined) await this.store.release(record.studyInstanceUID, record.holder)
    this.emit('state', next)
    if (failed) this.emit('transfer-failed', { ...refOf(next), state, error: next.lastError! })
    return next
  }

  /** @internal */
  get ura (): string { return this.uraOf() }

  forget (session: Session): void {
    const k = sessionKey(session.peerId, session.transferId)
    if (this.sessions.get(k) === session) this.sessions.delete(k)
  }
}

class Session implements ReceiveSession {
  readonly transferId: string
  readonly peerId: string
  readonly manifest: Manifest
  readonly manifestHash: string
  record: IncomingRecord
  private readonly owner: DefaultIncomingTransfers
  private readonly bySop = new Map<string, ManifestInstance>()
  private readonly bySha = new Map<string, ManifestInstance>()
  private readonly verified: Map<string, VerifiedInstance>
  /** already in the store with the same bytes, as found by the last missing() */
  private readonly held = new Set<string>()
  private checked = false
  private readonly inflight = new Map<string, Promise<ReceivedInstance>>()
  /** headers parsed in this session; instances verified by an earlier one are parsed again at commit */
  private readonly headers = new Map<string, InstanceHeader>()
  private readonly controller = new AbortController()
  private closed = false
  private readonly dir: string
  private dirMade = false
  private readonly meter: ProgressMeter
  private readonly throttle: () => boolean
  /** the missing bytes, promised by the store's disk space from accept() until the session ends */
  private reservation: Reservation | undefined

  constructor (owner: DefaultIncomingTransfers, manifest: Manifest, manifestHash: string, record: IncomingRecord, verified: Map<string, VerifiedInstance>) {
    this.owner = owner
    this.manifest = manifest
    this.manifestHash = manifestHash
    this.transferId = manifest.transferId
    this.peerId = record.peerId
    this.record = record
    this.verified = verified
    for (const i of manifest.instances) {
      this.bySop.set(i.sopInstanceUID, i)
      this.bySha.set(i.sha256, i)
    }
    this.dir = join(owner.dir, dirName(this.peerId, this.transferId))
    this.meter = createProgressMeter(owner.clock.now, { instancesTotal: record.totals.instances, bytesTotal: record.totals.bytes })
    this.throttle = createThrottle(owner.clock.now, owner.progressIntervalMs)
    for (const v of verified.values()) this.meter.markDone(v.sha256, v.size)
  }

  private get studyInstanceUID (): string {
    return this.manifest.study.studyInstanceUID
  }

  async missing (signal?: AbortSignal): Promise<ManifestInstance[]> {
    if (this.record.state === 'complete') return []
    this.assertOpen('list missing instances')
    const studyKnown = await this.owner.store.index.getStudy(this.studyInstanceUID) !== undefined
    this.held.clear()
    const out: ManifestInstance[] = []
    for (const entry of this.manifest.instances) {
      signal?.throwIfAborted()
      if (this.verified.has(entry.sha256)) continue
      if (studyKnown && await this.isHeld(entry)) {
        this.held.add(entry.sha256)
        this.meter.markDone(entry.sha256, entry.size)
        continue
      }
      out.push(entry)
    }
    this.checked = true
    await this.saveProgress()
    return reportsFirst(out)
  }

  async accept (signal?: AbortSignal): Promise<AcceptAnswer> {
    const missingInstances = await this.missing(signal)
    const bytes = missingInstances.reduce((n, i) => n + i.size, 0)
    this.reservation?.release()
    this.reservation = undefined
    try {
      this.reservation = await this.owner.store.space.reserve(bytes, `transfer ${this.transferId} (${missingInstances.length} instances to come)`)
    } catch (err) {
      await this.noteError(err)
      throw err
    }
    // Closed while we waited (the node stopping): nothing will be written for this promise.
    if (this.closed) this.reservation.release()
    const missing = new Set(missingInstances.map((i) => i.sha256))
    return acceptAnswer(this.transferId, this.manifestHash, this.manifest.instances.filter((i) => !missing.has(i.sha256)).map((i) => i.sha256))
  }

  /** In this study already, under the same UIDs, with the same bytes, and the file is there. */
  private async isHeld (entry: ManifestInstance): Promise<boolean> {
    const location = await this.owner.store.index.getSopLocation(entry.sopInstanceUID)
    return location !== undefined &&
      location.sha256 === entry.sha256 &&
      location.studyInstanceUID === this.studyInstanceUID &&
      location.seriesInstanceUID === entry.seriesInstanceUID &&
      await this.owner.store.blobs.has(entry.sha256)
  }

  async receiveInstance (key: string, source: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<ReceivedInstance> {
    try {
      this.assertOpen('receive instances')
      const entry = this.bySop.get(key) ?? this.bySha.get(key)
      if (entry === undefined) throw new InstanceNotInManifestError(this.transferId, key)
      if (!this.checked) await this.missing(signal)
      if (this.verified.has(entry.sha256) || this.held.has(entry.sha256) || this.inflight.has(entry.sha256)) {
        throw new InstanceNotRequestedError(this.transferId, entry.sopInstanceUID)
      }
      const work = this.receive(entry, source, signal)
      this.inflight.set(entry.sha256, work)
      try {
        return await work
      } finally {
        this.inflight.delete(entry.sha256)
      }
    } catch (err) {
      destroyIfStream(source)
      await this.noteError(err)
      throw err
    }
  }

  private async receive (entry: ManifestInstance, source: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<ReceivedInstance> {
    const aborted = signal === undefined ? this.controller.signal : AbortSignal.any([this.controller.signal, signal])
    const streamed = { bytes: 0 }
    let blob: StagedBlob
    try {
      blob = await this.owner.store.blobs.stage(this.limited(entry, source, streamed), aborted)
    } catch (err) {
      this.meter.resetPartial(streamed.bytes)
      throw err
    }
    let header: InstanceHeader
    try {
      if (blob.size < entry.size) throw new InstanceTruncatedError(entry.sopInstanceUID, entry.size, blob.size)
      if (blob.sha256 !== entry.sha256) throw new InstanceHashError(entry.sopInstanceUID)
      header = readInstanceHeader(blob.tmpPath)
      this.checkHeader(entry, header)
      aborted.throwIfAborted()
      await this.makeDir()
    } catch (err) {
      await this.owner.store.blobs.discard(blob)
      this.meter.resetPartial(streamed.bytes)
      throw err
    }
    const verified = { sha256: entry.sha256, sopInstanceUID: entry.sopInstanceUID, size: entry.size }
    try {
      // Renamed in, the directory synced and the record written together with the other instances
      // finishing now (of this transfer and others): one directory fsync and one synced write a group.
      await this.owner.keeping.submit({ tmpPath: blob.tmpPath, dir: this.dir, peerId: this.peerId, transferId: this.transferId, instance: verified })
    } catch (err) {
      await this.owner.store.blobs.discard(blob)
      this.meter.resetPartial(streamed.bytes)
      throw err
    }
    this.verified.set(entry.sha256, verified)
    this.reservation?.written(entry.size)
    this.headers.set(entry.sha256, header)
    this.meter.markDone(entry.sha256, entry.size)
    await this.saveProgress()
    this.progress(false)
    if (entry.report) await this.maybeReportArrived()
    return { ...verified, remaining: this.record.totals.instances - this.verified.size - this.held.size }
  }

  /** The source's chunks, counted as progress; reading stops the moment they exceed the declared size. */
  private async * limited (entry: ManifestInstance, source: AsyncIterable<Uint8Array>, streamed: { bytes: number }): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      if (streamed.bytes + chunk.byteLength > entry.size) throw new InstanceOverrunError(entry.sopInstanceUID, entry.size)
      streamed.bytes += chunk.byteLength
      this.meter.addBytes(chunk.byteLength)
      this.progress(false)
      yield chunk
    }
  }

  private checkHeader (entry: ManifestInstance, header: InstanceHeader): void {
    const uid = entry.sopInstanceUID
    if (header.sopInstanceUID !== uid) throw new InstanceHeaderMismatchError(uid, `SOP Instance UID (${header.sopInstanceUID})`)
    if (header.sopClassUID !== entry.sopClassUID) throw new InstanceHeaderMismatchError(uid, 'SOP Class UID')
    if (header.seriesInstanceUID !== entry.seriesInstanceUID) throw new InstanceHeaderMismatchError(uid, 'Series Instance UID')
    if (header.studyInstanceUID !== this.studyInstanceUID) throw new InstanceHeaderMismatchError(uid, 'Study Instance UID')
    // The receiving hospital files the study under the patient the manifest showed: it must be the file's.
    const p = this.manifest.study.patient
    if (header.patient.id !== p.id || header.patient.issuer !== p.issuer) throw new InstanceHeaderMismatchError(uid, 'patient')
  }

  async commit (signal?: AbortSignal): Promise<SignedReceipt> {
    if (this.record.state === 'complete' && this.record.receipt !== undefined) {
      // Committed in an earlier session whose receipt did not reach the sender: the same receipt again.
      this.closed = true
      this.owner.forget(this)
      return this.record.receipt
    }
    this.assertOpen('commit')
    if (this.inflight.size > 0) throw new TransferStateError(this.transferId, 'receiving', 'commit while instances are arriving')
    const staged: Staged[] = []
    const gone: string[] = []
    let missing = 0
    for (const entry of this.manifest.instances) {
      signal?.throwIfAborted()
      const path = join(this.dir, entry.sha256)
      if (this.verified.has(entry.sha256) && await pathExists(path)) {
        const header = this.headers.get(entry.sha256) ?? readInstanceHeader(path)
        staged.push({ header, blob: { tmpPath: path, sha256: entry.sha256, size: entry.size } })
      } else if (await this.isHeld(entry)) {
        this.held.add(entry.sha256)
      } else {
        if (this.verified.delete(entry.sha256)) gone.push(entry.sha256)
        missing++
      }
    }
    if (gone.length > 0) await this.owner.transfers.removeVerified(this.peerId, this.transferId, gone)
    if (missing > 0) throw new TransferIncompleteError(this.transferId, missing)
    await this.setState('committing')
    try {
      // Every instance here matched its manifest hash; copies of instances held follow store.duplicates.
      await this.owner.store.commitWhole(this.studyInstanceUID, staged, `peer ${this.peerId}, transfer ${this.transferId}`)
    } catch (err) {
      if (err instanceof InstanceConflictError || err instanceof PatientMismatchError) {
        // What is stored contradicts the offer: no later attempt can commit it.
        await this.cancel(err)
      } else {
        // A failed index write removes the files it had placed: those must be asked for again.
        for (const { blob } of staged) {
          if (!await pathExists(blob.tmpPath) && this.verified.delete(blob.sha256)) await this.owner.transfers.removeVerified(this.peerId, this.transferId, [blob.sha256])
        }
        this.checked = false
        await this.setState('receiving', err)
      }
      throw err
    }
    const now = new Date(this.owner.clock.now())
    const receipt = await signReceipt({
      type: 'beeldnet/push-receipt',
      transferId: this.transferId,
      manifestHash: this.manifestHash,
      receiver: { ura: this.owner.ura, peerId: this.owner.identity.peerId },
      studyInstanceUID: this.studyInstanceUID,
      instances: this.manifest.instances.map((i) => i.sha256),
      committed: now.toISOString()
    }, this.owner.identity.privateKey)
    for (const i of this.manifest.instances) this.meter.markDone(i.sha256, i.size)
    this.record = await this.owner.transfers.updateIncoming(this.peerId, this.transferId, (r) => ({
      ...r,
      state: 'complete',
      receipt,
      updatedAt: now.toISOString(),
      completedAt: now.toISOString(),
      done: { instances: r.totals.instances, bytes: r.totals.bytes }
    }))
    await this.owner.transfers.removeVerified(this.peerId, this.transferId)
    await rm(this.dir, { recursive: true, force: true })
    if (this.record.holder !== undefined) await this.owner.store.release(this.studyInstanceUID, this.record.holder)
    this.closed = true
    this.reservation?.release()
    this.owner.forget(this)
    this.owner.emit('state', this.record)
    this.progress(true)
    this.owner.emit('study-complete', { ...refOf(this.record), receipt })
    return receipt
  }

  async abort (reason?: unknown): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.controller.abort(reason ?? new Error('the session was aborted'))
    await Promise.allSettled(this.inflight.values())
    this.reservation?.release()
    this.owner.forget(this)
  }

  async cancel (error?: unknown): Promise<void> {
    if (this.record.state === 'complete') throw new TransferStateError(this.transferId, this.record.state, 'cancel')
    await this.abort(error)
    const current = await this.owner.transfers.getIncoming(this.peerId, this.transferId)
    if (current !== undefined && current.state !== 'cancelled' && current.state !== 'failed') this.record = await this.owner.discard(current, error)
  }

  private assertOpen (operation: string): void {
    if (this.record.state === 'complete') throw new TransferStateError(this.transferId, 'complete', operation)
    if (!this.closed) return
    // Aborted while the transfer goes on (the node stopping, the connection gone): the sender may retry.
    if (this.record.state === 'receiving') throw new SessionClosedError(this.transferId, `${(this.controller.signal.reason as Error | undefined)?.message ?? 'aborted'}; cannot ${operation}`)
    throw new TransferStateError(this.transferId, this.record.state, operation)
  }

  private async makeDir (): Promise<void> {
    if (this.dirMade) return
    await mkdir(this.dir, { recursive: true })
    await fsyncPath(this.owner.dir)
    this.dirMade = true
  }

  private async setState (state: IncomingState, error?: unknown): Promise<void> {
    const now = new Date(this.owner.clock.now())
    this.record = await this.owner.transfers.updateIncoming(this.peerId, this.transferId, (r) => ({
      ...r,
      state,
      updatedAt: now.toISOString(),
      ...(error === undefined ? {} : { lastError: errorRecord(error, now) })
    }))
    this.owner.emit('state', this.record)
  }

  private async saveProgress (): Promise<void> {
    const snap = this.meter.snapshot()
    const now = new Date(this.owner.clock.now()).toISOString()
    this.record = await this.owner.transfers.updateIncoming(this.peerId, this.transferId, (r) => (
      { ...r, updatedAt: now, done: { instances: snap.instancesDone, bytes: snap.bytesDone } }
    ), { sync: false })
  }

  private async noteError (err: unknown): Promise<void> {
    if (this.record.state === 'complete') return
    const now = new Date(this.owner.clock.now())
    this.record = await this.owner.transfers.updateIncoming(this.peerId, this.transferId, (r) => (
      { ...r, updatedAt: now.toISOString(), lastError: errorRecord(err, now) }
    ), { sync: false }).catch(() => this.record)
  }

  private progress (force: boolean): void {
    if (!force && !this.throttle()) return
    this.owner.emit('progress', {
      ...refOf(this.record),
      state: this.record.state,
      ...this.meter.snapshot(),
      at: new Date(this.owner.clock.now()).toISOString()
    })
  }

  private async maybeReportArrived (): Promise<void> {
    if (this.record.reportsNotified) return
    const reports = this.manifest.instances.filter((i) => i.report)
    if (!reports.every((i) => this.verified.has(i.sha256) || this.held.has(i.sha256))) return
    this.record = await this.owner.transfers.updateIncoming(this.peerId, this.transferId, (r) => ({ ...r, reportsNotified: true }))
    this.owner.emit('report-arrived', { ...refOf(this.record), reports: reports.map((i) => i.sopInstanceUID) })
  }
}

export function createIncomingTransfers (components: IncomingTransfersComponents, init: IncomingTransfersInit): IncomingTransfers {
  return new DefaultIncomingTransfers(components, init)
}

function newRecord (manifest: Manifest, manifestHash: string, peerId: string, now: Date): IncomingRecord {
  const at = now.toISOString()
  return {
    direction: 'incoming',
    transferId: manifest.transferId,
    peerId,
    senderUra: manifest.sender.ura,
    department: manifest.destination.department,
    studyInstanceUID: manifest.study.studyInstanceUID,
    manifestHash,
    state: 'receiving',
    createdAt: at,
    updatedAt: at,
    totals: transferTotals(manifest),
    done: { instances: 0, bytes: 0 },
    reportsNotified: false,
    holder: `incoming transfer ${manifest.transferId} from ${peerId}`
  }
}

function refOf (record: IncomingRecord): { direction: 'incoming', transferId: string, peerId: string, studyInstanceUID: string } {
  return { direction: 'incoming', transferId: record.transferId, peerId: record.peerId, studyInstanceUID: record.studyInstanceUID }
}

function sessionKey (peerId: string, transferId: string): string {
  return `${peerId}\x00${transferId}`
}

/** Fixed-length and free of anything the sender chose as text: names the transfer's directory. */
function dirName (peerId: string, transferId: string): string {
  return createHash('sha256').update(sessionKey(peerId, transferId)).digest('hex').slice(0, 32)
}
