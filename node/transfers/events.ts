import type { SignedReceipt } from '../../protocol/exchange/receipt.ts'
import type { PullMade } from '../policy/policy-store.ts'
import type { ProgressSnapshot } from './progress.ts'
import type { ErrorRecord, TransferRecord } from './transfer-store.ts'

/*
 * What the outgoing queue and the incoming receiver tell the rest of the node (API, web app, CLI
 * progress bars, metrics). Both ends raise the same events, told apart by `direction`.
 */

export interface TransferRef {
  direction: 'outgoing' | 'incoming'
  transferId: string
  /** the other node */
  peerId: string
  studyInstanceUID: string
}

export interface TransferProgress extends TransferRef, ProgressSnapshot {
  state: string
  /** ISO 8601 */
  at: string
}

export interface ReportArrived extends TransferRef {
  /** SOP Instance UIDs of the report instances, all now held by the receiver */
  reports: string[]
}

export interface StudyComplete extends TransferRef {
  receipt: SignedReceipt
}

export interface TransferFailed extends TransferRef {
  state: string
  error: ErrorRecord
}

export interface TransferEvents {
  /** every state change, with the record as written */
  state: [TransferRecord]
  /** throttled; the last one of a transfer is always sent */
  progress: [TransferProgress]
  /** every report instance of the study is at the receiver (raised once per transfer) */
  'report-arrived': [ReportArrived]
  /** the receiver committed the study and its signed receipt verified */
  'study-complete': [StudyComplete]
  /** the transfer ended without the study: declined, refused, out of attempts, or a final error */
  'transfer-failed': [TransferFailed]
}

/** What the exchange tells on top of its transfers' events. */
export interface ExchangeEvents extends TransferEvents {
  /** a hospital decided a pull this node asked for and it had queued: approved or refused, and why */
  'pull-decided': [PullMade]
}

export function errorRecord (err: unknown, at: Date): ErrorRecord {
  const e = err as { code?: unknown, name?: unknown, message?: unknown }
  const code = typeof e?.code === 'string' ? e.code : typeof e?.name === 'string' ? e.name : 'Error'
  const message = typeof e?.message === 'string' ? e.message : String(err)
  return { code, message: message.slice(0, 1000), at: at.toISOString() }
}
