import { z } from 'zod'
import { hashOfSigned } from '../canonical.ts'
import { parseDocument } from '../registry/documents.ts'
import { Base64Signature, MAX_INSTANCES, NodeRef, Sha256Hex, Time, TransferId, Uid } from './common.ts'
import { ReceiptForgedError, ReceiptIncompleteError, ReceiptMismatchError, SignerMismatchError } from './errors.ts'
import type { Manifest } from './manifest.ts'
import { signAsNode, verifyNodeSignature, type NodeSigner } from './node-signature.ts'

/*
 * What the receiver signs once the study is committed: the sender keeps it as proof that this
 * node, at this time, holds exactly these instances of this study.
 */

export const Receipt = z.strictObject({
  type: z.literal('beeldnet/push-receipt'),
  transferId: TransferId,
  /** the hash of the signed manifest received */
  manifestHash: Sha256Hex,
  receiver: NodeRef,
  studyInstanceUID: Uid,
  /** SHA-256 of every instance of the manifest, now committed at the receiver */
  instances: z.array(Sha256Hex).min(1).max(MAX_INSTANCES),
  committed: Time
})
export type Receipt = z.infer<typeof Receipt>

export const SignedReceipt = z.strictObject({ signed: Receipt, signature: Base64Signature })
export type SignedReceipt = z.infer<typeof SignedReceipt>

export async function signReceipt (receipt: Receipt, signer: NodeSigner): Promise<SignedReceipt> {
  const signed = parseDocument(Receipt, receipt, 'receipt')
  return { signed, signature: await signAsNode(signed, signer) }
}

export interface ReceiptCheck {
  /** the peer the study was sent to: its key must have signed */
  peerId: string
  manifest: Manifest
  manifestHash: string
}

/**
 * Checks a receipt against the transfer it should close: signed by the receiving peer's key, for
 * this transfer and manifest, by the destination institution, confirming every instance. Throws
 * BEELDNET_ERR_SCHEMA, _SIGNER_MISMATCH, _RECEIPT_FORGED, _RECEIPT_MISMATCH or _RECEIPT_INCOMPLETE.
 */
export function verifyReceipt (value: unknown, check: ReceiptCheck): { receipt: Receipt, hash: string, envelope: SignedReceipt } {
  const envelope = parseDocument(SignedReceipt, value, 'receipt')
  const r = envelope.signed
  const m = check.manifest
  if (r.receiver.peerId !== check.peerId) throw new SignerMismatchError('receipt', r.receiver.peerId, check.peerId)
  if (!verifyNodeSignature(r, envelope.signature, check.peerId)) throw new ReceiptForgedError(m.transferId, check.peerId)
  if (r.transferId !== m.transferId) throw new ReceiptMismatchError(m.transferId, `it is for transfer ${r.transferId}`)
  if (r.manifestHash !== check.manifestHash) throw new ReceiptMismatchError(m.transferId, 'it answers another manifest')
  if (r.studyInstanceUID !== m.study.studyInstanceUID) throw new ReceiptMismatchError(m.transferId, `it names study ${r.studyInstanceUID}`)
  if (r.receiver.ura !== m.destination.ura) throw new ReceiptMismatchError(m.transferId, `it is signed for URA ${r.receiver.ura}, the study went to ${m.destination.ura}`)
  const confirmed = new Set(r.instances)
  const expected = new Set(m.instances.map((i) => i.sha256))
  const extra = [...confirmed].filter((sha) => !expected.has(sha))
  if (extra.length > 0) throw new ReceiptMismatchError(m.transferId, `it confirms ${extra.length} instance(s) not in the manifest`)
  const missing = m.instances.filter((i) => !confirmed.has(i.sha256)).length
  if (missing > 0) throw new ReceiptIncompleteError(m.transferId, missing)
  return { receipt: r, hash: hashOfSigned(r), envelope }
}
