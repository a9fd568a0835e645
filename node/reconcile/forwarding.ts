import type { Logger } from 'pino'
import type { NodeConfig } from '../config/config.ts'
import type { Startable } from '../lifecycle.ts'
import type { Clock } from '../transfers/clock.ts'
import { UnknownDestinationError } from './errors.ts'
import { createExportQueue, type ExportAnswer, type ExportQueue, type ExportQueueInit } from './export-queue.ts'
import { createExportStore } from './export-store.ts'
import { PacsExporter, RECONCILIATION_HOLDER } from './pacs-export.ts'
import type { LocalIdentity } from './coerce.ts'
import type { PatientLookup } from './patient-lookup.ts'
import type { AuditSink } from '../audit/audit-log.ts'
import type { StudyRecord } from '../store/records.ts'
import type { StudyStore } from '../store/study-store.ts'

/*
 * Received studies into the local PACS: on request (API, web app, CLI) or, with pacs.forward
 * auto, as soon as a study from a peer is complete. Either way reconciled first, or held; a
 * reconciled study goes into the export queue (export-queue.ts), which sends and retries it.
 */

export interface PacsForwarding extends Startable {
  /** reconciles one study and queues its export, or holds it; `destination` defaults to pacs.destination */
  send (studyInstanceUID: string, options?: { destination?: string, local?: LocalIdentity }): Promise<ExportAnswer>
  /** a study from a peer is complete: forwarded at once when pacs.forward is auto */
  studyArrived (studyInstanceUID: string, from: string): void
  /** studies waiting for a person to enter the local patient, with why */
  held (): Promise<HeldStudy[]>
  /** the exports, queued, retrying and ended, with retry and cancel */
  readonly exports: ExportQueue
}

export interface HeldStudy {
  studyInstanceUID: string
  patient: StudyRecord['patient']
  date: string
  description: string
  reason: string
  since: string
}

export interface PacsForwardingComponents {
  store: StudyStore
  lookup: PatientLookup
  logger: Logger
  audit?: AuditSink
  sourceOf: (studyInstanceUID: string) => Promise<string>
  /** default: the system clock */
  clock?: Clock
}

export interface PacsForwardingInit {
  dimse: NodeConfig['dimse']
  pacs: NodeConfig['pacs']
  /** where the export queue's database lives, e.g. `<data-dir>/exports` */
  exportsDir: string
  /** backoff and attempts of the export queue (tests make them short) */
  queue?: ExportQueueInit
}

/** Forwarding with its export queue: start opens the queue's database and resumes what was queued. */
export function createPacsForwarding (deps: PacsForwardingComponents, config: PacsForwardingInit): PacsForwarding {
  const exporter = new PacsExporter(deps, { destinations: config.dimse.destinations, aeTitle: config.dimse.aeTitle })
  const exportStore = createExportStore(config.exportsDir)
  const exports = createExportQueue({ exports: exportStore, exporter, store: deps.store, logger: deps.logger, clock: deps.clock }, config.queue)
  const logger = deps.logger.child({ component: 'pacs-forwarding' })
  const send = async (studyInstanceUID: string, options: { destination?: string, local?: LocalIdentity, source?: string } = {}): Promise<ExportAnswer> => {
    const destination = options.destination ?? config.pacs.destination
    if (destination === '') throw new UnknownDestinationError('(none: pacs.destination is not set)')
    return exports.request({ studyInstanceUID, destination, local: options.local, source: options.source ?? await deps.sourceOf(studyInstanceUID) })
  }
  return {
    exports,
    send,
    async start () {
      await exportStore.start()
      try {
        await exports.start()
      } catch (err) {
        await exports.stop().catch(() => {})
        await exportStore.stop()
        throw err
      }
    },
    async stop () {
      await exports.stop()
      await exportStore.stop()
    },
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
