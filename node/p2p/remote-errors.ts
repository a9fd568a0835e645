import { isErrorCode } from '../../protocol/api/error-codes.ts'
import { RemoteAbortError } from '../../protocol/p2p/errors.ts'
import { PeerAbortedError } from './errors.ts'

/** A peer's abort carrying a code we declare becomes that code (so a queue can decide on it); other errors pass. */
export function adoptRemoteCode (err: unknown): unknown {
  if (err instanceof RemoteAbortError && isErrorCode(err.remoteCode) && err.remoteCode !== 'BEELDNET_ERR_INTERNAL') {
    return new PeerAbortedError(err.remoteCode, `the peer refused: ${err.remoteMessage}`)
  }
  return err
}
