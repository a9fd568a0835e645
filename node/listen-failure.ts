import { CannotListenError } from './errors.ts'
import type { Startable } from './lifecycle.ts'

/*
 * A port another process holds is the commonest reason a node does not start. Said in the config's
 * terms (which setting, which address, why) it is BEELDNET_ERR_CANNOT_LISTEN, not a stack trace.
 */

const REASONS: Record<string, string> = {
  EADDRINUSE: 'it is in use by another process',
  EADDRNOTAVAIL: 'it is not an address of this machine',
  EACCES: 'this process may not listen there'
}

/** The error to report for a listener that did not start: unchanged unless it is one of the above. */
export function explainListenFailure (err: unknown, setting: string, address: string): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  const reason = code === undefined ? undefined : REASONS[code]
  if (reason !== undefined) return new CannotListenError(setting, `${address}: ${reason} (${code})`)
  // libp2p lists each address it could not listen on, with the error and its stack, in one message.
  if ((err as Error | undefined)?.name === 'UnsupportedListenAddressesError') {
    const failures = (err as Error).message.split('\n').filter((line) => /^\s+\//.test(line)).map((line) => line.trim())
    return new CannotListenError(setting, failures.join('; '))
  }
  return err
}

/** `part`, whose start failures to listen name `setting` and `address`. */
export function listenerOf (part: Startable, setting: string, address: string): Startable {
  return {
    async start (signal) {
      try {
        await part.start(signal)
      } catch (err) {
        throw explainListenFailure(err, setting, address)
      }
    },
    async stop () { await part.stop() }
  }
}
