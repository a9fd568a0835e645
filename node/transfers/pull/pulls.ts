import type { Logger } from 'pino'
import { newTransferId } from '../../../protocol/exchange/common.ts'
import type { PullAnswer, PullRequest } from '../../../protocol/exchange/pull.ts'
import { requestSignatureProblem, signRequest } from '../../../protocol/exchange/request-signature.ts'
import type { Requester } from '../../../protocol/exchange/requester.ts'
import { isBeeldnetError } from '../../../protocol/errors.ts'
import type { NodeIdentity } from '../../../protocol/identity.ts'
import { PROTOCOLS } from '../../../protocol/p2p/ids.ts'
import type { AuditPerson, AuditSink } from '../../audit/audit-log.ts'
import { auditClinician, auditPatient, describePerson } from '../../audit/events.ts'
import type { P2PHost, RemotePeer } from '../../p2p/host.ts'
import type { FramedStreamInit } from '../../p2p/stream-io.ts'
import { ApprovalDecidedError, ApprovalNotFoundError } from '../../policy/errors.ts'
import { createPullPolicy, type PullPolicy, type PullRule } from '../../policy/pull-policy.ts'
import type { ApprovalRecord, PolicyStore, PullMade } from '../../policy/policy-store.ts'
import type { StudyStore } from '../../store/study-store.ts'
import { UnknownDepartmentError } from '../errors.ts'
import { nodeOfInstitution } from '../institution-nodes.ts'
import type { OutgoingRecord } from '../transfer-store.ts'
import type { SendRequest } from '../send/sending.ts'
import { createPullDecisionHandler, createPullHandler, pullOverStream, sendPullDecision } from './pull-protocol.ts'

/*
 * Pulls both ways. Asking: a signed request to a peer, kept with what it decided (now or later).
 * Answering: the source's policy decides; an allowed pull is pushed back to the node that asked; a
 * queued one waits for a person here, whose decision the requester is told. Every request and
 * decision is in the audit trail of the side that made it.
 */

export interface PullsComponents {
  host: Pick<P2PHost, 'handle' | 'unhandle' | 'dialProtocol' | 'gating' | 'connectedPeers' | 'institutionOf'>
  store: Pick<StudyStore, 'index'>
  identity: NodeIdentity
  logger: Logger
  audit?: AuditSink
  /** consent records and the approval queue (optional: without it nobody has consented, and queued pulls are not kept) */
  policyStore?: PolicyStore
  /** pushes a study: how an allowed pull is answered */
  send: (request: SendRequest) => Promise<OutgoingRecord>
  /** this institution, from the directory (throws when this node is not listed) */
  self: () => { ura: string, departments: Array<{ code: string }> }
  /** this institution's URA, when the directory lists this node */
  ownUra: () => string | undefined
  /** a queued pull of ours was decided at the source */
  onDecided: (decided: PullMade) => void
}

export interface PullsInit {
  /** who may pull studies from this node (default []: nobody) */
  pullRules?: PullRule[]
  stream: FramedStreamInit
}

export interface PullRequestInput { studyInstanceUID: string, requester: Requester, deliverTo: string }

export interface Pulls {
  start (): Promise<void>
  stop (): Promise<void>
  pull (ura: string, request: PullRequestInput, options?: { signal?: AbortSignal }): Promise<PullAnswer>
  /** the pulls this node asked of others, newest first, with what was decided */
  pullsMade (): Promise<PullMade[]>
  approvePull (requestId: string, by: AuditPerson): Promise<ApprovalRecord>
  refusePull (requestId: string, by: AuditPerson, reason: string): Promise<ApprovalRecord>
}

class DefaultPulls implements Pulls {
  private readonly components: PullsComponents
  private readonly stream: FramedStreamInit
  private readonly policy: PullPolicy

  constructor (components: PullsComponents, init: PullsInit) {
    this.components = components
    this.stream = init.stream
    this.policy = createPullPolicy({ rules: init.pullRules, consent: components.policyStore })
  }

  async start (): Promise<void> {
    const { host } = this.components
    await host.handle(PROTOCOLS.pull, createPullHandler(async (request, peer) => this.decidePull(request, peer), this.stream))
    await host.handle(PROTOCOLS.pullDecision, createPullDecisionHandler(async (answer, peer) => this.pullDecided(answer, peer), this.stream))
  }

  async stop (): Promise<void> {
    for (const protocol of [PROTOCOLS.pull, PROTOCOLS.pullDecision]) await this.components.host.unhandle(protocol).catch(() => {})
  }

  async pull (ura: string, request: PullRequestInput, { signal }: { signal?: AbortSignal } = {}): Promise<PullAnswer> {
    const { host, identity, policyStore } = this.components
    const self = this.components.self()
    if (!self.departments.some((d) => d.code === request.deliverTo)) throw new UnknownDepartmentError(self.ura, request.deliverTo, self.departments.map((d) => d.code))
    const peerId = nodeOfInstitution(host, identity.peerId, ura)
    const stream = await host.dialProtocol(peerId, PROTOCOLS.pull, { signal })
    const pull: PullRequest = await signRequest({ type: 'beeldnet/pull' as const, requestId: newTransferId(), ...request }, ura, identity.privateKey)
    const answer = await pullOverStream(stream, pull, { ...this.stream, signal })
    // Kept, so a decision made later at the source (a queued pull) finds the request it answers.
    await policyStore?.addPullMade({
      requestId: pull.requestId,
      at: { ura, name: host.institutionOf(peerId)?.institution.name },
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
    return this.components.policyStore?.listPullsMade() ?? []
  }

  /** The requester's side of a later decision: only the hospital asked may decide, and only a queued pull. */
  private async pullDecided (answer: PullAnswer, peer: RemotePeer): Promise<void> {
    const { policyStore, audit, logger } = this.components
    const made = await policyStore?.getPullMade(answer.requestId)
    if (made === undefined || made.at.ura !== peer.ura || made.decision !== 'queued' || answer.decision === 'queued') {
      logger.warn({ from: peer.ura, requestId: answer.requestId, decision: answer.decision }, 'a pull decision for no pull queued at that hospital: ignored')
      return
    }
    const decided: PullMade = { ...made, decision: answer.decision, reason: answer.reason, ...(answer.code === undefined ? {} : { code: answer.code }), decidedAt: new Date().toISOString() }
    await policyStore!.addPullMade(decided)
    await audit?.record({
      event: 'pull-decision',
      outcome: answer.decision,
      user: { system: `${peer.name} (URA ${peer.ura})` },
      responsible: auditClinician(made.requester),
      institution: { ura: peer.ura, name: peer.name },
      studyInstanceUID: made.studyInstanceUID,
      details: { requestId: made.requestId, reason: answer.reason }
    })
    this.components.onDecided(decided)
  }

  /** Tells the hospital that asked how its queued pull was decided; if it cannot be reached, the decision stands all the same. */
  private async tellRequester (decided: ApprovalRecord): Promise<void> {
    const answer: PullAnswer = { type: 'beeldnet/pull-answer', requestId: decided.requestId, decision: decided.state === 'approved' ? 'allowed' : 'refused', reason: decided.decision ?? decided.state }
    try {
      const stream = await this.components.host.dialProtocol(decided.from.peerId, PROTOCOLS.pullDecision)
      await sendPullDecision(stream, answer, this.stream)
    } catch (err) {
      this.components.logger.warn({ err, to: decided.from.ura, requestId: decided.requestId }, 'could not tell the requesting hospital the decision on its pull')
    }
  }

  /** The source's side of a pull: policy first; an allowed one is pushed back to the node that asked. */
  private async decidePull (request: PullRequest, peer: RemotePeer): Promise<PullAnswer> {
    const { store, audit, policyStore, logger } = this.components
    const answer = (decision: PullAnswer['decision'], reason: string, code?: string): PullAnswer =>
      ({ type: 'beeldnet/pull-answer', requestId: request.requestId, decision, reason, ...(code === undefined ? {} : { code }) })
    const problem = requestSignatureProblem(request, peer, this.components.ownUra())
    if (problem !== undefined) return answer('refused', problem, 'BEELDNET_ERR_REQUEST_SIGNATURE')
    const study = await store.index.getStudy(request.studyInstanceUID)
    if (study === undefined) return answer('refused', `no study ${request.studyInstanceUID} at this hospital`, 'BEELDNET_ERR_STUDY_NOT_FOUND')
    const decided = await this.policy.decide({ ura: peer.ura, name: peer.name }, request, { bsn: study.patient.bsn })
    await audit?.record({
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
      if (policyStore === undefined) return answer('refused', 'this hospital keeps no approval queue', 'BEELDNET_ERR_PULL_NOT_ALLOWED')
      await policyStore.addApproval({
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
    logger.info({ from: peer.ura, clinician: request.requester.clinician.uzi, purpose: request.requester.purpose, decision: decided.decision }, 'pull request')
    if (decided.decision !== 'allowed') return answer(decided.decision, decided.reason, decided.code)
    try {
      await this.components.send({
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

  async approvePull (requestId: string, by: AuditPerson): Promise<ApprovalRecord> {
    const store = this.requirePolicyStore()
    const waiting = await store.getApproval(requestId)
    if (waiting.state !== 'waiting') throw new ApprovalDecidedError(waiting)
    const { requester } = waiting
    // Sent first: a push that cannot be queued (the requester no longer admitted) leaves it waiting.
    const record = await this.components.send({
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
    if (this.components.policyStore === undefined) throw new ApprovalNotFoundError('(this node keeps no approval queue)')
    return this.components.policyStore
  }

  private async auditDecision (decided: ApprovalRecord, by: AuditPerson): Promise<void> {
    await this.components.audit?.record({
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
}

export function createPulls (components: PullsComponents, init: PullsInit): Pulls {
  return new DefaultPulls(components, init)
}
