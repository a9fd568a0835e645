import type { Logger } from 'pino'
import type { DimseDestination } from '../config/config.ts'
import { sendToDestination, type InstanceSent } from '../dimse/retrieve.ts'
import type { StudyStore } from '../store/study-store.ts'
import { coerceHeader, type LocalIdentity } from './coerce.ts'
import { UnknownDestinationError } from './errors.ts'
import type { PatientLookup } from './patient-lookup.ts'
import type { AuditPerson, AuditSink } from '../audit/audit-log.ts'
import { auditPatient, NODE_ITSELF } from '../audit/events.ts'

/*
 * "Send to our PACS": a received study, reconciled to this hospital's patient (found by BSN, or
 * given by a person), goes to the PACS with C-STORE. A study whose patient is not found is held
 * for a person, never guessed; the hold also keeps it from the retention sweep. Reconciling and
 * sending are two steps: the export queue (export-queue.ts) reconciles when asked and sends,
 * and sends again after a failure, from what it recorded.
 */

export const RECONCILIATION_HOLDER = 'reconciliation'

export type ExportOutcome =
  | { status: 'sent', local: LocalIdentity, completed: number, failed: number, reasons: string[] }
  | { status: 'held', reason: string }

export interface ExportRequest {
  studyInstanceUID: string
  /** the AE title of a configured destination */
  destination: string
  /** the local patient as a person entered it; without it the lookup decides */
  local?: LocalIdentity
  /** where the study came from, kept as Source of Previous Values */
  source: string
}

export type Reconciled =
  | { status: 'reconciled', local: LocalIdentity, matched: 'by BSN' | 'entered by a person' }
  | { status: 'held', reason: string }

/** One sending of (part of) a reconciled study. */
export interface SendJob {
  studyInstanceUID: string
  destination: string
  local: LocalIdentity
  source: string
  /** SOP Instance UIDs to send; absent: the whole study */
  only?: ReadonlySet<string>
}

/** What the PACS did with each instance of one sending. */
export interface SendResult {
  /** instances in this sending */
  total: number
  completed: number
  /** failed with a status another attempt may not get (out of resources, a lost association) */
  retryable: string[]
  /** refused with a status no retry changes (SOP class not supported, cannot understand) */
  refused: string[]
  /** not answered because the sending was aborted (a cancel, a stop): still to send, whether the PACS kept the one in flight is not known */
  cancelled: string[]
  /** no instance got an answer: the association itself failed */
  unreachable: boolean
  /** in words, for the log and the export's last error */
  reasons: string[]
}

/**
 * C-STORE failures no retry fixes (PS3.4 B.2.3, PS3.7 C): refused SOP class (0x0122), not
 * authorised (0x0124), data set does not match SOP class (A9xx), cannot understand (Cxxx).
 */
function isFinalStatus (status: number): boolean {
  return status === 0x0122 || status === 0x0124 || (status & 0xFF00) === 0xA900 || (status & 0xF000) === 0xC000
}

/**
 * Which instances failed and how, from sendToDestination's result per instance. An instance of the
 * sending it does not account for is retryable: it goes again, which a PACS takes as a re-send.
 */
export function classifySend (sops: readonly string[], sent: readonly InstanceSent[], reasons: string[]): SendResult {
  const outcomes = new Map(sent.map((i) => [i.sopInstanceUID, i]))
  const result: SendResult = { total: sops.length, completed: 0, retryable: [], refused: [], cancelled: [], unreachable: false, reasons }
  for (const sop of sops) {
    const instance = outcomes.get(sop)
    if (instance?.outcome === 'stored') result.completed++
    else if (instance?.outcome === 'cancelled') result.cancelled.push(sop)
    else if (instance !== undefined && instance.outcome !== 'lost' && isFinalStatus(instance.status)) result.refused.push(sop)
    else result.retryable.push(sop)
  }
  // The association failed before the PACS answered any instance: it could not be reached.
  result.unreachable = sent.some((i) => i.outcome === 'lost') && !sent.some((i) => i.outcome === 'stored' || i.outcome === 'failed')
  return result
}

/** Deflated and big endian datasets: their header cannot be coerced on the way (coerce.ts), so they are not sent at all. */
const UNRECONCILABLE: ReadonlyMap<string, string> = new Map([
  ['1.2.840.10008.1.2.1.99', 'deflated'],
  ['1.2.840.10008.1.2.2', 'big endian']
])

export class PacsExporter {
  private readonly store: StudyStore
  private readonly lookup: PatientLookup
  private readonly logger: Logger
  private readonly destinations: Map<string, DimseDestination>
  private readonly callingAeTitle: string

  private readonly audit: AuditSink | undefined

  constructor (deps: { store: StudyStore, lookup: PatientLookup, logger: Logger, audit?: AuditSink }, config: { destinations: DimseDestination[], aeTitle: string }) {
    this.store = deps.store
    this.audit = deps.audit
    this.lookup = deps.lookup
    this.logger = deps.logger.child({ component: 'pacs-export' })
    this.destinations = new Map(config.destinations.map((d) => [d.aeTitle, d]))
    this.callingAeTitle = config.aeTitle
  }

  /** The configured destination by AE title; an unknown one is refused (and final in the queue). */
  destination (aeTitle: string): DimseDestination {
    const destination = this.destinations.get(aeTitle)
    if (destination === undefined) throw new UnknownDestinationError(aeTitle)
    return destination
  }

  /** The local patient of a study (entered, or found by BSN), or the study held for a person with why. */
  async reconcile (request: ExportRequest): Promise<Reconciled> {
    this.destination(request.destination)
    const study = await this.store.getStudyRecord(request.studyInstanceUID)
    if (request.local !== undefined) return { status: 'reconciled', local: request.local, matched: 'entered by a person' }
    const bsn = study.patient.bsn
    const local = bsn === undefined ? undefined : await this.lookup.findByBsn(bsn)
    if (local !== undefined) return { status: 'reconciled', local, matched: 'by BSN' }
    const reason = bsn === undefined
      ? 'the study carries no BSN: enter the local patient id'
      : `no local patient found for BSN ${bsn}: enter the local patient id`
    await this.audit?.record({ event: 'reconciliation', outcome: 'held', patient: auditPatient(study.patient), user: NODE_ITSELF, studyInstanceUID: request.studyInstanceUID, details: { reason } })
    await this.store.hold(request.studyInstanceUID, RECONCILIATION_HOLDER, reason)
    this.logger.info({ study: request.studyInstanceUID, reason }, 'held for reconciliation')
    return { status: 'held', reason }
  }

  /**
   * One C-STORE association with the study's (remaining) instances, each header coerced on the way;
   * `signal` ends it at once (the instances not answered by then are `cancelled`).
   */
  async send (job: SendJob, options: { signal?: AbortSignal } = {}): Promise<SendResult> {
    const destination = this.destination(job.destination)
    const entries = await this.store.getStudy(job.studyInstanceUID)
    const wanted = job.only === undefined ? entries.instances : entries.instances.filter((i) => job.only!.has(i.sopInstanceUID))
    // Sent, a failed coercion would abort the association and fail every instance after it, each attempt again.
    const instances = wanted.filter((i) => !UNRECONCILABLE.has(i.transferSyntaxUID))
    const unsendable = wanted.filter((i) => UNRECONCILABLE.has(i.transferSyntaxUID))
    const done = await sendToDestination(this.store, instances, destination, this.callingAeTitle, () => {}, {
      transform: (path) => coerceHeader(path, { local: job.local, source: job.source }),
      ...(options.signal === undefined ? {} : { signal: options.signal })
    })
    const result = classifySend(instances.map((i) => i.sopInstanceUID), done.instances ?? [], done.reasons)
    for (const i of unsendable) {
      result.refused.push(i.sopInstanceUID)
      result.reasons.push(`${i.sopInstanceUID}: not sent: reconciling a ${UNRECONCILABLE.get(i.transferSyntaxUID)!} dataset is not supported (convert it, e.g. dcmconv +te)`)
    }
    result.total = wanted.length
    this.logger.info({ study: job.studyInstanceUID, destination: destination.aeTitle, patientId: job.local.patientId, completed: done.completed, failed: done.failed, cancelled: result.cancelled.length, reasons: done.reasons },
      result.cancelled.length > 0 ? 'sending to the PACS aborted' : 'sent to the PACS')
    return result
  }

  /** Reconciles and sends at once, one attempt (the queue is what retries): held, or sent with counts. */
  async export (request: ExportRequest): Promise<ExportOutcome> {
    const reconciled = await this.reconcile(request)
    if (reconciled.status === 'held') return reconciled
    const result = await this.send({ ...request, local: reconciled.local })
    const failed = result.retryable.length + result.refused.length
    if (failed === 0) {
      await this.store.release(request.studyInstanceUID, RECONCILIATION_HOLDER)
      await this.recordSent(request, reconciled, result.completed)
    }
    return { status: 'sent', local: reconciled.local, completed: result.completed, failed, reasons: result.reasons }
  }

  /** The one audit record of a study that reached the PACS. */
  async recordSent (request: { studyInstanceUID: string, destination: string, source: string, exportId?: string, attempts?: number }, reconciled: { local: LocalIdentity, matched: string }, instances: number): Promise<void> {
    const study = await this.store.getStudyRecord(request.studyInstanceUID)
    await this.audit?.record({
      event: 'export-to-pacs',
      outcome: `sent to ${request.destination}`,
      patient: auditPatient(study.patient),
      user: NODE_ITSELF,
      studyInstanceUID: request.studyInstanceUID,
      details: {
        localPatientId: reconciled.local.patientId,
        localIssuer: reconciled.local.issuer,
        matched: reconciled.matched,
        source: request.source,
        instances: String(instances),
        ...(request.exportId === undefined ? {} : { exportId: request.exportId }),
        ...(request.attempts === undefined ? {} : { attempts: String(request.attempts) })
      }
    })
  }

  /**
   * The one audit record of an export cancelled (by `by`, default the node), with the instances
   * that had reached the PACS by then (the study may be gone).
   */
  async recordCancelled (request: { studyInstanceUID: string, destination: string, source: string, exportId: string, attempts: number }, local: LocalIdentity, instances: number, by?: AuditPerson): Promise<void> {
    const study = await this.store.getStudyRecord(request.studyInstanceUID).catch(() => undefined)
    await this.audit?.record({
      event: 'export-to-pacs',
      outcome: 'cancelled',
      patient: study === undefined ? { id: local.patientId, issuer: local.issuer } : auditPatient(study.patient),
      user: by ?? NODE_ITSELF,
      studyInstanceUID: request.studyInstanceUID,
      details: { destination: request.destination, localPatientId: local.patientId, source: request.source, exportId: request.exportId, attempts: String(request.attempts), instances: String(instances) }
    })
  }

  /** The one audit record of an export that failed for good (the study may be gone by then). */
  async recordFailed (request: { studyInstanceUID: string, destination: string, source: string, exportId: string, attempts: number }, local: LocalIdentity, code: string, message: string): Promise<void> {
    const study = await this.store.getStudyRecord(request.studyInstanceUID).catch(() => undefined)
    await this.audit?.record({
      event: 'export-to-pacs',
      outcome: `failed: ${code}`,
      patient: study === undefined ? { id: local.patientId, issuer: local.issuer } : auditPatient(study.patient),
      user: NODE_ITSELF,
      studyInstanceUID: request.studyInstanceUID,
      details: { destination: request.destination, localPatientId: local.patientId, source: request.source, exportId: request.exportId, attempts: String(request.attempts), reason: message }
    })
  }
}
