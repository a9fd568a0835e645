import type { ConnectionGater, PeerId } from '@libp2p/interface'
import type { Directory, Institution, NodeEntry } from '../../protocol/registry/documents.ts'

/*
 * Who may connect: only a peer id that is, right now, an active node (status active, between its
 * notBefore and notAfter: a rotated-out key keeps working until its notAfter) of an institution
 * whose status is active, in the verified directory. Checked at dial time and again right after
 * the Noise handshake proves the remote's key, in both directions, before any protocol runs.
 * The directory is read from the directory service on every decision (re-indexed when it changes),
 * so a new version applies at once; the host closes the connections a new version no longer allows.
 */

export type RefusalReason =
  | 'no-directory'
  | 'unknown-peer'
  | 'institution-suspended'
  | 'institution-revoked'
  | 'key-revoked'
  | 'key-not-yet-valid'
  | 'key-expired'

export type RefusalDirection = 'inbound' | 'outbound' | 'existing'

/** A node key as the directory lists it, with its institution. */
export interface PeerEntry {
  peerId: string
  ura: string
  institution: Institution
  node: NodeEntry
}

export type GatingDecision =
  | { allowed: true, entry: PeerEntry }
  | { allowed: false, reason: RefusalReason, entry?: PeerEntry }

export interface RefusalCount {
  direction: RefusalDirection
  reason: RefusalReason
  count: number
}

export interface PeerGatingComponents {
  /** the directory service (only `.directory`, the verified directory held now, is read) */
  directory: { readonly directory: Directory | undefined }
}

export interface PeerGatingInit {
  /** the clock (default () => new Date()) */
  now?: () => Date
  /** a node whose notBefore is at most this far ahead of our clock is admitted: clocks differ a little (default 300_000) */
  clockSkewMs?: number
}

export interface PeerGating {
  /** what the directory says about this peer now */
  check (peerId: string): GatingDecision
  /** the directory's entry for this peer (whatever its status), for protocol handlers */
  institutionOf (peerId: string): PeerEntry | undefined
  /** every node the directory admits now */
  allowedPeers (): PeerEntry[]
  /** every node the directory lists for institution `ura`, whatever its status (to say why none is admitted) */
  entriesOf (ura: string): PeerEntry[]
  /** counts a refusal (the gater does this itself; the host counts connections it closes as 'existing') */
  countRefusal (direction: RefusalDirection, reason: RefusalReason): void
  /** refusals so far, by direction and reason (for metrics) */
  refusals (): RefusalCount[]
  /** the libp2p connection gater that applies `check` */
  readonly connectionGater: ConnectionGater
}

class DefaultPeerGating implements PeerGating {
  private readonly source: { readonly directory: Directory | undefined }
  private readonly now: () => Date
  private readonly clockSkewMs: number
  private indexed: Directory | undefined
  private index = new Map<string, PeerEntry>()
  private readonly counts = new Map<string, RefusalCount>()
  readonly connectionGater: ConnectionGater

  constructor (components: PeerGatingComponents, init: PeerGatingInit) {
    this.source = components.directory
    this.now = init.now ?? (() => new Date())
    this.clockSkewMs = init.clockSkewMs ?? 300_000
    const deny = (direction: RefusalDirection) => (peerId: PeerId): boolean => this.deny(direction, peerId.toString())
    this.connectionGater = {
      denyDialPeer: deny('outbound'),
      denyOutboundEncryptedConnection: deny('outbound'),
      denyInboundEncryptedConnection: deny('inbound'),
      // checked again once muxed: the directory may have changed during the upgrade
      denyOutboundUpgradedConnection: deny('outbound'),
      denyInboundUpgradedConnection: deny('inbound'),
      // nobody relays for us and we relay for nobody
      denyInboundRelayReservation: () => true,
      denyOutboundRelayedConnection: () => true,
      denyInboundRelayedConnection: () => true,
      // the peer store holds addresses of admitted peers only (they come from the directory)
      filterMultiaddrForPeer: (peerId) => this.check(peerId.toString()).allowed
    }
  }

  private deny (direction: RefusalDirection, peerId: string): boolean {
    const decision = this.check(peerId)
    if (decision.allowed) return false
    this.countRefusal(direction, decision.reason)
    return true
  }

  private entries (): Map<string, PeerEntry> | undefined {
    const dir = this.source.directory
    if (dir === undefined) return undefined
    if (dir !== this.indexed) {
      const index = new Map<string, PeerEntry>()
      for (const institution of dir.institutions) {
        for (const node of institution.nodes) index.set(node.peerId, { peerId: node.peerId, ura: institution.ura, institution, node })
      }
      this.index = index
      this.indexed = dir
    }
    return this.index
  }

  check (peerId: string): GatingDecision {
    const entries = this.entries()
    if (entries === undefined) return { allowed: false, reason: 'no-directory' }
    const entry = entries.get(peerId)
    if (entry === undefined) return { allowed: false, reason: 'unknown-peer' }
    const reason = refusalOf(entry, this.now().getTime(), this.clockSkewMs)
    return reason === undefined ? { allowed: true, entry } : { allowed: false, reason, entry }
  }

  institutionOf (peerId: string): PeerEntry | undefined {
    return this.entries()?.get(peerId)
  }

  allowedPeers (): PeerEntry[] {
    const t = this.now().getTime()
    return [...(this.entries()?.values() ?? [])].filter((e) => refusalOf(e, t, this.clockSkewMs) === undefined)
  }

  entriesOf (ura: string): PeerEntry[] {
    return [...(this.entries()?.values() ?? [])].filter((e) => e.ura === ura)
  }

  countRefusal (direction: RefusalDirection, reason: RefusalReason): void {
    const key = `${direction}:${reason}`
    const count = this.counts.get(key) ?? { direction, reason, count: 0 }
    count.count++
    this.counts.set(key, count)
  }

  refusals (): RefusalCount[] {
    return [...this.counts.values()].map((c) => ({ ...c }))
  }
}

/** Why this entry may not connect at time `t`, or undefined if it may. */
function refusalOf (entry: PeerEntry, t: number, clockSkewMs: number): RefusalReason | undefined {
  const state = entry.institution.status.state
  if (state === 'suspended') return 'institution-suspended'
  if (state === 'revoked') return 'institution-revoked'
  const { node } = entry
  if (node.status !== 'active') return 'key-revoked'
  if (Date.parse(node.notBefore) > t + clockSkewMs) return 'key-not-yet-valid'
  if (node.notAfter !== undefined && Date.parse(node.notAfter) <= t) return 'key-expired'
  return undefined
}

export function createPeerGating (components: PeerGatingComponents, init: PeerGatingInit = {}): PeerGating {
  return new DefaultPeerGating(components, init)
}
