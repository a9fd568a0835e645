import { z } from 'zod'
import { MAX_MANIFEST_BYTES, Sha256Hex } from './common.ts'
import { DataChannelKind, WireCompression } from './data-path.ts'

/*
 * The steps of a push on its stream. Control frames are small; the documents that can grow with a
 * study (the signed manifest, the answer listing what the receiver holds, the receipt) travel as
 * a run of data frames announced by a control frame with their size.
 *
 *   sender                                   receiver
 *   push-offer {bytes, dataChannels?, compression?} + manifest run  ->
 *                                      <-    answer run (accept {have, dataChannel?, compression?} | decline)
 *   push-data {via}                    ->    (only when the answer named a data channel: 'tls' when
 *                                             the sender connected to it and presented the token;
 *                                             everything below then runs on that connection, else
 *                                             'stream': on this stream as before)
 *   push-instance {sha256, compression?} + data run  ->  (each missing instance, reports first;
 *                                             compressed: the run carries the zstd frame of its bytes)
 *                                      <-    push-ack {sha256}   (verified and kept)
 *                                      <-    push-progress       (while an instance or the commit
 *                                                                 takes long: the sender's reads
 *                                                                 must not stall meanwhile)
 *   push-done                          ->
 *                                      <-    push-receipt {bytes} + receipt run
 */

/** Largest answer or receipt: both list at most every instance's SHA-256. */
export const MAX_PUSH_DOCUMENT_BYTES = MAX_MANIFEST_BYTES

export const PushOffer = z.strictObject({
  type: z.literal('beeldnet/push-offer'),
  bytes: z.number().int().min(2).max(MAX_MANIFEST_BYTES),
  /** data channels the sender can use (data-path.ts) */
  dataChannels: z.array(DataChannelKind).max(8).optional(),
  /** wire compressions the sender can use */
  compression: z.array(WireCompression).max(8).optional()
})
export const PushDataVia = z.strictObject({ type: z.literal('beeldnet/push-data'), via: z.enum(['tls', 'stream']) })
export const PushInstance = z.strictObject({ type: z.literal('beeldnet/push-instance'), sha256: Sha256Hex, compression: WireCompression.optional() })
export const PushDone = z.strictObject({ type: z.literal('beeldnet/push-done') })
export const PushSenderStep = z.discriminatedUnion('type', [PushInstance, PushDone])

export const PushAck = z.strictObject({ type: z.literal('beeldnet/push-ack'), sha256: Sha256Hex })
export const PushProgress = z.strictObject({ type: z.literal('beeldnet/push-progress') })
export const PushReceiptHeader = z.strictObject({ type: z.literal('beeldnet/push-receipt'), bytes: z.number().int().min(2).max(MAX_PUSH_DOCUMENT_BYTES) })
export const PushReceiverStep = z.discriminatedUnion('type', [PushAck, PushProgress, PushReceiptHeader])
