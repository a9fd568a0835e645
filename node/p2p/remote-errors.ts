import { ERROR_STATUS } from '../../protocol/error-status.ts'
import { RemoteAbortError } from '../../protocol/p2p/errors.ts'
import { PeerAbortedError } from './errors.ts'

/** A peer's abort carrying a code we know becomes that code (so a queue can decide on it); other errors pass. */
export function adoptRemoteCode (err: unknown): unknown {
  if (err instanceof RemoteAbortError && ERROR_STATUS[err.remoteCode] !== undefined && err.remoteCode !== 'BEELDNET_ERR_INTERNAL') {
    return new PeerAbortedError(err.remoteCode, `the peer refused: ${err.remoteMessage}`)
  }
  return err
}
