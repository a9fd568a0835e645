import { randomBytes, timingSafeEqual } from 'node:crypto'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { createServer, type Server, type Socket } from 'node:net'
import { connect, createSecureContext, TLSSocket, type SecureContext } from 'node:tls'
import type { PrivateKey, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Logger } from 'pino'
import { DataChannelError, PeerNotAllowedError } from './errors.ts'
import type { PeerGating } from './gating.ts'
import { TlsStream } from './tls-stream.ts'

/*
 * The bulk data channel of a push: instance bytes over TLS 1.3 from node:tls (OpenSSL), about 3x
 * cheaper in CPU than the libp2p stream for the same bytes (bench:transfer). libp2p still does
 * what it is for: the offer, the answer and the one-time token travel on the authenticated push
 * stream; this channel only carries the rest. Trust is the same as libp2p's:
 *  - both sides present a certificate bound to their node's Ed25519 key as libp2p's TLS handshake
 *    does it (@libp2p/tls: the key signs the certificate's key in an extension), and each checks
 *    the other's against the peer id it expects;
 *  - the receiver admits a connection only from a peer the directory admits now, and only with a
 *    token it issued to exactly that peer for one push, unused and not expired: anything else is
 *    closed before a byte of it is read past the token, and before we write any;
 *  - a directory update that suspends or revokes a peer closes its data connections at once,
 *    both ways, like its libp2p connections.
 */

export const DATA_PROTOCOL = '/beeldnet/push-data/1.0.0'
const TOKEN_BYTES = 32
/** base64url of the token: what the connecting side writes first */
const TOKEN_CHARS = Math.ceil(TOKEN_BYTES * 4 / 3)

export interface DataChannelComponents {
  /** this node's identity: its key makes the certificate */
  privateKey: PrivateKey
  peerId: string
  gating: Pick<PeerGating, 'check' | 'countRefusal'>
  /** directory updates: data connections of peers no longer admitted are closed */
  directory?: { on: (event: 'update', listener: () => void) => unknown, off: (event: 'update', listener: () => void) => unknown }
  logger: Logger
}

export interface DataChannelInit {
  /** the address to listen on (the libp2p listen address's host) */
  host: string
  /** 0: any free port */
  port: number
  /** how long a token waits for its connection, and a connection for its token (default 30_000) */
  timeoutMs?: number
}

export interface ExpectedConnection {
  token: string
  port: number
  /** the authenticated data stream, once `peerId` connected with the token */
  stream: Promise<Stream>
  /** the token is not going to be used (the push ended first): forget it */
  cancel: () => void
}

export interface DataChannel {
  start (): Promise<void>
  stop (): Promise<void>
  /** the port peers connect to (after start) */
  readonly port: number
  /** a one-time token for one data connection from `peerId` */
  expect (peerId: string): ExpectedConnection
  /** connects to `peerId`'s data channel at host:port and presents the token */
  connect (peerId: string, target: { host: string, port: number }, token: string, options?: { signal?: AbortSignal }): Promise<Stream>
  /** data connections open now, per peer id (for tests and status) */
  openConnections (): Map<string, number>
}

/** The certificate bound to the node key, made at the first data connection either way. */
interface Credentials { cert: string, key: string, context: SecureContext }

// @libp2p/tls's certificate code (x509, asn1 schemas) is loaded with the first data connection, not
// at start: it is about 4.5 MB of an idle node's heap (bench:idle).
const tlsUtils = async (): Promise<typeof import('@libp2p/tls/utils')> => import('@libp2p/tls/utils')

interface Waiting {
  peerId: string
  resolve: (stream: Stream) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

class DefaultDataChannel implements DataChannel {
  private readonly components: DataChannelComponents
  private readonly init: Required<DataChannelInit>
  private server: Server | undefined
  private credentials: Promise<Credentials> | undefined
  private readonly waiting = new Map<string, Waiting>()
  private readonly sockets = new Map<TLSSocket, string>()
  /** accepted connections not yet admitted (handshake, token) */
  private readonly arriving = new Set<Socket>()
  private readonly onDirectoryUpdate = (): void => { this.closeDisallowed() }

  constructor (components: DataChannelComponents, init: DataChannelInit) {
    this.components = components
    this.init = { timeoutMs: 30_000, ...init }
  }

  get port (): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0
  }

  async start (): Promise<void> {
    // Plain TCP first: each connection is wrapped in TLS once it comes, so the certificate is made only then.
    const server = createServer((socket) => { void this.accept(socket) })
    server.listen(this.init.port, this.init.host)
    try {
      await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => { throw err })])
    } catch (err) {
      server.close()
      throw err
    }
    this.server = server
    this.components.directory?.on('update', this.onDirectoryUpdate)
  }

  private async tlsCredentials (): Promise<Credentials> {
    this.credentials ??= (async () => {
      const made = await (await tlsUtils()).generateCertificate(this.components.privateKey)
      return { ...made, context: createSecureContext({ ...made, minVersion: 'TLSv1.3' }) }
    })()
    return this.credentials
  }

  /** TLS on an accepted connection, as the server side; a peer that does not finish its handshake in time is dropped. */
  private async accept (raw: Socket): Promise<void> {
    raw.setTimeout(this.init.timeoutMs, () => { raw.destroy() })
    raw.on('error', () => {})
    this.arriving.add(raw)
    raw.once('close', () => { this.arriving.delete(raw) })
    try {
      const socket = new TLSSocket(raw, {
        isServer: true,
        secureContext: (await this.tlsCredentials()).context,
        // The certificate is libp2p's self-signed one: checked against the directory in admit(), not a CA.
        requestCert: true,
        rejectUnauthorized: false
      })
      socket.on('error', (err) => { this.components.logger.debug({ err }, 'a data connection failed') })
      await once(socket, 'secure')
      raw.setTimeout(0)
      await this.admit(socket)
    } catch (err) {
      this.components.logger.debug({ err }, 'a data connection failed its TLS handshake')
      raw.destroy()
    }
  }

  async stop (): Promise<void> {
    this.components.directory?.off('update', this.onDirectoryUpdate)
    for (const [token, waiting] of this.waiting) this.settle(token, waiting, new DataChannelError('the node is stopping'))
    for (const socket of [...this.sockets.keys(), ...this.arriving]) socket.destroy()
    const server = this.server
    this.server = undefined
    if (server !== undefined) await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  }

  expect (peerId: string): ExpectedConnection {
    const token = randomBytes(TOKEN_BYTES).toString('base64url')
    const stream = Promise.withResolvers<Stream>()
    stream.promise.catch(() => {})
    const timer = setTimeout(() => {
      const waiting = this.waiting.get(token)
      if (waiting !== undefined) this.settle(token, waiting, new DataChannelError(`peer ${peerId} did not open its data connection within ${this.init.timeoutMs} ms`))
    }, this.init.timeoutMs)
    this.waiting.set(token, { peerId, resolve: stream.resolve, reject: stream.reject, timer })
    return {
      token,
      port: this.port,
      stream: stream.promise,
      cancel: () => {
        const waiting = this.waiting.get(token)
        if (waiting !== undefined) this.settle(token, waiting, new DataChannelError('the push ended before its data connection'))
      }
    }
  }

  private settle (token: string, waiting: Waiting, outcome: Error | Stream): void {
    this.waiting.delete(token)
    clearTimeout(waiting.timer)
    if (outcome instanceof Error) waiting.reject(outcome)
    else waiting.resolve(outcome)
  }

  /** The receiving side: certificate, directory and token checked before the connection is used. */
  private async admit (socket: TLSSocket): Promise<void> {
    const { logger, gating } = this.components
    const refuse = (why: string, peerId?: string): void => {
      logger.warn({ peerId, remote: socket.remoteAddress }, `data connection refused: ${why}`)
      socket.destroy()
    }
    socket.setNoDelay(true)
    let peerId: string
    try {
      const raw = socket.getPeerCertificate().raw
      if (raw === undefined) return refuse('no certificate')
      peerId = (await (await tlsUtils()).verifyPeerCertificate(new Uint8Array(raw))).toString()
    } catch (err) {
      return refuse(`its certificate is not bound to a node key (${(err as Error).message})`)
    }
    const decision = gating.check(peerId)
    if (!decision.allowed) {
      gating.countRefusal('inbound', decision.reason)
      return refuse(`not admitted by the directory (${decision.reason})`, peerId)
    }
    const presented = await readToken(socket, this.init.timeoutMs)
    const waiting = presented === undefined ? undefined : this.waiting.get(presented)
    // One-time: a token is gone once used (or expired), so a replay finds nothing.
    if (presented === undefined || waiting === undefined || !sameText(waiting.peerId, peerId)) {
      return refuse(presented === undefined ? 'no token in time' : 'a token this node did not issue to that peer, or one already used', peerId)
    }
    this.settle(presented, waiting, this.track(socket, peerId, 'inbound'))
  }

  async connect (peerId: string, target: { host: string, port: number }, token: string, { signal }: { signal?: AbortSignal } = {}): Promise<Stream> {
    if (this.server === undefined) throw new DataChannelError('the data channel is not started')
    const { cert, key } = await this.tlsCredentials()
    const socket = connect({
      host: target.host,
      port: target.port,
      cert,
      key,
      minVersion: 'TLSv1.3',
      // The peer's certificate is checked against the peer id we expect, below.
      rejectUnauthorized: false
    })
    socket.setNoDelay(true)
    const onAbort = (): void => { socket.destroy(signal?.reason as Error) }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      await Promise.race([once(socket, 'secureConnect', { signal }), once(socket, 'error').then(([err]) => { throw err })])
      const raw = socket.getPeerCertificate().raw
      const remote = raw === undefined ? undefined : (await (await tlsUtils()).verifyPeerCertificate(new Uint8Array(raw), peerIdFromString(peerId))).toString()
      if (remote !== peerId) throw new DataChannelError(`the data port of ${peerId} answered with another node's certificate`)
      const decision = this.components.gating.check(peerId)
      if (!decision.allowed) throw new PeerNotAllowedError(peerId, decision.reason)
      socket.write(token)
      return this.track(socket, peerId, 'outbound')
    } catch (err) {
      socket.destroy()
      throw err
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  private track (socket: TLSSocket, peerId: string, direction: 'inbound' | 'outbound'): Stream {
    this.sockets.set(socket, peerId)
    socket.once('close', () => { this.sockets.delete(socket) })
    return new TlsStream(socket, direction, DATA_PROTOCOL)
  }

  private closeDisallowed (): void {
    for (const [socket, peerId] of this.sockets) {
      const decision = this.components.gating.check(peerId)
      if (decision.allowed) continue
      this.components.logger.warn({ peerId, reason: decision.reason }, 'closed a data connection: the peer is no longer admitted')
      socket.destroy()
    }
  }

  openConnections (): Map<string, number> {
    const counts = new Map<string, number>()
    for (const peerId of this.sockets.values()) counts.set(peerId, (counts.get(peerId) ?? 0) + 1)
    return counts
  }
}

/** The token the connecting side writes first; undefined if it does not come in time. */
async function readToken (socket: TLSSocket, timeoutMs: number): Promise<string | undefined> {
  const deadline = AbortSignal.timeout(timeoutMs)
  for (;;) {
    const bytes = socket.read(TOKEN_CHARS) as Buffer | null
    if (bytes !== null) return bytes.toString('latin1')
    if (socket.readableEnded || socket.destroyed) return undefined
    try {
      await Promise.race([once(socket, 'readable', { signal: deadline }), once(socket, 'close', { signal: deadline })])
    } catch {
      return undefined
    }
  }
}

function sameText (a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** The data channel listens where libp2p does: the host of the first IP listen address. */
export function dataChannelHost (listen: string[]): string {
  for (const address of listen) {
    const ip = multiaddr(address).getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6')
    if (ip?.value !== undefined) return ip.value
  }
  return '127.0.0.1'
}

export function createDataChannel (components: DataChannelComponents, init: DataChannelInit): DataChannel {
  return new DefaultDataChannel(components, init)
}
