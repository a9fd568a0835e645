import { z } from 'zod'
import { parseDocument } from '../registry/documents.ts'
import { MAX_INSTANCES, Sha256Hex, TransferId } from './common.ts'
import { DataChannelOffer, WireCompression } from './data-path.ts'

/*
 * The receiver's answer to an offer. Accept lists the instances it already holds (from an earlier,
 * broken attempt of this transfer, or from before), so only the others stream. Decline is final for
 * this transfer: the reason code is for programs, the text for the sending clinician. The answer
 * travels on the authenticated connection that carried the offer, so it is not signed; the receipt is.
 */

export const DeclineReason = z.enum([
  /** the manifest names another institution */
  'wrong-destination',
  /** the destination department is not one this institution receives for */
  'unknown-department',
  /** the receiving institution's policy does not accept this sender or reason */
  'refused-by-policy',
  /** the study exceeds what the receiver accepts in one transfer */
  'too-large',
  /** the receiver has no room for the study */
  'no-space',
  /** the transfer id was used before with another manifest, or the transfer was cancelled */
  'transfer-conflict',
  /** the manifest is well formed but cannot be received (conflicts with what is stored) */
  'invalid-manifest',
  'other'
])
export type DeclineReason = z.infer<typeof DeclineReason>

const AnswerBase = {
  type: z.literal('beeldnet/push-answer'),
  transferId: TransferId,
  /** the hash of the manifest answered (manifestHash) */
  manifestHash: Sha256Hex
}

export const Answer = z.discriminatedUnion('decision', [
  z.strictObject({
    ...AnswerBase,
    decision: z.literal('accept'),
    /** SHA-256s of manifest instances the receiver already holds: do not send these */
    have: z.array(Sha256Hex).max(MAX_INSTANCES),
    /** where to send the instances instead of this stream, if the offer allowed it (push.ts, PushDataVia) */
    dataChannel: DataChannelOffer.optional(),
    /** the wire compression both sides use for uncompressed pixel data, if the offer allowed it */
    compression: WireCompression.optional()
  }),
  z.strictObject({
    ...AnswerBase,
    decision: z.literal('decline'),
    reason: DeclineReason,
    text: z.string().max(1000)
  })
])
export type Answer = z.infer<typeof Answer>
export type AcceptAnswer = Extract<Answer, { decision: 'accept' }>
export type DeclineAnswer = Extract<Answer, { decision: 'decline' }>

/** Throws BEELDNET_ERR_SCHEMA for anything that is not an answer. */
export function parseAnswer (value: unknown): Answer {
  return parseDocument(Answer, value, 'answer')
}

export function acceptAnswer (transferId: string, manifestHash: string, have: string[]): AcceptAnswer {
  return { type: 'beeldnet/push-answer', transferId, manifestHash, decision: 'accept', have }
}

export function declineAnswer (transferId: string, manifestHash: string, reason: DeclineReason, text = ''): DeclineAnswer {
  return { type: 'beeldnet/push-answer', transferId, manifestHash, decision: 'decline', reason, text: text.slice(0, 1000) }
}
