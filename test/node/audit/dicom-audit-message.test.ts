import { describe, expect, it } from 'vitest'
import { dicomAuditMessage } from '../../../node/audit/dicom-audit-message.ts'
import type { AuditRecord } from '../../../node/audit/audit-log.ts'

/*
 * The trail's outcomes are words for people ('failed: BEELDNET_ERR_PACS_UNREACHABLE', 'refused
 * (conflict)'); the DICOM audit message a collector reads carries whether the action failed as
 * EventOutcomeIndicator (0 success, 4 minor failure).
 */

function record (event: string, outcome: string): AuditRecord {
  return { seq: 1, time: '2026-12-07T04:00:00.000Z', prev: '0', hash: '1', event, outcome, user: { system: 'node' }, patient: { bsn: '111222333' } }
}

const indicatorOf = (message: string): string | undefined => /EventOutcomeIndicator="(\d+)"/.exec(message)?.[1]

describe('the DICOM audit message of a trail record', () => {
  it('says a failed, refused, held, declined, cancelled or aborted action failed, whatever words follow the first', () => {
    for (const outcome of ['failed: BEELDNET_ERR_PACS_UNREACHABLE', 'refused (conflict)', 'refused', 'held', 'cancelled', 'declined', 'aborted: the caller sent A-ABORT']) {
      expect(indicatorOf(dicomAuditMessage(record('export-to-pacs', outcome), { id: 'node-1', nodeName: 'Isala' })), outcome).toBe('4')
    }
  })

  it('says an action succeeded when its outcome is a result', () => {
    for (const outcome of ['sent to ISALA_PACS', 'kept (same-instance)', '1 study', 'stored', 'served']) {
      expect(indicatorOf(dicomAuditMessage(record('store-received', outcome), { id: 'node-1', nodeName: 'Isala' })), outcome).toBe('0')
    }
  })
})
