import { EventEmitter } from 'node:events'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import type { Logger } from 'pino'
import { isBeeldnetError } from '../../protocol/errors.ts'
import type { NodeIdentity } from '../../protocol/identity.ts'
import { DEFAULT_MAX_STREAM_WINDOW, YAMUX_INITIAL_STREAM_WINDOW } from '../../protocol/p2p/ids.ts'
import type { DirectoryService } from '../directory/directory-service.ts'
import { P2PNotStartedError, PeerNotAllowedError, PeerUnreachableError, ProtocolUnsupportedError } from './errors.ts'
import { createPeerGating, type PeerEntry, type PeerGating, type RefusalCount, type RefusalReason } from './gating.ts'
import { resetStream } from './stream-io.ts'

/*
 * The node's libp2p host: TCP, Noise, Yamux, with the node's own Ed25519 key as its identity.
 * Only peers the verified directory admits get a connection (gating.ts); their addresses come from
 * that directory too (the peer store is filled from it, and nothing else), so nobody can steer our
 * dials. When a new directory version no longer admits a peer, its connections are closed and
 * 'peer-disallowed' says so. Protocol handlers get the stream and who the peer is.
 */

export interface P2PHostComponents {
  identity: NodeIdentity
  /** what the node trusts; gating and the peer addresses follow its 'update' events */
  directory: DirectoryService
  logger: Logger
}

export interface P2PHostInit {
  /** multiaddrs to listen on (default ['/ip4/127.0.0.1/tcp/0']: loopback, a free port) */
  listen?: string[]
  /** multiaddrs to announce instead of the listen addresses, e.g. behind a port forward (default []: the listen addresses) */
  announce?: string[]
  /** yamux: largest message it sends (default 256 KiB; yamux's own default is 64 KiB) */
  maxMessageSize?: number
  /**
   * yamux: how far a stream's receive window may grow; per-stream bandwidth is about window / RTT
   * (default 1 MiB: 100 MB/s at 10 ms; a node's config can raise it for long, fast links). Every
   * MiB of window is data waiting in buffers long enough to outlive young-generation GCs: 16 MiB
   * cost the receiver about 70 MB more peak RSS in bench:transfer, and gained nothing on loopback.
   */
  maxStreamWindowSize?: number
  /** bytes a paused stream may hold before it is reset; must exceed maxStreamWindowSize, since the peer may send a whole window after we pause (default: twice the window) */
  maxReadBufferLength?: number
  /** bytes a stream may queue for sending; writers wait for 'drain', so only a misbehaving one gets near (default 16 MiB, yamux's default is unbounded) */
  maxWriteBufferLength?: number
  /** yamux keep-alive pings, which are also how it learns the RTT that lets windows grow (default 30_000) */
  keepAliveIntervalMs?: number
  /** a stream with no traffic for this long is reset (default 120_000) */
  inactivityTimeoutMs?: number
  /** how often open connections are checked against the directory, for keys whose notAfter passes (default 60_000) */
  recheckIntervalMs?: number
  /** new connections a second accepted from one IP address; libp2p drops the rest (default 5, libp2p's) */
  inboundConnectionsPerSecond?: number
  /** the clock for gating (default () => new Date()) */
  now?: () => Date
}

/** Who is at the other end of an inbound stream. */
export interface RemotePeer {
  peerId: string
  ura: string
  /** the institution's name */
  name: string
  entry: PeerEntry
  connection: Connection
}

export type P2PStreamHandler = (stream: Stream, peer: RemotePeer) => void | Promise<void>

export interface P2PHandleOptions {
  /** streams of this protocol a peer may have open at once per connection (default 32) */
  maxInboundStreams?: number
  /** streams of this protocol we may open at once per connection (default 64) */
  maxOutboundStreams?: number
}

export interface PeerConnectedEvent {
  peerId: string
  ura: string | null
  direction: 'inbound' | 'outbound'
  connection: Connection
}

export interface PeerDisallowedEvent {
  peerId: string
  ura: string | null
  reason: RefusalReason
  /** what streams of the closed connections fail with */
  code: 'BEELDNET_ERR_PEER_NOT_ALLOWED'
}

export interface P2PHostEvents {
  'peer-connected': [PeerConnectedEvent]
  'peer-disconnected': [{ peerId: string }]
  'peer-disallowed': [PeerDisallowedEvent]
}

export interface ConnectedPeer {
  peerId: string
  ura: string | null
  name: string | null
  connections: number
}

export interface P2PStatus {
  running: boolean
  peerId: string
  listening: string[]
  peers: ConnectedPeer[]
  refusals: RefusalCount[]
}

export interface P2PHost extends EventEmitter<P2PHostEvents> {
  /** this node's peer id (its identity key) */
  readonly peerId: string
  /** the addresses it listens on, with /p2p/<peerId> (empty until started) */
  readonly multiaddrs: string[]
  readonly gating: PeerGating
  /** the libp2p node while running: for metrics and tests; protocols use handle/dialProtocol */
  readonly libp2p: Libp2p | undefined
  start (): Promise<void>
  stop (): Promise<void>
  /** serves `protocol` (registered at start if called before); a handler's error resets the stream with its code */
  handle (protocol: string, handler: P2PStreamHandler, options?: P2PHandleOptions): Promise<void>
  unhandle (protocol: string): Promise<void>
  /** opens a stream to an admitted peer, at the addresses the directory lists (reusing an open connection) */
  dialProtocol (peerId: string, protocol: string, options?: { signal?: AbortSignal }): Promise<Stream>
  /** opens a connection to an admitted peer (no stream): it hears that we are here */
  connect (peerId: string, options?: { signal?: AbortSignal }): Promise<void>
  /** peers with an open connection */
  connectedPeers (): ConnectedPeer[]
  /** the IP address an open connection to the peer reaches it at (where its data channel listens too) */
  remoteHostOf (peerId: string): string | undefined
  /** the directory's entry for a peer (URA, institution, node key) */
  institutionOf (peerId: string): PeerEntry | undefined
  status (): P2PStatus
}

const KiB = 1024
const MiB = 1024 * KiB

/** What a paused stream may hold: the peer may still send a whole window after we pause, so room for two. */
export function readBufferFor (maxStreamWindowSize: number): number {
  return 2 * maxStreamWindowSize
}

/** The muxer settings a host uses unless told otherwise (what each means: P2PHostInit); bench:transfer's bare rows use them too. */
export const MUXER_DEFAULTS = {
  maxMessageSize: 256 * KiB,
  maxStreamWindowSize: DEFAULT_MAX_STREAM_WINDOW,
  maxReadBufferLength: readBufferFor(DEFAULT_MAX_STREAM_WINDOW),
  maxWriteBufferLength: 16 * MiB,
  keepAliveIntervalMs: 30_000
} as const

class DefaultP2PHost extends EventEmitter<P2PHostEvents> implements P2PHost {
  readonly peerId: string
  readonly gating: PeerGating
  private readonly identity: NodeIdentity
  private readonly directory: DirectoryService
  private readonly logger: Logger
  private readonly init: Required<Omit<P2PHostInit, 'now'>>
  private readonly handlers = new Map<string, { handler: P2PStreamHandler, options: P2PHandleOptions }>()
  private node: Libp2p | undefined
  private timer: NodeJS.Timeout | undefined
  /** peer store updates run one after another; dials wait for the one pending */
  private syncing: Promise<void> = Promise.resolve()

  constructor (components: P2PHostComponents, init: P2PHostInit) {
    super()
    this.identity = components.identity
    this.peerId = components.identity.peerId
    this.directory = components.directory
    this.logger = components.logger.child({ component: 'p2p' })
    this.gating = createPeerGating({ directory: components.directory }, { now: init.now })
    this.init = {
      listen: init.listen ?? ['/ip4/127.0.0.1/tcp/0'],
      announce: init.announce ?? [],
      maxMessageSize: init.maxMessageSize ?? MUXER_DEFAULTS.maxMessageSize,
      maxStreamWindowSize: init.maxStreamWindowSize ?? MUXER_DEFAULTS.maxStreamWindowSize,
      maxReadBufferLength: init.maxReadBufferLength ?? readBufferFor(init.maxStreamWindowSize ?? MUXER_DEFAULTS.maxStreamWindowSize),
      maxWriteBufferLength: init.maxWriteBufferLength ?? MUXER_DEFAULTS.maxWriteBufferLength,
      keepAliveIntervalMs: init.keepAliveIntervalMs ?? MUXER_DEFAULTS.keepAliveIntervalMs,
      inactivityTimeoutMs: init.inactivityTimeoutMs ?? 120_000,
      recheckIntervalMs: init.recheckIntervalMs ?? 60_000,
      inboundConnectionsPerSecond: init.inboundConnectionsPerSecond ?? 5
    }
    if (this.init.maxReadBufferLength <= this.init.maxStreamWindowSize) {
      // A paused stream still receives what the peer may send within its window: a smaller buffer resets streams.
      throw new RangeError('maxReadBufferLength must exceed maxStreamWindowSize')
    }
  }

  get libp2p (): Libp2p | undefined { return this.node }

  get multiaddrs (): string[] {
    return this.node?.getMultiaddrs().map((ma) => ma.toString()) ?? []
  }

  async start (): Promise<void> {
    if (this.node !== undefined) return
    const node = await createLibp2p({
      start: false,
      privateKey: this.identity.privateKey,
      nodeInfo: { name: 'beeldnet' },
      addresses: { listen: this.init.listen, announce: this.init.announce },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux({
        maxMessageSize: this.init.maxMessageSize,
        enableKeepAlive: true,
        keepAliveInterval: this.init.keepAliveIntervalMs,
        streamOptions: {
          // Part of the wire contract: both ends must start from the same window.
          initialStreamWindowSize: YAMUX_INITIAL_STREAM_WINDOW,
          maxStreamWindowSize: this.init.maxStreamWindowSize,
          maxReadBufferLength: this.init.maxReadBufferLength,
          maxWriteBufferLength: this.init.maxWriteBufferLength,
          inactivityTimeout: this.init.inactivityTimeoutMs
        }
      })],
      connectionGater: this.gating.connectionGater,
      connectionManager: { inboundConnectionThreshold: this.init.inboundConnectionsPerSecond }
    })
    for (const [protocol, { handler, options }] of this.handlers) await node.handle(protocol, this.wrap(handler), options)
    node.addEventListener('connection:open', this.onConnectionOpen)
    node.addEventListener('connection:close', this.onConnectionClose)
    this.directory.on('update', this.onDirectoryUpdate)
    this.node = node
    try {
      await node.start()
    } catch (err) {
      this.node = undefined
      this.directory.off('update', this.onDirectoryUpdate)
      throw err
    }
    this.syncPeerStore()
    await this.syncing
    this.timer = setInterval(() => { this.enforce() }, this.init.recheckIntervalMs)
    this.timer.unref()
    this.logger.info({ peerId: this.peerId, listening: this.multiaddrs }, 'p2p host started')
  }

  async stop (): Promise<void> {
    const node = this.node
    if (node === undefined) return
    clearInterval(this.timer)
    this.timer = undefined
    this.directory.off('update', this.onDirectoryUpdate)
    this.node = undefined
    await this.syncing
    await node.stop()
    node.removeEventListener('connection:open', this.onConnectionOpen)
    node.removeEventListener('connection:close', this.onConnectionClose)
    this.logger.info('p2p host stopped')
  }

  private requireNode (): Libp2p {
    if (this.node === undefined) throw new P2PNotStartedError()
    return this.node
  }

  async handle (protocol: string, handler: P2PStreamHandler, options: P2PHandleOptions = {}): Promise<void> {
    this.handlers.set(protocol, { handler, options })
    await this.node?.handle(protocol, this.wrap(handler), { ...options, force: true })
  }

  async unhandle (protocol: string): Promise<void> {
    this.handlers.delete(protocol)
    await this.node?.unhandle(protocol)
  }

  /** The gate was passed at connection time; the stream is checked again, in case the directory changed since. */
  private wrap (handler: P2PStreamHandler): (stream: Stream, connection: Connection) => Promise<void> {
    return async (stream, connection) => {
      const peerId = connection.remotePeer.toString()
      const decision = this.gating.check(peerId)
      if (!decision.allowed) {
        resetStream(stream, new PeerNotAllowedError(peerId, decision.reason))
        return
      }
      const { entry } = decision
      try {
        await handler(stream, { peerId, ura: entry.ura, name: entry.institution.name, entry, connection })
      } catch (err) {
        const log = isBeeldnetError(err) ? { peerId, protocol: stream.protocol, code: err.code } : { peerId, protocol: stream.protocol, err }
        this.logger.warn(log, `stream handler failed: ${(err as Error).message}`)
        resetStream(stream, err as Error)
      }
    }
  }

  async dialProtocol (peerId: string, protocol: string, { signal }: { signal?: AbortSignal } = {}): Promise<Stream> {
    const node = this.requireNode()
    const decision = this.gating.check(peerId)
    if (!decision.allowed) {
      this.gating.countRefusal('outbound', decision.reason)
      throw new PeerNotAllowedError(peerId, decision.reason)
    }
    await this.syncing
    try {
      return await node.dialProtocol(peerIdFromString(peerId), protocol, { signal })
    } catch (err) {
      if (signal?.aborted === true) throw err
      const name = (err as Error).name
      if (name === 'UnsupportedProtocolError') throw new ProtocolUnsupportedError(peerId, protocol)
      if (name === 'DialDeniedError') {
        const now = this.gating.check(peerId)
        throw new PeerNotAllowedError(peerId, now.allowed ? 'unknown-peer' : now.reason)
      }
      throw new PeerUnreachableError(peerId, err)
    }
  }

  async connect (peerId: string, { signal }: { signal?: AbortSignal } = {}): Promise<void> {
    const node = this.requireNode()
    const decision = this.gating.check(peerId)
    if (!decision.allowed) throw new PeerNotAllowedError(peerId, decision.reason)
    await this.syncing
    try {
      await node.dial(peerIdFromString(peerId), { signal })
    } catch (err) {
      if (signal?.aborted === true) throw err
      throw new PeerUnreachableError(peerId, err)
    }
  }

  connectedPeers (): ConnectedPeer[] {
    const byPeer = new Map<string, ConnectedPeer>()
    for (const conn of this.node?.getConnections() ?? []) {
      if (conn.status !== 'open') continue
      const peerId = conn.remotePeer.toString()
      const seen = byPeer.get(peerId)
      if (seen !== undefined) { seen.connections++; continue }
      const entry = this.gating.institutionOf(peerId)
      byPeer.set(peerId, { peerId, ura: entry?.ura ?? null, name: entry?.institution.name ?? null, connections: 1 })
    }
    return [...byPeer.values()]
  }

  remoteHostOf (peerId: string): string | undefined {
    for (const conn of this.node?.getConnections(peerIdFromString(peerId)) ?? []) {
      if (conn.status !== 'open') continue
      const address = conn.remoteAddr.getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6' || c.name === 'dns4' || c.name === 'dns6' || c.name === 'dns')
      if (address?.value !== undefined) return address.value
    }
    return undefined
  }

  institutionOf (peerId: string): PeerEntry | undefined {
    return this.gating.institutionOf(peerId)
  }

  status (): P2PStatus {
    return { running: this.node !== undefined, peerId: this.peerId, listening: this.multiaddrs, peers: this.connectedPeers(), refusals: this.gating.refusals() }
  }

  private readonly onConnectionOpen = (evt: CustomEvent<Connection>): void => {
    const connection = evt.detail
    const peerId = connection.remotePeer.toString()
    const ura = this.gating.institutionOf(peerId)?.ura ?? null
    this.logger.debug({ peerId, ura, direction: connection.direction, remoteAddr: connection.remoteAddr.toString() }, 'peer connected')
    this.emit('peer-connected', { peerId, ura, direction: connection.direction, connection })
  }

  private readonly onConnectionClose = (evt: CustomEvent<Connection>): void => {
    const peerId = evt.detail.remotePeer.toString()
    if (this.node?.getConnections(evt.detail.remotePeer).some((c) => c.status === 'open') === true) return
    this.emit('peer-disconnected', { peerId })
  }

  private readonly onDirectoryUpdate = (): void => {
    this.syncPeerStore()
    this.enforce()
  }

  /** Closes every connection the directory no longer admits, once per peer with an event. */
  private enforce (): void {
    const node = this.node
    if (node === undefined) return
    const closed = new Map<string, PeerDisallowedEvent>()
    for (const conn of node.getConnections()) {
      const peerId = conn.remotePeer.toString()
      const decision = this.gating.check(peerId)
      if (decision.allowed) continue
      const err = new PeerNotAllowedError(peerId, decision.reason)
      this.gating.countRefusal('existing', decision.reason)
      // abort, not close: streams in flight fail now, with the code, instead of finishing
      conn.abort(err)
      closed.set(peerId, { peerId, ura: decision.entry?.ura ?? null, reason: decision.reason, code: 'BEELDNET_ERR_PEER_NOT_ALLOWED' })
    }
    for (const event of closed.values()) {
      this.logger.warn(event, `closed the connection to ${event.peerId}: ${event.reason}`)
      this.emit('peer-disallowed', event)
    }
  }

  /** The peer store holds exactly the admitted peers, at the addresses the directory lists. */
  private syncPeerStore (): void {
    const node = this.node
    if (node === undefined) return
    this.syncing = this.syncing.then(async () => {
      const allowed = new Map<string, PeerEntry>(this.gating.allowedPeers().map((e) => [e.peerId, e]))
      for (const peer of await node.peerStore.all()) {
        const id = peer.id.toString()
        if (!allowed.has(id) && id !== this.peerId) await node.peerStore.delete(peer.id)
      }
      for (const entry of allowed.values()) {
        if (entry.peerId === this.peerId) continue
        await node.peerStore.patch(toPeerId(entry.peerId), { multiaddrs: this.addressesOf(entry) })
      }
    }).catch((err: unknown) => { this.logger.error({ err }, 'cannot update the peer store from the directory') })
  }

  private addressesOf (entry: PeerEntry): Multiaddr[] {
    const out: Multiaddr[] = []
    for (const address of entry.node.addresses) {
      try {
        out.push(multiaddr(address))
      } catch {
        this.logger.warn({ peerId: entry.peerId, ura: entry.ura, address }, 'the directory lists an address that is not a multiaddr; skipped')
      }
    }
    return out
  }
}

function toPeerId (peerId: string): PeerId {
  return peerIdFromString(peerId)
}

export function createP2PHost (components: P2PHostComponents, init: P2PHostInit = {}): P2PHost {
  return new DefaultP2PHost(components, init)
}
