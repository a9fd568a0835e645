import { z } from 'zod'

/*
 * How a push's instance bytes travel, agreed per transfer in the offer and its answer (push.ts).
 * Data channel 'tls': a TLS 1.3 connection to the receiver's data port, both sides with
 * certificates bound to their node keys as libp2p's TLS does, opened with the one-time token of
 * the answer. Compression 'zstd': each instance whose pixel data is not compressed already is
 * sent as one zstd frame; the receiver checks size and hash of the decompressed bytes as ever.
 */

export const DataChannelKind = z.literal('tls')
export type DataChannelKind = z.infer<typeof DataChannelKind>

export const WireCompression = z.literal('zstd')
export type WireCompression = z.infer<typeof WireCompression>

export const DataChannelOffer = z.strictObject({
  kind: DataChannelKind,
  port: z.number().int().min(1).max(65535),
  /** 32 random bytes, base64url: valid once, for the peer it was given to, for a short while */
  token: z.string().regex(/^[A-Za-z0-9_-]{43}$/)
})
export type DataChannelOffer = z.infer<typeof DataChannelOffer>
