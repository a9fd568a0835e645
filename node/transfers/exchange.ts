import { EventEmitter } from 'node:events'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { newTransferId } from '../../protocol/exchange/common.ts'
import { requestSignatureProblem, signRequest } from '../../protocol/exchange/request-signature.ts'
import type { PullAnswer, PullRequest } from '../../protocol/exchange/pull.ts'
import type { QueryCriteria, QueryResponse } from '../../protocol/exchange/query.ts'
import type { Requester } from '../../protocol/exchange/requester.ts'
import type { NodeIdentity } from '../../protocol/identity.ts'
import { PROTOCOLS } from '../../protocol/p2p/ids.ts'
import type { Institution } from '../../protocol/registry/documents.ts'
import { isBeeldnetError } from '../../protocol/errors.ts'
import { PeerNotAllowedError } from '../p2p/errors.ts'
import type { P2PHost, RemotePeer } from '../p2p/host.ts'
import { createPullDecisionHandler, createPullHandler, pullOverStream, sendPullDecision } from '../p2p/pull-protocol.ts'
import { createPushHandler, pushOverStream } from '../p2p/push-protocol.ts'
import { createQueryHandler, queryOverStream } from '../p2p/query-protocol.ts'
import type { FramedStreamInit } from '../p2p/stream-io.ts'
import { createPullPolicy, type PullPolicy, type PullRule } from '../policy/pull-policy.ts'
import type { StudyStore } from '../store/study-store.ts'
import { BulkSendError, NotEnrolledError, UnknownDepartmentError, UnknownInstitutionError } from './errors.ts'
import type { ExchangeEvents, TransferEvents } from './events.ts'
import { createIncomingTransfers, type IncomingTransfers } from './incoming.ts'
import { buildSignedManifest } from './manifest.ts'
import { createTransferQueue, type TransferQueue, type TransferQueueInit } from './queue.ts'
import type { AuditPerson, AuditSink } from '../audit/audit-log.ts'
import { ApprovalDecidedError, ApprovalNotFoundError } from '../policy/errors.ts'
import type { ApprovalRecord, PolicyStore, PullMade } from '../policy/policy-store.ts'
import { auditClinician, auditPatient, describePerson, NODE_ITSELF } from '../audit/events.ts'
import { createLifecycle, type Lifecycle } from '../lifecycle.ts'
import { createTransferStore, FINAL_OUTGOING_STATES, type IncomingRecord, type OutgoingRecord, type TransferStore } from './transfer-store.ts'

/*
 * The node's side of the exchange: it joins the libp2p host to the transfer core. It serves push,
 * query and pull to admitted peers, and sends, queries and pulls on behalf of this node's users.
 * Outgoing pushes go through the persistent queue; incoming ones through receive sessions. Every
 * transfer event of both directions is re-emitted here for the API, the CLI and metrics.
 */

export interface ExchangeComponents {
  host: P2PHost
  /** directory updates: transfers to peers no longer admitted end at once, connected or not */
  directory?: { on: (event: 'update', listener: () => void) => unknown, off: (event: 'update', listener: () => void) => unknown }
  store: StudyStore
  identity: NodeIdentity
  logger: Logger
  /** the NEN 7513 trail: queries and pull requests answered here, pushes queued (optional) */
  audit?: AuditSink
  /** consent records and the approval queue of pulls (optional: without it nobody has consented, and queued pulls are not kept) */
  policyStore?: PolicyStore
}

export interface ExchangeInit {
  /** the node's data directory: transfers live in <dataDir>/transfers */
  dataDir: string
  /** concurrency, retries and backoff of outgoing transfers (defaults in queue.ts) */
  queue?: TransferQueueInit
  /** who may pull studies from this node (default []: nobody) */
  pullRules?: PullRule[]
  /** studies of one patient to one institution per day before a send needs confirmBulk (default 3) */
  bulkPatientLimit?: number
  /** framing limits and stall timeout of exchange streams (defaults in stream-io.ts) */
  stream?: FramedStreamInit
}

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
}

export interface Exchange extends EventEmitter<ExchangeEvents> {
  readonly transfers: TransferStore
  readonly queue: TransferQueue
  readonly incoming: IncomingTransfers
  start (): Promise<void>
  stop (): Promise<void>
  /** the institution this node speaks for, from the directory */
  self (): { ura: string, name: string, departments: Institution['departments'] }
  send (request: SendRequest, signal?: AbortSignal): Promise<OutgoingRecord>
  query (ura: string, criteria: QueryCriteria, requester: Requester, signal?: AbortSignal): Promise<QueryResponse>
  pull (ura: string, request: { studyInstanceUID: string, requester: Requester, deliverTo: string }, signal?: AbortSignal): Promise<PullAnswer>
  list (): Promise<{ outgoing: OutgoingRecord[], incoming: IncomingRecord[] }>
  /** the pulls this node asked of others, newest first, with what was decided */
  pullsMade (): Promise<PullMade[]>
  /** a queued pull approved by `by` here: the study is pushed to the requester */
  approvePull (requestId: string, by: AuditPerson): Promise<ApprovalRecord>
  /** a queued pull refused by `by` here, with the reason */
  refusePull (requestId: string, by: AuditPerson, reason: string): Promise<ApprovalRecord>
}

const FORWARDED_EVENTS = ['state', 'progress', 'report-arrived', 'study-complete', 'transfer-failed'] as const

class DefaultExchange extends EventEmitter<ExchangeEvents> implements Exchange {
  readonly transfers: TransferStore
  readonly queue: TransferQueue
  readonly incoming: IncomingTransfers
  private readonly host: P2PHost
  private readonly store: StudyStore
  private readonly identity: NodeIdentity
  private readonly logger: Logger
  private readonly streamInit: FramedStreamInit
  private readonly policy: PullPolicy
  private readonly directory: ExchangeComponents['directory']
  private readonly audit: AuditSink | undefined
  private readonly policyStore: PolicyStore | undefined
  private readonly bulkPatientLimit: number
  private readonly parts: Lifecycle
  private readonly onDisallowed = (event: { peerId: string, reason: string }): void => { void this.failTransfersTo(event.peerId, event.reason) }
  private readonly onDirectoryUpdate = (): void => { void this.failTransfersToDisallowed() }
  // A connection with a peer, whoever dialled: transfers to it waiting for a retry need not wait out their backoff.
  private readonly onPeerConnected = (event: { peerId: string }): void => {
    this.queue.peerSeen(event.peerId).catch((err: unknown) => { this.logger.error({ err, peerId: event.peerId }, 'retrying transfers to a peer seen again failed') })
  }

  constructor (components: ExchangeComponents, init: ExchangeInit) {
    super()
    this.host = components.host
    this.directory = components.directory
    this.store = components.store
    this.identity = components.identity
    this.logger = components.logger.child({ component: 'exchange' })
    this.audit = components.audit
    this.policyStore = components.policyStore
    this.bulkPatientLimit = init.bulkPatientLimit ?? 3
    this.streamInit = init.stream ?? {}
    this.policy = createPullPolicy({ rules: init.pullRules, consent: components.policyStore })
    this.transfers = createTransferStore({ dir: join(init.dataDir, 'transfers') })
    this.incoming = createIncomingTransfers({ store: this.store, transfers: this.transfers, identity: this.identity }, { ura: () => this.self().ura })
    this.queue = createTransferQueue({
      transfers: this.transfers,
      logger: this.logger,
      deliver: async (job, options) => {
        options.onProgress({ kind: 'state', state: 'connecting' })
        const stream = await this.host.dialProtocol(job.record.peerId, PROTOCOLS.push, options.signal)
        return pushOverStream({ store: this.store }, stream, job, options, this.streamInit)
      }
    }, init.queue)
    for (const source of [this.queue, this.incoming] as EventEmitter<TransferEvents>[]) {
      for (const name of FORWARDED_EVENTS) source.on(name, (...args: unknown[]) => { (this.emit as (n: string, ...a: unknown[]) => boolean)(name, ...args) })
    }
    // One lifecycle inside too: a queue that cannot resume must not leave the transfer database open.
    this.parts = createLifecycle({ logger: this.logger }, {
      parts: [
        { name: 'transfer store', part: this.transfers },
        { name: 'incoming transfers', part: this.incoming },
        { name: 'transfer queue', part: this.queue },
        { name: 'protocol handlers', part: { start: async () => { await this.serve().catch(async (err: unknown) => { await this.unserve(); throw err }) }, stop: async () => { await this.unserve() } } }
      ]
    })
  }

  async start (): Promise<void> {
    await this.parts.start()
  }

  async stop (): Promise<void> {
    await this.parts.stop()
  }

  /** Push, query and pull served to peers, and the events that end transfers to peers no longer admitted. */
  private async serve (): Promise<void> {
    await this.host.handle(PROTOCOLS.push, createPushHandler({ incoming: this.incoming, logger: this.logger }, this.streamInit))
    await this.host.handle(PROTOCOLS.query, createQueryHandler({ store: this.store, logger: this.logger, audit: this.audit, ownUra: () => this.ownUra() }, this.streamInit))
    await this.host.handle(PROTOCOLS.pull, createPullHandler(async (request, peer) => this.decidePull(request, peer), this.streamInit))
    await this.host.handle(PROTOCOLS.pullDecision, createPullDecisionHandler(async (answer, peer) => this.pullDecided(answer, peer), this.streamInit))
    this.host.on('peer-disallowed', this.onDisallowed)
    this.host.on('peer-connected', this.onPeerConnected)
    this.directory?.on('update', this.onDirectoryUpdate)
  }

  private async unserve (): Promise<void> {
    this.host.off('peer-disallowed', this.onDisallowed)
    this.host.off('peer-connected', this.onPeerConnected)
    this.directory?.off('update', this.onDirectoryUpdate)
    for (const protocol of [PROTOCOLS.push, PROTOCOLS.query, PROTOCOLS.pull, PROTOCOLS.pullDecision]) await this.host.unhandle(protocol).catch(() => {})
  }

  self (): { ura: string, name: string, departments: Institution['departments'] } {
    const entry = this.host.institutionOf(this.identity.peerId)
    if (entry === undefined) throw new NotEnrolledError(this.identity.peerId)
    return { ura: entry.ura, name: entry.institution.name, departments: entry.institution.departments }
  }

  /** An admitted node of institution `ura`: a connected one if there is one. */
  private nodeOf (ura: string, department?: string): string {
    const nodes = this.host.gating.allowedPeers().filter((p) => p.ura === ura && p.peerId !== this.identity.peerId)
    if (nodes.length === 0) throw new UnknownInstitutionError(ura)
    const institution = nodes[0]!.institution
    if (department !== undefined && !institution.departments.some((d) => d.code === department)) {
      throw new UnknownDepartmentError(ura, department, institution.departments.map((d) => d.code))
    }
    const connected = new Set(this.host.connectedPeers().map((p) => p.peerId))
    return (nodes.find((n) => connected.has(n.peerId)) ?? nodes[0]!).peerId
  }

  async send (request: SendRequest, signal?: AbortSignal): Promise<OutgoingRecord> {
    const self = this.self()
    // The institution and department are checked whether or not a particular node was named.
    const chosen = this.nodeOf(request.to.ura, request.to.department)
    const peerId = request.peerId ?? chosen
    if (request.requestId === undefined && request.confirmBulk !== true) await this.checkBulk(request)
    const manifest = await buildSignedManifest({ store: this.store, signer: this.identity.privateKey }, request.studyInstanceUID, {
      sender: { ura: self.ura, peerId: this.identity.peerId },
      destination: request.to,
      reason: request.reason,
      note: request.note,
      requestId: request.requestId
    }, signal)
    if (this.audit !== undefined) {
      const study = await this.store.getStudyRecord(request.studyInstanceUID)
      await this.audit.record({
        event: 'send',
        outcome: 'queued',
        patient: auditPatient(study.patient),
        user: request.actor ?? NODE_ITSELF,
        ...(request.responsible === undefined ? {} : { responsible: request.responsible }),
        institution: { ura: request.to.ura, name: this.host.institutionOf(peerId)?.institution.name },
        studyInstanceUID: request.studyInstanceUID,
        details: { department: request.to.department, reason: request.reason }
      })
    }
    const record = await this.queue.enqueue({ manifest, peerId })
    this.logger.info({ transferId: record.transferId, study: request.studyInstanceUID, to: request.to.ura, peerId }, 'push queued')
    return record
  }

  async query (ura: string, criteria: QueryCriteria, requester: Requester, signal?: AbortSignal): Promise<QueryResponse> {
    this.self()
    const request = await signRequest({ type: 'beeldnet/query' as const, requester, criteria }, ura, this.identity.privateKey)
    const stream = await this.host.dialProtocol(this.nodeOf(ura), PROTOCOLS.query, signal)
    return queryOverStream(stream, request, signal, this.streamInit)
  }

  async pull (ura: string, request: { studyInstanceUID: string, requester: Requester, deliverTo: string }, signal?: AbortSignal): Promise<PullAnswer> {
    const self = this.self()
    if (!self.departments.some((d) => d.code === request.deliverTo)) throw new UnknownDepartmentError(self.ura, request.deliverTo, self.departments.map((d) => d.code))
    const peerId = this.nodeOf(ura)
    const stream = await this.host.dialProtocol(peerId, PROTOCOLS.pull, signal)
    const pull: PullRequest = await signRequest({ type: 'beeldnet/pull' as const, requestId: newTransferId(), ...request }, ura, this.identity.privateKey)
    const answer = await pullOverStream(stream, pull, signal, this.streamInit)
    // Kept, so a decision made later at the source (a queued pull) finds the request it answers.
    await this.policyStore?.addPullMade({
      requestId: pull.requestId,
      at: { ura, name: this.host.institutionOf(peerId)?.institution.name },
      studyInstanceUID: pull.studyInstanceUID,
      requester: pull.requester,
      deliverTo: pull.deliverTo,
      decision: answer.decision,
      reason: answer.reason,
      ...(answer.code === undefined ? {} : { code: answer.code }),
      askedAt: new Date().toISOString()
    })
    return answer
  }

  async pullsMade (): Promise<PullMade[]> {
    return this.policyStore?.listPullsMade() ?? []
  }

  /** The requester's side of a later decision: only the hospital asked may decide, and only a queued pull. */
  private async pullDecided (answer: PullAnswer, peer: RemotePeer): Promise<void> {
    const made = await this.policyStore?.getPullMade(answer.requestId)
    if (made === undefined || made.at.ura !== peer.ura || made.decision !== 'queued' || answer.decision === 'queued') {
      this.logger.warn({ from: peer.ura, requestId: answer.requestId, decision: answer.decision }, 'a pull decision for no pull queued at that hospital: ignored')
      return
    }
    const decided: PullMade = { ...made, decision: answer.decision, reason: answer.reason, ...(answer.code === undefined ? {} : { code: answer.code }), decidedAt: new Date().toISOString() }
    await this.policyStore!.addPullMade(decided)
    await this.audit?.record({
      event: 'pull-decision',
      outcome: answer.decision,
      user: { system: `${peer.name} (URA ${peer.ura})` },
      responsible: auditClinician(made.requester),
      institution: { ura: peer.ura, name: peer.name },
      studyInstanceUID: made.studyInstanceUID,
      details: { requestId: made.requestId, reason: answer.reason }
    })
    this.emit('pull-decided', decided)
  }

  /** Tells the hospital that asked how its queued pull was decided; if it cannot be reached, the decision stands all the same. */
  private async tellRequester (decided: ApprovalRecord): Promise<void> {
    const answer: PullAnswer = { type: 'beeldnet/pull-answer', requestId: decided.requestId, decision: decided.state === 'approved' ? 'allowed' : 'refused', reason: decided.decision ?? decided.state }
    try {
      const stream = await this.host.dialProtocol(decided.from.peerId, PROTOCOLS.pullDecision)
      await sendPullDecision(stream, answer, undefined, this.streamInit)
    } catch (err) {
      this.logger.warn({ err, to: decided.from.ura, requestId: decided.requestId }, 'could not tell the requesting hospital the decision on its pull')
    }
  }

  async list (): Promise<{ outgoing: OutgoingRecord[], incoming: IncomingRecord[] }> {
    return { outgoing: await this.queue.list(), incoming: await this.incoming.list() }
  }

  /** The source's side of a pull: policy first; an allowed one is pushed back to the node that asked. */
  private async decidePull (request: PullRequest, peer: RemotePeer): Promise<PullAnswer> {
    const answer = (decision: PullAnswer['decision'], reason: string, code?: string): PullAnswer =>
      ({ type: 'beeldnet/pull-answer', requestId: request.requestId, decision, reason, ...(code === undefined ? {} : { code }) })
    const problem = requestSignatureProblem(request, peer, this.ownUra())
    if (problem !== undefined) return answer('refused', problem, 'BEELDNET_ERR_REQUEST_SIGNATURE')
    const study = await this.store.index.getStudy(request.studyInstanceUID)
    if (study === undefined) return answer('refused', `no study ${request.studyInstanceUID} at this hospital`, 'BEELDNET_ERR_STUDY_NOT_FOUND')
    const decided = await this.policy.decide({ ura: peer.ura, name: peer.name }, request, { bsn: study.patient.bsn })
    await this.audit?.record({
      event: 'pull-request',
      outcome: decided.decision,
      patient: auditPatient(study.patient),
      user: auditClinician(request.requester),
      responsible: auditClinician(request.requester),
      institution: { ura: peer.ura, name: peer.name },
      studyInstanceUID: request.studyInstanceUID,
      details: { purpose: request.requester.purpose, reason: decided.reason, signedRequest: JSON.stringify(request) }
    })
    if (decided.decision === 'queued') {
      if (this.policyStore === undefined) return answer('refused', 'this hospital keeps no approval queue', 'BEELDNET_ERR_PULL_NOT_ALLOWED')
      await this.policyStore.addApproval({
        requestId: request.requestId,
        state: 'waiting',
        studyInstanceUID: request.studyInstanceUID,
        patient: { ...(study.patient.bsn === undefined ? {} : { bsn: study.patient.bsn }), id: study.patient.id, name: study.patient.name },
        from: { ura: peer.ura, name: peer.name, peerId: peer.peerId },
        requester: request.requester,
        deliverTo: request.deliverTo,
        reason: decided.reason,
        receivedAt: new Date().toISOString()
      })
    }
    this.logger.info({ from: peer.ura, clinician: request.requester.clinician.uzi, purpose: request.requester.purpose, decision: decided.decision }, 'pull request')
    if (decided.decision !== 'allowed') return answer(decided.decision, decided.reason, decided.code)
    try {
      await this.send({
        studyInstanceUID: request.studyInstanceUID,
        to: { ura: peer.ura, department: request.deliverTo },
        peerId: peer.peerId,
        reason: `requested by ${request.requester.clinician.name} (UZI ${request.requester.clinician.uzi}) for ${request.requester.purpose}`,
        requestId: request.requestId,
        responsible: auditClinician(request.requester)
      })
    } catch (err) {
      return answer('refused', (err as Error).message, isBeeldnetError(err) ? err.code : 'BEELDNET_ERR_INTERNAL')
    }
    return answer('allowed', decided.reason)
  }

  /** A sanity rule on pushes: many studies of one patient to one institution in a day need a person to confirm. */
  private async checkBulk (request: SendRequest): Promise<void> {
    const study = await this.store.getStudyRecord(request.studyInstanceUID)
    const since = new Date(Date.now() - 86_400_000).toISOString()
    const samePatient = new Set<string>()
    for (const record of await this.queue.list()) {
      if (record.createdAt < since || record.destination.ura !== request.to.ura || record.studyInstanceUID === request.studyInstanceUID) continue
      const other = (await this.store.index.getStudy(record.studyInstanceUID))?.patient
      if (other !== undefined && other.id === study.patient.id && other.issuer === study.patient.issuer) samePatient.add(record.studyInstanceUID)
    }
    if (samePatient.size >= this.bulkPatientLimit) throw new BulkSendError(samePatient.size + 1, request.to.ura)
  }

  /** This institution's URA, when the directory lists this node. */
  private ownUra (): string | undefined {
    return this.host.institutionOf(this.identity.peerId)?.ura
  }

  async approvePull (requestId: string, by: AuditPerson): Promise<ApprovalRecord> {
    const store = this.requirePolicyStore()
    const waiting = await store.getApproval(requestId)
    if (waiting.state !== 'waiting') throw new ApprovalDecidedError(waiting)
    const { requester } = waiting
    // Sent first: a push that cannot be queued (the requester no longer admitted) leaves it waiting.
    const record = await this.send({
      studyInstanceUID: waiting.studyInstanceUID,
      to: { ura: waiting.from.ura, department: waiting.deliverTo },
      peerId: waiting.from.peerId,
      reason: `requested by ${requester.clinician.name} (UZI ${requester.clinician.uzi}) for ${requester.purpose}; approved here`,
      requestId,
      actor: by,
      responsible: auditClinician(requester)
    })
    const decided = await store.decideApproval(requestId, 'approved', describePerson(by), `pushed as transfer ${record.transferId}`)
    await this.auditDecision(decided, by)
    await this.tellRequester(decided)
    return decided
  }

  async refusePull (requestId: string, by: AuditPerson, reason: string): Promise<ApprovalRecord> {
    const decided = await this.requirePolicyStore().decideApproval(requestId, 'refused', describePerson(by), reason)
    await this.auditDecision(decided, by)
    await this.tellRequester(decided)
    return decided
  }

  private requirePolicyStore (): PolicyStore {
    if (this.policyStore === undefined) throw new ApprovalNotFoundError('(this node keeps no approval queue)')
    return this.policyStore
  }

  private async auditDecision (decided: ApprovalRecord, by: AuditPerson): Promise<void> {
    await this.audit?.record({
      event: 'pull-decision',
      outcome: decided.state,
      patient: decided.patient,
      user: by,
      responsible: auditClinician(decided.requester),
      institution: { ura: decided.from.ura, name: decided.from.name },
      studyInstanceUID: decided.studyInstanceUID,
      details: { decision: decided.decision ?? '' }
    })
  }

  /** A peer the directory no longer admits: its queued and running transfers end with that code. */
  private async failTransfersTo (peerId: string, reason: string): Promise<void> {
    await this.failTransfers((record) => record.peerId === peerId ? reason : undefined)
  }

  /** After a directory update: also transfers waiting for a retry, to peers with no open connection. */
  private async failTransfersToDisallowed (): Promise<void> {
    await this.failTransfers((record) => {
      const decision = this.host.gating.check(record.peerId)
      return decision.allowed ? undefined : decision.reason
    })
  }

  private async failTransfers (refusal: (record: OutgoingRecord) => string | undefined): Promise<void> {
    for (const record of await this.queue.list()) {
      if (FINAL_OUTGOING_STATES.has(record.state)) continue
      const reason = refusal(record)
      if (reason === undefined) continue
      const peerId = record.peerId
      this.logger.warn({ transferId: record.transferId, peerId, reason }, 'peer no longer admitted: transfer stopped')
      await this.queue.cancel(record.transferId, new PeerNotAllowedError(peerId, reason)).catch(() => {})
    }
  }
}

export function createExchange (components: ExchangeComponents, init: ExchangeInit): Exchange {
  return new DefaultExchange(components, init)
}
