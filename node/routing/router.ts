import type { Logger } from 'pino'
import type { RoutingRule } from '../config/config.ts'
import { wildcard } from '../dicomweb/qido.ts'
import type { StudyRecord } from '../store/records.ts'
import type { StudyStore } from '../store/study-store.ts'
import type { Exchange } from '../transfers/exchange.ts'

/*
 * Routing: what the PACS or a modality stores into the node over DIMSE goes on to another hospital
 * by itself when a rule matches (called or calling AE title, modality, study description). Sending
 * again later sends only what the receiver lacks, so a study that grows is simply routed again.
 */

export interface StoredBatch {
  calledAeTitle: string
  callingAeTitle: string
  studies: string[]
}

export interface Router {
  /** the rule that decides for a study, if any */
  ruleFor (study: StudyRecord, calledAeTitle: string, callingAeTitle: string): RoutingRule | undefined
  /** studies an association stored: each matching one is queued for its destination */
  studiesStored (batch: StoredBatch): Promise<void>
}

export function createRouter (deps: { store: StudyStore, exchange: Pick<Exchange, 'send'>, logger: Logger }, rules: RoutingRule[]): Router {
  const logger = deps.logger.child({ component: 'routing' })
  const ruleFor = (study: StudyRecord, calledAeTitle: string, callingAeTitle: string): RoutingRule | undefined => rules.find((r) =>
    (r.calledAeTitle === undefined || r.calledAeTitle === calledAeTitle) &&
    (r.callingAeTitle === undefined || r.callingAeTitle === callingAeTitle) &&
    (r.modality === undefined || study.modalities.includes(r.modality)) &&
    (r.studyDescription === undefined || wildcard(r.studyDescription, true).test(study.description)))
  return {
    ruleFor,
    async studiesStored (batch) {
      for (const uid of batch.studies) {
        try {
          const { study } = await deps.store.getStudy(uid)
          const rule = ruleFor(study, batch.calledAeTitle, batch.callingAeTitle)
          if (rule === undefined) continue
          const record = await deps.exchange.send({
            studyInstanceUID: uid,
            to: rule.to,
            reason: rule.reason,
            note: `automatically routed: stored by ${batch.callingAeTitle} to ${batch.calledAeTitle}`,
            // The rule is the confirmation: hospital IT configured this flow on purpose.
            confirmBulk: true
          })
          logger.info({ study: uid, to: rule.to, transferId: record.transferId, called: batch.calledAeTitle, calling: batch.callingAeTitle }, 'study routed')
        } catch (err) {
          logger.warn({ err, study: uid }, 'routing a study failed')
        }
      }
    }
  }
}
