import type { Logger } from 'pino'
import type { DimseDestination } from '../config/config.ts'
import { sendToDestination } from '../dimse/retrieve.ts'
import type { StudyStore } from '../store/study-store.ts'
import { coerceHeader, type LocalIdentity } from './coerce.ts'
import { UnknownDestinationError } from './errors.ts'
import type { PatientLookup } from './patient-lookup.ts'
import type { AuditSink } from '../audit/audit-log.ts'
import { auditPatient, NODE_ITSELF } from '../audit/events.ts'

/*
 * "Send to our PACS": a received study, reconciled to this hospital's patient (found by BSN, or
 * given by a person), goes to the PACS with C-STORE. A study whose patient is not found is held
 * for a person, never guessed; the hold also keeps it from the retention sweep.
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

  async export (request: ExportRequest): Promise<ExportOutcome> {
    const destination = this.destinations.get(request.destination)
    if (destination === undefined) throw new UnknownDestinationError(request.destination)
    const entries = await this.store.getStudy(request.studyInstanceUID)
    let local = request.local
    if (local === undefined) {
      const bsn = entries.study.patient.bsn
      local = bsn === undefined ? undefined : await this.lookup.findByBsn(bsn)
      if (local === undefined) {
        const reason = bsn === undefined
          ? 'the study carries no BSN: enter the local patient id'
          : `no local patient found for BSN ${bsn}: enter the local patient id`
        await this.audit?.record({ event: 'reconciliation', outcome: 'held', patient: auditPatient(entries.study.patient), user: NODE_ITSELF, studyInstanceUID: request.studyInstanceUID, details: { reason } })
        await this.store.hold(request.studyInstanceUID, RECONCILIATION_HOLDER, reason)
        this.logger.info({ study: request.studyInstanceUID, reason }, 'held for reconciliation')
        return { status: 'held', reason }
      }
    }
    const identity = local
    await this.audit?.record({
      event: 'export-to-pacs',
      outcome: `sending to ${destination.aeTitle}`,
      patient: auditPatient(entries.study.patient),
      user: NODE_ITSELF,
      studyInstanceUID: request.studyInstanceUID,
      details: { localPatientId: identity.patientId, localIssuer: identity.issuer, matched: request.local === undefined ? 'by BSN' : 'entered by a person', source: request.source }
    })
    const done = await sendToDestination(this.store, entries.instances, destination, this.callingAeTitle, () => {},
      (path) => coerceHeader(path, { local: identity, source: request.source }))
    if (done.failed === 0) await this.store.release(request.studyInstanceUID, RECONCILIATION_HOLDER)
    this.logger.info({ study: request.studyInstanceUID, destination: destination.aeTitle, patientId: identity.patientId, completed: done.completed, failed: done.failed, reasons: done.reasons }, 'sent to the PACS')
    return { status: 'sent', local: identity, completed: done.completed, failed: done.failed, reasons: done.reasons }
  }
}
