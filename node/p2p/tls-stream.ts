import type { TLSSocket } from 'node:tls'
import type { AbortOptions } from '@libp2p/interface'
import { logger as libp2pLogger } from '@libp2p/logger'
import { AbstractStream } from '@libp2p/utils'
import type { SendResult } from '@libp2p/utils'
import type { Uint8ArrayList } from 'uint8arraylist'

/*
 * A TLS socket seen as a libp2p Stream, so the framing of stream-io.ts (limits, stall timeouts,
 * error frames, backpressure both ways) runs unchanged on the bulk data channel. Backpressure is
 * TCP's: a paused stream pauses the socket, and a write the socket does not take waits for its
 * 'drain'. Each side closes its write side with a TLS close_notify and FIN (socket.end()).
 */

let streams = 0

export class TlsStream extends AbstractStream {
  private readonly socket: TLSSocket

  constructor (socket: TLSSocket, direction: 'inbound' | 'outbound', protocol: string) {
    super({
      id: `tls-${++streams}`,
      protocol,
      direction,
      log: libp2pLogger(`beeldnet:tls-stream:${streams}`),
      // A paused socket stops reading; what it had read already (one chunk) still arrives.
      maxReadBufferLength: 4 * 1024 * 1024,
      inactivityTimeout: 0
    })
    this.socket = socket
    socket.on('data', (chunk: Buffer) => { this.onData(chunk) })
    socket.on('end', () => { this.onRemoteCloseWrite() })
    socket.on('drain', () => { this.safeDispatchEvent('drain') })
    socket.on('error', (err) => { if (this.status === 'open' || this.status === 'closing') this.abort(err) })
    socket.on('close', (hadError) => {
      if (this.status !== 'open' && this.status !== 'closing') return
      // A peer that vanished without closing its write side reset the stream.
      if (hadError || this.remoteWriteStatus !== 'closed') this.onRemoteReset()
      else this.onTransportClosed()
    })
  }

  /** Nothing given to the stream is still held in this process (libp2p's buffer, the socket's): its buffers may be used again. */
  get allWritten (): boolean {
    return this.writeBufferLength === 0 && this.socket.writableLength === 0
  }

  sendData (data: Uint8ArrayList): SendResult {
    let sentBytes = 0
    let canSendMore = true
    for (const chunk of data) {
      sentBytes += chunk.byteLength
      canSendMore = this.socket.write(chunk)
      if (!canSendMore) break
    }
    return { sentBytes, canSendMore }
  }

  sendReset (): void {
    // The error frame written just before must still reach the peer: end after what is queued, and
    // destroy a socket whose peer does not take it within a second.
    this.socket.end()
    setTimeout(() => { this.socket.destroy() }, 1000).unref()
  }

  sendPause (): void {
    this.socket.pause()
  }

  sendResume (): void {
    this.socket.resume()
  }

  async sendCloseWrite (options?: AbortOptions): Promise<void> {
    if (this.socket.writableFinished) return
    const finished = Promise.withResolvers<void>()
    const onAbort = (): void => { finished.reject(options?.signal?.reason) }
    options?.signal?.addEventListener('abort', onAbort, { once: true })
    this.socket.end(() => { finished.resolve() })
    try {
      await finished.promise
    } finally {
      options?.signal?.removeEventListener('abort', onAbort)
    }
  }

  async sendCloseRead (): Promise<void> {
    // TLS has no half-close of the read side: unread data is simply dropped by the stream.
  }
}
