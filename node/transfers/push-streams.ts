import { StreamResetError } from '../p2p/errors.ts'
import type { FramedStream } from '../p2p/stream-io.ts'

/** A push stream that breaks (the peer revoked, the connection closed) ends the push's data connection too. */
export function endWithPushStream (framed: FramedStream, data: FramedStream): void {
  framed.stream.addEventListener('close', (evt) => {
    if (evt.error !== undefined) data.abort(new StreamResetError(`the push stream broke: ${evt.error.message}`, { cause: evt.error }))
  }, { once: true })
}
