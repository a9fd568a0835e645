import { EventEmitter } from 'node:events'
import type { Stream } from '@libp2p/interface'
import type { Logger } from 'pino'
import { isBeeldnetError } from '../../protocol/errors.ts'
import { DirectoryHello, DirectoryOffer, MAX_OFFERED_VERSIONS, offersTo } from '../../protocol/p2p/directory-gossip.ts'
import { FrameMalformedError } from '../../protocol/p2p/errors.ts'
import { DIRECTORY_PROTOCOL } from '../../protocol/p2p/ids.ts'
import type { SignedDirectory } from '../../protocol/registry/documents.ts'
import type { DirectoryService, DirectoryUpdate } from '../directory/directory-service.ts'
import { DataTooLongError } from './errors.ts'
import type { P2PHost, PeerConnectedEvent } from './host.ts'
import { createFramedStream, receiveBytes, type FramedStream } from './stream-io.ts'

/*
 * Directory gossip (protocol/p2p/directory-gossip.ts): the node that dials a connection compares
 * directory (version, hash) with its peer, and whichever holds a newer one hands it over. What
 * arrives goes to directory.acceptDirectory(value, 'peer:<id>'), which verifies it against the
 * pinned root: a forged one is refused, a fork (same version, another hash) keeps both files and
 * raises the directory service's alarm. Versions seen while running are kept (a few dozen) so a
 * peer a few versions behind gets the whole chain; further behind, it is sent the newest only and,
 * if that does not chain, this node asks the registry instead (at most once a minute).
 */

export interface DirectoryGossipComponents {
  host: P2PHost
  directory: DirectoryService
  logger: Logger
}

export interface DirectoryGossipInit {
  /** largest offer accepted, in bytes of JSON (default 64 MiB) */
  maxDirectoryBytes?: number
  /** how many recent versions are kept to hand on (default 64, at most MAX_OFFERED_VERSIONS) */
  historySize?: number
  /** one exchange may take this long in all (default 60_000) */
  exchangeTimeoutMs?: number
  /** per frame: see FramedStreamInit.stallTimeoutMs (default 15_000) */
  stallTimeoutMs?: number
  /** compare with every connected peer when our directory changes, so news spreads (default true) */
  gossipOnUpdate?: boolean
  /** least time between registry refreshes asked for by a peer ahead of us by more than it can prove (default 60_000) */
  minRefreshIntervalMs?: number
}

export type ExchangeOutcome =
  /** same version, same hash */
  | 'in-step'
  /** we held the newer one and sent it */
  | 'served'
  /** we took the peer's newer one */
  | 'adopted'
  /** the peer's offer did not verify (code says why); we keep ours */
  | 'refused'
  /** same version, another hash: the alarm is raised, both files kept */
  | 'fork'
  /** the exchange itself broke (code says how) */
  | 'failed'

export interface DirectoryExchange {
  peerId: string
  role: 'dialler' | 'listener'
  local: { version: number | null, hash: string | null }
  remote: { version: number | null, hash: string | null } | null
  outcome: ExchangeOutcome
  code?: string
}

export interface DirectoryGossipEvents {
  exchange: [DirectoryExchange]
}

export interface DirectoryGossip extends EventEmitter<DirectoryGossipEvents> {
  start (): Promise<void>
  stop (): Promise<void>
  /** compares directories with a connected (or reachable) peer now, as the dialler */
  exchange (peerId: string, signal?: AbortSignal): Promise<DirectoryExchange>
}

const MiB = 1024 * 1024

class DefaultDirectoryGossip extends EventEmitter<DirectoryGossipEvents> implements DirectoryGossip {
  private readonly host: P2PHost
  private readonly directory: DirectoryService
  private readonly logger: Logger
  private readonly maxDirectoryBytes: number
  private readonly historySize: number
  private readonly exchangeTimeoutMs: number
  private readonly stallTimeoutMs: number
  private readonly gossipOnUpdate: boolean
  private readonly minRefreshIntervalMs: number
  /** recent envelopes by version (only the held one after a restart) */
  private readonly history = new Map<number, SignedDirectory>()
  private readonly inFlight = new Map<string, Promise<DirectoryExchange>>()
  private stopping = new AbortController()
  private lastRefresh = 0
  private running = false

  constructor (components: DirectoryGossipComponents, init: DirectoryGossipInit) {
    super()
    this.host = components.host
    this.directory = components.directory
    this.logger = components.logger.child({ component: 'gossip' })
    this.maxDirectoryBytes = init.maxDirectoryBytes ?? 64 * MiB
    this.historySize = Math.min(init.historySize ?? MAX_OFFERED_VERSIONS, MAX_OFFERED_VERSIONS)
    this.exchangeTimeoutMs = init.exchangeTimeoutMs ?? 60_000
    this.stallTimeoutMs = init.stallTimeoutMs ?? 15_000
    this.gossipOnUpdate = init.gossipOnUpdate ?? true
    this.minRefreshIntervalMs = init.minRefreshIntervalMs ?? 60_000
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    this.stopping = new AbortController()
    this.remember()
    await this.host.handle(DIRECTORY_PROTOCOL, (stream, peer) => this.serve(stream, peer.peerId), { maxInboundStreams: 4 })
    this.host.on('peer-connected', this.onPeerConnected)
    this.directory.on('update', this.onUpdate)
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.host.off('peer-connected', this.onPeerConnected)
    this.directory.off('update', this.onUpdate)
    this.stopping.abort(new Error('directory gossip stopping'))
    await Promise.allSettled(this.inFlight.values())
    await this.host.unhandle(DIRECTORY_PROTOCOL)
  }

  /** The dialler starts the exchange, so one connection gives one exchange. */
  private readonly onPeerConnected = (event: PeerConnectedEvent): void => {
    if (event.direction !== 'outbound') return
    void this.exchange(event.peerId).catch(() => {})
  }

  private readonly onUpdate = (update: DirectoryUpdate): void => {
    this.remember()
    if (!this.gossipOnUpdate) return
    for (const peer of this.host.connectedPeers()) {
      // the peer that just gave us this version has it already
      if (update.source === `peer:${peer.peerId}`) continue
      void this.exchange(peer.peerId).catch(() => {})
    }
  }

  /** Keeps the held envelope; versions kept stay only while they chain up to it. */
  private remember (): void {
    const held = this.directory.heldEnvelope()
    if (held === undefined) return
    this.history.set(held.signed.version, held)
    for (const version of this.history.keys()) {
      if (version > held.signed.version || version <= held.signed.version - this.historySize) this.history.delete(version)
    }
  }

  private local (): DirectoryHello {
    const { directoryVersion, hash } = this.directory.status()
    return { type: 'hello', version: directoryVersion, hash }
  }

  async exchange (peerId: string, signal?: AbortSignal): Promise<DirectoryExchange> {
    const pending = this.inFlight.get(peerId)
    if (pending !== undefined) return pending
    const run = this.dial(peerId, signal).finally(() => { this.inFlight.delete(peerId) })
    this.inFlight.set(peerId, run)
    return run
  }

  private async dial (peerId: string, callerSignal?: AbortSignal): Promise<DirectoryExchange> {
    const signal = AbortSignal.any([this.stopping.signal, AbortSignal.timeout(this.exchangeTimeoutMs), ...(callerSignal === undefined ? [] : [callerSignal])])
    const local = this.local()
    let framed: FramedStream | undefined
    let remote: DirectoryHello | undefined
    try {
      framed = createFramedStream(await this.host.dialProtocol(peerId, DIRECTORY_PROTOCOL, { signal }), { stallTimeoutMs: this.stallTimeoutMs })
      await framed.writeControl(local, signal)
      remote = await framed.readControl(DirectoryHello, 'a directory hello', signal)
      let outcome: Pick<DirectoryExchange, 'outcome' | 'code'> = { outcome: 'in-step' }
      if (offersTo(remote, local)) outcome = await this.receiveOffer(framed, peerId, local, signal)
      if (offersTo(local, remote)) {
        await this.sendOffer(framed, remote, signal)
        if (outcome.outcome === 'in-step') outcome = { outcome: 'served' }
      }
      await this.finish(framed, signal)
      return this.report({ peerId, role: 'dialler', local: hashOf(local), remote: hashOf(remote), ...outcome })
    } catch (err) {
      if (signal.aborted) framed?.abort(signal.reason as Error)
      return this.report({ peerId, role: 'dialler', local: hashOf(local), remote: remote === undefined ? null : hashOf(remote), outcome: 'failed', code: codeOf(err) })
    }
  }

  private async serve (stream: Stream, peerId: string): Promise<void> {
    const signal = AbortSignal.any([this.stopping.signal, AbortSignal.timeout(this.exchangeTimeoutMs)])
    const framed = createFramedStream(stream, { stallTimeoutMs: this.stallTimeoutMs })
    const local = this.local()
    let remote: DirectoryHello | undefined
    try {
      remote = await framed.readControl(DirectoryHello, 'a directory hello', signal)
      await framed.writeControl(local, signal)
      let outcome: Pick<DirectoryExchange, 'outcome' | 'code'> = { outcome: 'in-step' }
      if (offersTo(local, remote)) {
        await this.sendOffer(framed, remote, signal)
        outcome = { outcome: 'served' }
      }
      if (offersTo(remote, local)) outcome = await this.receiveOffer(framed, peerId, local, signal)
      await this.finish(framed, signal)
      this.report({ peerId, role: 'listener', local: hashOf(local), remote: hashOf(remote), ...outcome })
    } catch (err) {
      if (signal.aborted) framed.abort(signal.reason as Error)
      this.report({ peerId, role: 'listener', local: hashOf(local), remote: remote === undefined ? null : hashOf(remote), outcome: 'failed', code: codeOf(err) })
    }
  }

  /** Both ends close; nothing may follow. */
  private async finish (framed: FramedStream, signal: AbortSignal): Promise<void> {
    await framed.close(signal)
    const extra = await framed.next(signal)
    if (extra !== undefined) {
      const err = new FrameMalformedError(`a ${extra.type} frame after the directory exchange ended`)
      framed.abort(err)
      throw err
    }
  }

  /** The versions after the peer's if all are still kept, else the held one alone. */
  private offerFor (theirs: DirectoryHello): SignedDirectory[] {
    const held = this.directory.heldEnvelope()!
    const newest = held.signed.version
    if (theirs.version !== null && theirs.version < newest) {
      const chain: SignedDirectory[] = []
      for (let v = theirs.version + 1; v <= newest; v++) {
        const envelope = v === newest ? held : this.history.get(v)
        if (envelope === undefined) return [held]
        chain.push(envelope)
      }
      return chain
    }
    return [held]
  }

  private async sendOffer (framed: FramedStream, theirs: DirectoryHello, signal: AbortSignal): Promise<void> {
    const envelopes = this.offerFor(theirs)
    const bytes = Buffer.from(JSON.stringify(envelopes))
    await framed.writeControl({ type: 'offer', versions: envelopes.map((e) => e.signed.version), bytes: bytes.byteLength } satisfies DirectoryOffer, signal)
    await framed.writeData(bytes, signal)
    await framed.writeEnd(signal)
  }

  private async receiveOffer (framed: FramedStream, peerId: string, local: DirectoryHello, signal: AbortSignal): Promise<Pick<DirectoryExchange, 'outcome' | 'code'>> {
    const offer = await framed.readControl(DirectoryOffer, 'a directory offer', signal)
    if (offer.bytes > this.maxDirectoryBytes) {
      const err = new DataTooLongError(`a directory offer of ${offer.bytes} bytes`, this.maxDirectoryBytes)
      framed.abort(err)
      throw err
    }
    const bytes = await receiveBytes(framed, offer.bytes, { signal })
    if (bytes.byteLength !== offer.bytes) {
      const err = new FrameMalformedError(`the directory offer announced ${offer.bytes} bytes and carried ${bytes.byteLength}`)
      framed.abort(err)
      throw err
    }
    let envelopes: unknown
    try {
      envelopes = JSON.parse(Buffer.from(bytes).toString('utf8'))
    } catch {
      const err = new FrameMalformedError('a directory offer that is not JSON')
      framed.abort(err)
      throw err
    }
    // From here on the offer is well-formed: whatever verification says is our business, not a protocol error.
    try {
      const result = await this.directory.acceptDirectory(envelopes, `peer:${peerId}`, signal)
      return { outcome: result.changed ? 'adopted' : 'in-step' }
    } catch (err) {
      const code = codeOf(err)
      if (code === 'BEELDNET_ERR_FORK') return { outcome: 'fork', code }
      if (code === 'BEELDNET_ERR_BROKEN_CHAIN' && local.version !== null && offer.versions[0]! > local.version + 1) this.refreshFromRegistry(peerId)
      this.logger.warn({ peerId, code, offered: offer.versions }, `refused the directory offered by ${peerId}: ${(err as Error).message}`)
      return { outcome: 'refused', code }
    }
  }

  /** A peer is ahead by more versions than it kept: the registry (or a mirror) has them all. */
  private refreshFromRegistry (peerId: string): void {
    const now = Date.now()
    if (now - this.lastRefresh < this.minRefreshIntervalMs) return
    this.lastRefresh = now
    this.logger.info({ peerId }, 'a peer holds a newer directory than it can chain to ours: refreshing from the registry')
    this.directory.refresh(this.stopping.signal).catch((err: unknown) => {
      this.logger.warn({ code: codeOf(err) }, `refresh after gossip failed: ${(err as Error).message}`)
    })
  }

  private report (exchange: DirectoryExchange): DirectoryExchange {
    const level = exchange.outcome === 'failed' || exchange.outcome === 'fork' || exchange.outcome === 'refused' ? 'warn' : 'debug'
    this.logger[level]({ exchange }, `directory exchange with ${exchange.peerId}: ${exchange.outcome}`)
    this.emit('exchange', exchange)
    return exchange
  }
}

function hashOf (hello: DirectoryHello): { version: number | null, hash: string | null } {
  return { version: hello.version, hash: hello.hash }
}

function codeOf (err: unknown): string {
  return isBeeldnetError(err) ? err.code : 'BEELDNET_ERR_INTERNAL'
}

export function createDirectoryGossip (components: DirectoryGossipComponents, init: DirectoryGossipInit = {}): DirectoryGossip {
  return new DefaultDirectoryGossip(components, init)
}
