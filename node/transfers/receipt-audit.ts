import type { Logger } from 'pino'
import type { AuditSink } from '../audit/audit-log.ts'
import { auditPatient, NODE_ITSELF } from '../audit/events.ts'
import type { P2PHost } from '../p2p/host.ts'
import type { StudyStore } from '../store/study-store.ts'
import type { StudyComplete } from './events.ts'

/*
 * The end of a push in the audit trail of either side, with the signed receipt (which can be
 * checked again later): 'receive'/'committed' where the study arrived, 'receipt'/'kept' where it
 * was sent from. A trail that does not take it is logged; the transfer stays complete.
 */

export interface ReceiptAuditComponents {
  audit?: AuditSink
  host: Pick<P2PHost, 'institutionOf'>
  store: Pick<StudyStore, 'getStudyRecord'>
  logger: Logger
}

export async function auditPushEnd (components: ReceiptAuditComponents, e: StudyComplete, entry: { event: 'receive', outcome: 'committed' } | { event: 'receipt', outcome: 'kept' }): Promise<void> {
  const { audit, host, store, logger } = components
  if (audit === undefined) return
  const peer = host.institutionOf(e.peerId)
  try {
    const study = await store.getStudyRecord(e.studyInstanceUID)
    await audit.record({
      ...entry,
      patient: auditPatient(study.patient),
      user: NODE_ITSELF,
      institution: { ura: peer?.ura ?? e.peerId, ...(peer === undefined ? {} : { name: peer.institution.name }) },
      studyInstanceUID: e.studyInstanceUID,
      details: { receipt: JSON.stringify(e.receipt) }
    })
  } catch (err) {
    logger.error({ err, study: e.studyInstanceUID, event: entry.event }, 'the audit trail did not take the end of a push')
  }
}
