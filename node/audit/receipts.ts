import { parseDocument, type Directory } from '../../protocol/registry/documents.ts'
import { SignedReceipt } from '../../protocol/exchange/receipt.ts'
import { verifyNodeSignature } from '../../protocol/exchange/node-signature.ts'
import { trailRecords } from './audit-log.ts'

/*
 * The signed receipts kept with the audit trail, checked again later: each must be signed by the
 * key of a node that, in the directory this node held when the receipt was signed, belonged to the
 * receiving institution and was admitted. A key revoked since does not undo a receipt made before.
 */

export interface ReceiptProblem { seq: number, message: string }

export interface ReceiptCheckReport {
  checked: number
  problems: ReceiptProblem[]
}

export async function checkKeptReceipts (trailPath: string, directoryAt: (time: string) => Promise<Directory | undefined>): Promise<ReceiptCheckReport> {
  const report: ReceiptCheckReport = { checked: 0, problems: [] }
  for await (const record of trailRecords(trailPath)) {
    const kept = record.details?.receipt
    if (typeof kept !== 'string') continue
    report.checked++
    const problem = await receiptProblem(kept, directoryAt)
    if (problem !== undefined) report.problems.push({ seq: record.seq, message: problem })
  }
  return report
}

async function receiptProblem (kept: string, directoryAt: (time: string) => Promise<Directory | undefined>): Promise<string | undefined> {
  let envelope: SignedReceipt
  try {
    envelope = parseDocument(SignedReceipt, JSON.parse(kept), 'kept receipt')
  } catch (err) {
    return `not a receipt: ${(err as Error).message}`
  }
  const r = envelope.signed
  if (!verifyNodeSignature(r, envelope.signature, r.receiver.peerId)) return `receipt of transfer ${r.transferId}: the signature is not ${r.receiver.peerId}'s`
  const directory = await directoryAt(r.committed)
  if (directory === undefined) return `receipt of transfer ${r.transferId}: this node kept no directory from ${r.committed}`
  const institution = directory.institutions.find((i) => i.ura === r.receiver.ura)
  if (institution === undefined) return `receipt of transfer ${r.transferId}: URA ${r.receiver.ura} was not in directory v${directory.version}`
  if (institution.status.state !== 'active') return `receipt of transfer ${r.transferId}: ${institution.name} was ${institution.status.state} in directory v${directory.version}`
  const node = institution.nodes.find((n) => n.peerId === r.receiver.peerId)
  if (node === undefined) return `receipt of transfer ${r.transferId}: ${r.receiver.peerId} was not a node of ${institution.name} in directory v${directory.version}`
  const revokedBefore = node.status === 'revoked' && (node.revoked === undefined || node.revoked.since <= r.committed)
  if (node.notBefore > r.committed || (node.notAfter !== undefined && node.notAfter < r.committed) || revokedBefore) {
    return `receipt of transfer ${r.transferId}: the key of ${r.receiver.peerId} was not valid at ${r.committed} (directory v${directory.version})`
  }
  return undefined
}
