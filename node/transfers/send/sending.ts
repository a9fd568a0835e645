import type { Logger } from 'pino'
import type { NodeIdentity } from '../../../protocol/identity.ts'
import { PROTOCOLS } from '../../../protocol/p2p/ids.ts'
import type { AuditPerson, AuditSink } from '../../audit/audit-log.ts'
import { auditPatient, NODE_ITSELF } from '../../audit/events.ts'
import { PeerNotAllowedError } from '../../p2p/errors.ts'
import type { DataChannel } from '../../p2p/data-channel.ts'
import type { P2PHost } from '../../p2p/host.ts'
import type { FramedStreamInit } from '../../p2p/stream-io.ts'
import type { StudyStore } from '../../store/study-store.ts'
import { BulkSendError, DeidentificationRequiredError } from '../errors.ts'
import type { StudyComplete } from '../events.ts'
import { auditPushEnd } from '../receipt-audit.ts'
import { nodeOfInstitution } from '../institution-nodes.ts'
import { buildSignedManifest } from '../manifest.ts'
import { FINAL_OUTGOING_STATES, type OutgoingRecord, type TransferStore } from '../transfer-store.ts'
import { pushOverStream } from './push-sender.ts'
import { createTransferQueue, type TransferQueue, type TransferQueueInit } from './queue.ts'

/*
 * Sending studies: a push is checked (institution, department, the bulk rule), its manifest signed,
 * audited and queued; the persistent queue delivers it over the push protocol and retries it until
 * the receiver's signed receipt is back, which is audited too. Transfers to a peer the directory no
 * longer admits end at once; a peer seen again gets its waiting transfers without their backoff.
 */

export interface SendRequest {
  studyInstanceUID: string
  to: { ura: string, department: string }
  note?: string
  reason: string
  /** the pull this push answers */
  requestId?: string
  /** a particular node of the institution (default: one of its active nodes, connected ones first) */
  peerId?: string
  /** who sends, for the audit trail (default: this node) */
  actor?: AuditPerson
  /** who answers for it: the clinician whose pull this push answers */
  responsible?: AuditPerson
  /** a person confirmed sending more of one patient's studies than the bulk limit allows */
  confirmBulk?: boolean
  /** the study is a de-identified copy of `from` (deidentify/deidentified-push.ts): the only kind a teaching or research institution gets */
  deidentified?: { from: string, profile: string }
}

type DirectoryEvents = { on: (event: 'update', listener: () => void) => unknown, off: (event: 'update', listener: () => void) => unknown }

export interface SendingComponents {
  host: Pick<P2PHost, 'dialProtocol' | 'gating' | 'connectedPeers' | 'institutionOf' | 'remoteHostOf' | 'on' | 'off'>
  /** the TLS data channel for instance bytes (without it, they go over the push stream) */
  dataChannel?: Pick<DataChannel, 'connect'>
  /** directory updates: transfers to peers no longer admitted end at once, connected or not */
  directory?: DirectoryEvents
  store: Pick<StudyStore, 'index' | 'getStudyRecord' | 'openInstance' | 'getStudy'>
  identity: NodeIdentity
  logger: Logger
  transfers: TransferStore
  audit?: AuditSink
  /** this institution, from the directory (throws when this node is not listed) */
  self: () => { ura: string }
}

export interface SendingInit {
  queue?: TransferQueueInit
  stream: FramedStreamInit
  /** studies of one patient to one institution per day before a send needs confirmBulk (default 3) */
  bulkPatientLimit?: number
  /** offer zstd wire compression for uncompressed pixel data (default false) */
  compression?: boolean
}

export interface Sending {
  readonly queue: TransferQueue
  start (): Promise<void>
  stop (): Promise<void>
  send (request: SendRequest, options?: { signal?: AbortSignal }): Promise<OutgoingRecord>
}

class DefaultSending implements Sending {
  readonly queue: TransferQueue
  private readonly components: SendingComponents
  private readonly bulkPatientLimit: number
  private readonly onDisallowed = (event: { peerId: string, reason: string }): void => { void this.failTransfersTo(event.peerId, event.reason) }
  private readonly onDirectoryUpdate = (): void => { void this.failTransfersToDisallowed() }
  // A connection with a peer, whoever dialled: transfers to it waiting for a retry need not wait out their backoff.
  private readonly onPeerConnected = (event: { peerId: string }): void => {
    this.queue.peerSeen(event.peerId).catch((err: unknown) => { this.components.logger.error({ err, peerId: event.peerId }, 'retrying transfers to a peer seen again failed') })
  }

  private readonly onDelivered = (e: StudyComplete): void => { void auditPushEnd(this.components, e, { event: 'receipt', outcome: 'kept' }) }

  constructor (components: SendingComponents, init: SendingInit) {
    this.components = components
    this.bulkPatientLimit = init.bulkPatientLimit ?? 3
    const { host, store } = components
    this.queue = createTransferQueue({
      transfers: components.transfers,
      logger: components.logger,
      deliver: async (job, options) => {
        options.onProgress({ kind: 'state', state: 'connecting' })
        const stream = await host.dialProtocol(job.record.peerId, PROTOCOLS.push, { signal: options.signal })
        return pushOverStream({ store, logger: components.logger, dataChannel: components.dataChannel, remoteHostOf: (peerId) => host.remoteHostOf(peerId), compression: init.compression }, stream, job, options, init.stream)
      }
    }, init.queue)
  }

  async start (): Promise<void> {
    await this.queue.start()
    this.components.host.on('peer-disallowed', this.onDisallowed)
    this.components.host.on('peer-connected', this.onPeerConnected)
    this.components.directory?.on('update', this.onDirectoryUpdate)
    this.queue.on('study-complete', this.onDelivered)
  }

  async stop (): Promise<void> {
    this.components.host.off('peer-disallowed', this.onDisallowed)
    this.components.host.off('peer-connected', this.onPeerConnected)
    this.components.directory?.off('update', this.onDirectoryUpdate)
    this.queue.off('study-complete', this.onDelivered)
    await this.queue.stop()
  }

  async send (request: SendRequest, { signal }: { signal?: AbortSignal } = {}): Promise<OutgoingRecord> {
    const { host, store, identity, audit, logger } = this.components
    const self = this.components.self()
    // The institution and department are checked whether or not a particular node was named.
    const chosen = nodeOfInstitution(host, identity.peerId, request.to.ura, request.to.department)
    const peerId = request.peerId ?? chosen
    // Whatever asks for the push (a clinician, a routing rule, an approved pull): identified studies never go there.
    if (request.deidentified === undefined && host.institutionOf(peerId)?.institution.kind === 'teaching-research') throw new DeidentificationRequiredError(request.to.ura)
    if (request.requestId === undefined && request.confirmBulk !== true) await this.checkBulk(request)
    const manifest = await buildSignedManifest({ store, signer: identity.privateKey }, request.studyInstanceUID, {
      sender: { ura: self.ura, peerId: identity.peerId },
      destination: request.to,
      reason: request.reason,
      note: request.note,
      requestId: request.requestId
    }, { signal })
    if (audit !== undefined) {
      const study = await store.getStudyRecord(request.studyInstanceUID)
      await audit.record({
        event: 'send',
        outcome: 'queued',
        patient: auditPatient(study.patient),
        user: request.actor ?? NODE_ITSELF,
        ...(request.responsible === undefined ? {} : { responsible: request.responsible }),
        institution: { ura: request.to.ura, name: host.institutionOf(peerId)?.institution.name },
        studyInstanceUID: request.studyInstanceUID,
        details: { department: request.to.department, reason: request.reason, ...(request.deidentified === undefined ? {} : { deidentifiedFrom: request.deidentified.from, deidentification: `PS3.15 Annex E ${request.deidentified.profile}` }) }
      })
    }
    const record = await this.queue.enqueue({ manifest, peerId })
    logger.info({ transferId: record.transferId, study: request.studyInstanceUID, to: request.to.ura, peerId }, 'push queued')
    return record
  }

  /** A sanity rule on pushes: many studies of one patient to one institution in a day need a person to confirm. */
  private async checkBulk (request: SendRequest): Promise<void> {
    const { store } = this.components
    const study = await store.getStudyRecord(request.studyInstanceUID)
    const since = new Date(Date.now() - 86_400_000).toISOString()
    const samePatient = new Set<string>()
    for (const record of await this.queue.list()) {
      if (record.createdAt < since || record.destination.ura !== request.to.ura || record.studyInstanceUID === request.studyInstanceUID) continue
      const other = (await store.index.getStudy(record.studyInstanceUID))?.patient
      if (other !== undefined && other.id === study.patient.id && other.issuer === study.patient.issuer) samePatient.add(record.studyInstanceUID)
    }
    if (samePatient.size >= this.bulkPatientLimit) throw new BulkSendError(samePatient.size + 1, request.to.ura)
  }

  /** A peer the directory no longer admits: its queued and running transfers end with that code. */
  private async failTransfersTo (peerId: string, reason: string): Promise<void> {
    await this.failTransfers((record) => record.peerId === peerId ? reason : undefined)
  }

  /** After a directory update: also transfers waiting for a retry, to peers with no open connection. */
  private async failTransfersToDisallowed (): Promise<void> {
    await this.failTransfers((record) => {
      const decision = this.components.host.gating.check(record.peerId)
      return decision.allowed ? undefined : decision.reason
    })
  }

  private async failTransfers (refusal: (record: OutgoingRecord) => string | undefined): Promise<void> {
    for (const record of await this.queue.list()) {
      if (FINAL_OUTGOING_STATES.has(record.state)) continue
      const reason = refusal(record)
      if (reason === undefined) continue
      const peerId = record.peerId
      this.components.logger.warn({ transferId: record.transferId, peerId, reason }, 'peer no longer admitted: transfer stopped')
      await this.queue.cancel(record.transferId, new PeerNotAllowedError(peerId, reason)).catch(() => {})
    }
  }
}

export function createSending (components: SendingComponents, init: SendingInit): Sending {
  return new DefaultSending(components, init)
}
