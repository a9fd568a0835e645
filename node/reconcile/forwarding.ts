import type { Logger } from 'pino'
import type { NodeConfig } from '../config/config.ts'
import { UnknownDestinationError } from './errors.ts'
import { PacsExporter, RECONCILIATION_HOLDER, type ExportOutcome } from './pacs-export.ts'
import type { LocalIdentity } from './coerce.ts'
import type { PatientLookup } from './patient-lookup.ts'
import type { AuditSink } from '../audit/audit-log.ts'
import type { StudyRecord } from '../store/records.ts'
import type { StudyStore } from '../store/study-store.ts'

/*
 * Received studies into the local PACS: on request (API, web app, CLI) or, with pacs.forward
 * auto, as soon as a study from a peer is complete. Either way reconciled first, or held.
 */

export interface PacsForwarding {
  /** sends (or holds) one study; `destination` defaults to pacs.destination */
  send (studyInstanceUID: string, options?: { destination?: string, local?: LocalIdentity }): Promise<ExportOutcome>
  /** a study from a peer is complete: forwarded at once when pacs.forward is auto */
  studyArrived (studyInstanceUID: string, from: string): void
  /** studies waiting for a person to enter the local patient, with why */
  held (): Promise<HeldStudy[]>
}

export interface HeldStudy {
  studyInstanceUID: string
  patient: StudyRecord['patient']
  date: string
  description: string
  reason: string
  since: string
}

export function createPacsForwarding (deps: { store: StudyStore, lookup: PatientLookup, logger: Logger, audit?: AuditSink, sourceOf: (studyInstanceUID: string) => Promise<string> },
  config: { dimse: NodeConfig['dimse'], pacs: NodeConfig['pacs'] }): PacsForwarding {
  const exporter = new PacsExporter(deps, { destinations: config.dimse.destinations, aeTitle: config.dimse.aeTitle })
  const logger = deps.logger.child({ component: 'pacs-forwarding' })
  const send = async (studyInstanceUID: string, options: { destination?: string, local?: LocalIdentity, source?: string } = {}): Promise<ExportOutcome> => {
    const destination = options.destination ?? config.pacs.destination
    if (destination === '') throw new UnknownDestinationError('(none: pacs.destination is not set)')
    return exporter.export({ studyInstanceUID, destination, local: options.local, source: options.source ?? await deps.sourceOf(studyInstanceUID) })
  }
  return {
    send,
    async held () {
      const held: HeldStudy[] = []
      for (const study of await deps.store.findStudies()) {
        const hold = await deps.store.index.getHold(study.studyInstanceUID, RECONCILIATION_HOLDER)
        if (hold !== undefined) held.push({ studyInstanceUID: study.studyInstanceUID, patient: study.patient, date: study.date, description: study.description, reason: hold.reason, since: hold.since })
      }
      return held
    },
    studyArrived (studyInstanceUID, from) {
      if (config.pacs.forward !== 'auto' || config.pacs.destination === '') return
      send(studyInstanceUID, { source: from }).catch((err: unknown) => { logger.warn({ err, study: studyInstanceUID }, 'forwarding to the PACS failed') })
    }
  }
}
