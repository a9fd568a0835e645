import { once } from 'node:events'
import type { Socket } from 'node:net'

/**
 * Writes `bytes` and, when the socket's buffer is full, waits until it drains or closes. The wait
 * that loses is taken off the socket: a long DIMSE association or a syslog export of a long trail
 * waits thousands of times, and listeners left behind would pile up on its socket until it closes.
 */
export async function writeOrWait (socket: Socket, bytes: Uint8Array): Promise<void> {
  if (socket.write(bytes)) return
  const waits = new AbortController()
  try {
    await Promise.race([once(socket, 'drain', { signal: waits.signal }), once(socket, 'close', { signal: waits.signal })])
  } finally {
    waits.abort()
  }
}
