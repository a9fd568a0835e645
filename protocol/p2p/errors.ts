import { BeeldnetError } from '../errors.ts'

/*
 * Refusals of what arrives on a Beeldnet stream: frames that break the framing rules, and a peer
 * that aborted the stream with an error frame. The side that detects a violation resets the
 * stream after telling the peer the code in an error frame, so both ends log the same code.
 */

export class FrameTooLargeError extends BeeldnetError {
  constructor (kind: string, size: number, max: number) {
    super('BEELDNET_ERR_FRAME_TOO_LARGE', `a ${kind} frame of ${size} bytes exceeds the limit of ${max} bytes`)
  }
}

export class FrameMalformedError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_FRAME_MALFORMED', message) }
}

export class FrameUnexpectedError extends BeeldnetError {
  constructor (expected: string, got: string) { super('BEELDNET_ERR_FRAME_UNEXPECTED', `expected ${expected}, got a ${got} frame`) }
}

export class StreamTruncatedError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_STREAM_TRUNCATED', message) }
}

/** The peer sent an error frame: `remoteCode` is its code, which we report but never adopt as ours. */
export class RemoteAbortError extends BeeldnetError {
  readonly remoteCode: string
  readonly remoteMessage: string

  constructor (remoteCode: string, remoteMessage: string) {
    super('BEELDNET_ERR_REMOTE_ABORT', `the peer aborted the stream: ${remoteCode}: ${remoteMessage}`)
    this.remoteCode = remoteCode
    this.remoteMessage = remoteMessage
  }
}
