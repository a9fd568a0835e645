import { BeeldnetError, PassedOnError } from '../../protocol/errors.ts'

/*
 * Refusals of the node's libp2p layer: who may connect, reaching a peer, and streams that stall or
 * break. Wire-level framing errors live in protocol/p2p/errors.ts.
 */

/** The verified directory does not admit this peer now; `reason` says why (see RefusalReason). */
export class PeerNotAllowedError extends BeeldnetError {
  readonly peerId: string
  readonly reason: string

  constructor (peerId: string, reason: string) {
    super('BEELDNET_ERR_PEER_NOT_ALLOWED', `peer ${peerId} is not admitted by the verified directory: ${reason}`)
    this.peerId = peerId
    this.reason = reason
  }
}

export class PeerUnreachableError extends BeeldnetError {
  constructor (peerId: string, cause: unknown) {
    super('BEELDNET_ERR_PEER_UNREACHABLE', `cannot reach peer ${peerId}: ${(cause as Error)?.message ?? String(cause)}`, { cause })
  }
}

export class ProtocolUnsupportedError extends BeeldnetError {
  constructor (peerId: string, protocol: string) {
    super('BEELDNET_ERR_PROTOCOL_UNSUPPORTED', `peer ${peerId} does not speak ${protocol} (another Beeldnet version?)`)
  }
}

export class P2PNotStartedError extends BeeldnetError {
  constructor () { super('BEELDNET_ERR_P2P_NOT_STARTED', 'the peer-to-peer host is not running') }
}

export class StreamStalledError extends BeeldnetError {
  constructor (what: string, ms: number) { super('BEELDNET_ERR_STREAM_STALLED', `no progress ${what} for ${ms} ms: stream reset`) }
}

export class StreamResetError extends BeeldnetError {
  constructor (message: string, options?: ErrorOptions) { super('BEELDNET_ERR_STREAM_RESET', message, options) }
}

/** A push's data connection (the TLS bulk channel) was not made, or not by the peer its token was for. */
export class DataChannelError extends BeeldnetError {
  constructor (message: string, options?: ErrorOptions) { super('BEELDNET_ERR_DATA_CHANNEL', message, options) }
}

export class DataTooLongError extends BeeldnetError {
  constructor (what: string, max: number) { super('BEELDNET_ERR_DATA_TOO_LONG', `${what} exceeds the ${max} bytes allowed`) }
}

/**
 * The peer ended the exchange with one of our own codes (it declined an instance, it found our
 * manifest wrong...). The code is taken over only when it is one this software declares, so that
 * retry decisions can follow it; anything else is BEELDNET_ERR_REMOTE_ABORT.
 */
export class PeerAbortedError extends PassedOnError {
  constructor (remoteCode: unknown, message: string) { super(remoteCode, 'BEELDNET_ERR_REMOTE_ABORT', message) }
}
