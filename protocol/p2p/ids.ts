/*
 * What two nodes must agree on before a single frame flows: the protocol ids they negotiate (one
 * per exchange, versioned so an incompatible change gets a new id while old peers keep working)
 * and the yamux setting both ends of a connection must share.
 */

/** Offer a study, stream the missing instances, get a signed receipt. */
export const PUSH_PROTOCOL = '/beeldnet/push/1.0.0'
/** Find studies at a peer; the answering node's policy decides and audits. 2.0.0: the request is signed by the asking node. */
export const QUERY_PROTOCOL = '/beeldnet/query/2.0.0'
/** Ask a peer for a study; an allowed pull is served as a push back. 2.0.0: the request is signed by the asking node. */
export const PULL_PROTOCOL = '/beeldnet/pull/2.0.0'
/** The source tells the requester how a queued pull was decided later (one PullAnswer frame). */
export const PULL_DECISION_PROTOCOL = '/beeldnet/pull-decision/1.0.0'
/** Exchange (directory version, hash) on every connection and hand on newer directories. */
export const DIRECTORY_PROTOCOL = '/beeldnet/directory/1.0.0'

export const PROTOCOLS = {
  push: PUSH_PROTOCOL,
  query: QUERY_PROTOCOL,
  pull: PULL_PROTOCOL,
  pullDecision: PULL_DECISION_PROTOCOL,
  directory: DIRECTORY_PROTOCOL
} as const

export type ProtocolName = keyof typeof PROTOCOLS
export type ProtocolId = typeof PROTOCOLS[ProtocolName]

/**
 * The yamux initial stream window (the yamux spec's 256 KiB). Both ends of a connection must use
 * the same value, or the receiver resets the stream with ReceiveWindowExceeded: it is part of the
 * wire contract, not a local tuning knob. Windows then grow per stream up to each end's maximum.
 */
export const YAMUX_INITIAL_STREAM_WINDOW = 256 * 1024

/**
 * How far a stream's window grows unless a node's config says otherwise (p2p.streamWindowBytes):
 * a local knob, not part of the wire contract. About 100 MB/s per transfer at 10 ms round trip;
 * larger windows cost a receiver memory (see node/p2p/host.ts).
 */
export const DEFAULT_MAX_STREAM_WINDOW = 1024 * 1024
