import type { Stream } from '@libp2p/interface'
import type { Logger } from 'pino'
import { MAX_QUERY_RESPONSE_BYTES, QueryRequest, QueryResponse, type QueryCriteria, type StudySummary } from '../../../protocol/exchange/query.ts'
import { requestSignatureProblem } from '../../../protocol/exchange/request-signature.ts'
import type { StudyRecord } from '../../store/records.ts'
import type { AuditSink } from '../../audit/audit-log.ts'
import { auditClinician, auditPatient } from '../../audit/events.ts'
import type { StudyStore } from '../../store/study-store.ts'
import { manifestStudy } from '../manifest.ts'
import type { RemotePeer } from '../../p2p/host.ts'
import { jsonBytes, readJsonRun, writeRun } from '../../p2p/json-run.ts'
import { adoptRemoteCode } from '../../p2p/remote-errors.ts'
import { createFramedStream, type FramedStreamInit } from '../../p2p/stream-io.ts'

/*
 * The query protocol: one request (a control frame), one answer (a run: it can list many studies).
 * The answering node searches its own index; who asked is logged (the audit issue records it
 * properly, with the clinician the request names).
 */

export function summarise (study: StudyRecord): StudySummary {
  return {
    ...manifestStudy(study),
    numberOfSeries: study.numberOfSeries,
    numberOfInstances: study.numberOfInstances,
    numberOfReports: study.numberOfReports,
    size: study.size
  }
}

/** Studies matching `criteria` in the local store, newest first, at most criteria.limit (and whether more matched). */
export async function searchStore (store: Pick<StudyStore, 'findStudies'>, criteria: QueryCriteria): Promise<{ studies: StudyRecord[], truncated: boolean }> {
  const found = await store.findStudies({
    bsn: criteria.bsn,
    patientId: criteria.patientId,
    issuer: criteria.issuer,
    dateFrom: criteria.dateFrom,
    dateTo: criteria.dateTo,
    modality: criteria.modality,
    accessionNumber: criteria.accessionNumber,
    // The birth date is checked here, so the index's limit cannot cut matches off before it.
    limit: criteria.birthDate === undefined ? criteria.limit + 1 : undefined
  })
  const matching = criteria.birthDate === undefined ? found : found.filter((s) => s.patient.birthDate === criteria.birthDate)
  return { studies: matching.slice(0, criteria.limit), truncated: matching.length > criteria.limit }
}

export interface QueryResponderComponents {
  store: Pick<StudyStore, 'findStudies'>
  logger: Logger
  /** every query answered, empty ones too, per patient found or asked for (optional) */
  audit?: AuditSink
  /** this institution's URA: a request signed for another is refused */
  ownUra: () => string | undefined
}

export function createQueryHandler (components: QueryResponderComponents, init: FramedStreamInit = {}): (stream: Stream, peer: RemotePeer) => Promise<void> {
  return async (stream, peer) => {
    const framed = createFramedStream(stream, init)
    const request = await framed.readControl(QueryRequest, 'query')
    const problem = requestSignatureProblem(request, peer, components.ownUra())
    if (problem !== undefined) {
      components.logger.warn({ from: peer.ura, peerId: peer.peerId, problem }, 'query refused: signature')
      const refusal: QueryResponse = { type: 'beeldnet/query-refused', code: 'BEELDNET_ERR_REQUEST_SIGNATURE', reason: problem }
      await writeRun(framed, jsonBytes(refusal))
      await framed.close()
      return
    }
    const { studies, truncated } = await searchStore(components.store, request.criteria)
    components.logger.info({ from: peer.ura, clinician: request.requester.clinician.uzi, purpose: request.requester.purpose, results: studies.length }, 'query answered')
    await auditQuery(components.audit, request, peer, studies)
    const answer: QueryResponse = { type: 'beeldnet/query-result', studies: studies.map(summarise), truncated }
    await writeRun(framed, jsonBytes(answer))
    await framed.close()
  }
}

/** One record per patient the answer shows; a query that found nothing is recorded with the patient it asked for. */
async function auditQuery (audit: AuditSink | undefined, request: QueryRequest, peer: RemotePeer, studies: StudyRecord[]): Promise<void> {
  if (audit === undefined) return
  const byPatient = new Map<string, StudyRecord[]>()
  for (const s of studies) byPatient.set(`${s.patient.issuer}\\${s.patient.id}`, [...(byPatient.get(`${s.patient.issuer}\\${s.patient.id}`) ?? []), s])
  const asked = request.criteria
  // The signed request is kept with the record: who asked, vouched for by the node that sent it.
  const base = { event: 'query', user: auditClinician(request.requester), responsible: auditClinician(request.requester), institution: { ura: peer.ura, name: peer.name }, details: { purpose: request.requester.purpose, signedRequest: JSON.stringify(request) } }
  if (byPatient.size === 0) {
    const patient = { ...(asked.bsn === undefined ? {} : { bsn: asked.bsn }), ...(asked.patientId === undefined ? {} : { id: asked.patientId, issuer: asked.issuer ?? '' }) }
    await audit.record({ ...base, outcome: '0 studies', patient })
    return
  }
  for (const found of byPatient.values()) {
    await audit.record({ ...base, outcome: `${found.length} ${found.length === 1 ? 'study' : 'studies'}`, patient: auditPatient(found[0]!.patient), details: { ...base.details, studies: found.map((s) => s.studyInstanceUID).join(' ') } })
  }
}

/** Asks the peer on `stream`; resolves with its answer (a result or a refusal). */
export async function queryOverStream (stream: Stream, request: QueryRequest, { signal, ...init }: FramedStreamInit & { signal?: AbortSignal } = {}): Promise<QueryResponse> {
  const framed = createFramedStream(stream, init)
  try {
    await framed.writeControl(request, signal)
    const answer = await readJsonRun(framed, MAX_QUERY_RESPONSE_BYTES, QueryResponse, 'query answer', signal)
    await framed.close(signal).catch(() => {})
    return answer
  } catch (err) {
    framed.abort(err as Error)
    throw adoptRemoteCode(err)
  }
}
