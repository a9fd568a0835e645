import { InvalidChangeError } from '../errors.ts'
import { directoryHash, verifyEnrolment } from './verify.ts'
import type { Change, Directory, Institution, NodeEntry, Root, SignedEnrolment } from './documents.ts'
import { entriesOf } from './entries-tree.ts'

/*
 * How proposals turn the current directory into the next candidate. Pure and deterministic: the
 * registry assembles the candidate with it, and each governance member recomputes it before
 * signing, so a registry that slipped in a change of its own would be caught by every signer.
 */

const DAY = 86_400_000

function plusDays (iso: string, days: number): string {
  return new Date(Date.parse(iso) + days * DAY).toISOString()
}

function nodeFromEnrolment (enrolment: SignedEnrolment, network: string, at: string): NodeEntry {
  const e = verifyEnrolment(enrolment, network).signed
  return { peerId: e.peerId, publicKey: e.publicKey, addresses: [...e.addresses], notBefore: at, status: 'active' }
}

function liveNode (inst: Institution, peerId: string): NodeEntry {
  const node = inst.nodes.find((n) => n.peerId === peerId)
  if (node === undefined) throw new InvalidChangeError(`URA ${inst.ura} has no node ${peerId}`)
  if (node.status === 'revoked') throw new InvalidChangeError(`node ${peerId} of URA ${inst.ura} is revoked`)
  return node
}

/** What one change did: the institution before (undefined: admitted) and after. */
export interface Applied {
  before: Institution | undefined
  after: Institution
}

/**
 * A directory's institutions being changed: by URA, with the node keys in use, so each change costs
 * what it touches rather than the whole directory (1,000 admissions to a directory of 10,000 are
 * linear, not 1,000 copies of it). An institution is copied on its first change; the list given is
 * never altered. A change that is refused changes nothing: every check comes before any write.
 */
export class DirectoryDraft {
  private readonly byUra: Map<string, Institution>
  private readonly peers = new Set<string>()
  private readonly owned = new Set<string>()
  private admitted = false

  constructor (institutions: readonly Institution[]) {
    this.byUra = new Map(institutions.map((i) => [i.ura, i]))
    for (const inst of institutions) for (const node of inst.nodes) this.peers.add(node.peerId)
  }

  private find (ura: string): Institution {
    const inst = this.byUra.get(ura)
    if (inst === undefined) throw new InvalidChangeError(`no institution with URA ${ura}`)
    return inst
  }

  /** The draft's own copy of `inst`, to change. */
  private own (inst: Institution): Institution {
    if (this.owned.has(inst.ura)) return inst
    const copy = structuredClone(inst)
    this.byUra.set(inst.ura, copy)
    this.owned.add(inst.ura)
    return copy
  }

  private assertNewKey (peerId: string): void {
    if (this.peers.has(peerId)) throw new InvalidChangeError(`node key ${peerId} is already in the directory (revoked keys are never re-admitted)`)
  }

  /** Applies one change at time `at` (the candidate's issue time); a renewal changes no institution. */
  apply (change: Change, network: string, at: string): Applied | undefined {
    switch (change.action) {
      case 'admit': {
        const e = change.enrolment.signed
        if (this.byUra.has(e.ura)) throw new InvalidChangeError(`URA ${e.ura} is already in the directory`)
        const node = nodeFromEnrolment(change.enrolment, network, at)
        this.assertNewKey(node.peerId)
        const after: Institution = { ura: e.ura, name: e.name, kind: e.kind, departments: structuredClone(e.departments), status: { state: 'active', since: at }, nodes: [node] }
        this.byUra.set(e.ura, after)
        this.owned.add(e.ura)
        this.peers.add(node.peerId)
        this.admitted = true
        return { before: undefined, after }
      }
      case 'update-addresses': {
        const before = this.find(change.ura)
        liveNode(before, change.peerId)
        const after = this.own(before)
        liveNode(after, change.peerId).addresses = [...change.addresses]
        return { before, after }
      }
      case 'add-node-key':
      case 'rotate-node-key': {
        const before = this.find(change.ura)
        if (change.enrolment.signed.ura !== change.ura) throw new InvalidChangeError(`the enrolment is for URA ${change.enrolment.signed.ura}, not ${change.ura}`)
        const node = nodeFromEnrolment(change.enrolment, network, at)
        this.assertNewKey(node.peerId)
        if (change.action === 'rotate-node-key') liveNode(before, change.oldPeerId)
        const after = this.own(before)
        // The old key keeps working through the overlap, so transfers in flight can finish.
        if (change.action === 'rotate-node-key') liveNode(after, change.oldPeerId).notAfter = plusDays(at, change.overlapDays)
        after.nodes.push(node)
        this.peers.add(node.peerId)
        return { before, after }
      }
      case 'revoke-node-key': {
        const before = this.find(change.ura)
        liveNode(before, change.peerId)
        const after = this.own(before)
        const node = liveNode(after, change.peerId)
        node.status = 'revoked'
        node.revoked = { since: at, reason: change.reason }
        return { before, after }
      }
      case 'suspend':
      case 'reinstate':
      case 'revoke': {
        const before = this.find(change.ura)
        const from = before.status.state
        const allowed = change.action === 'suspend' ? from === 'active' : change.action === 'reinstate' ? from === 'suspended' : from !== 'revoked'
        if (!allowed) throw new InvalidChangeError(`cannot ${change.action} URA ${change.ura}: it is ${from}`)
        const state = change.action === 'suspend' ? 'suspended' : change.action === 'reinstate' ? 'active' : 'revoked'
        const after = this.own(before)
        after.status = { state, since: at, reason: change.reason }
        // A revoked institution is a tombstone: its keys are revoked with it.
        if (state === 'revoked') {
          for (const node of after.nodes) {
            if (node.status === 'active') { node.status = 'revoked'; node.revoked = { since: at, reason: change.reason } }
          }
        }
        return { before, after }
      }
      case 'set-kind': {
        const before = this.find(change.ura)
        if (before.status.state === 'revoked') throw new InvalidChangeError(`URA ${change.ura} is revoked`)
        if (before.kind === change.kind) throw new InvalidChangeError(`URA ${change.ura} is ${change.kind} already`)
        const after = this.own(before)
        after.kind = change.kind
        return { before, after }
      }
      case 'renew':
        return undefined
      case 'update-root':
        throw new InvalidChangeError('update-root changes the root, not the directory')
    }
  }

  /** The institutions in URA order (sorted once, and only if an institution was admitted). */
  list (): Institution[] {
    const list = [...this.byUra.values()]
    if (this.admitted) list.sort((a, b) => a.ura < b.ura ? -1 : a.ura > b.ura ? 1 : 0)
    return list
  }
}

/** Applies one change at time `at` (the candidate's issue time); returns a new list, `institutions` untouched. */
export function applyChange (institutions: Institution[], change: Change, network: string, at: string): Institution[] {
  const draft = new DirectoryDraft(institutions)
  draft.apply(change, network, at)
  return draft.list()
}

export interface CandidateInit {
  /** when the candidate is issued (ISO 8601): also the time every change takes effect */
  issued: string
  /** how long the directory stays valid */
  validityDays: number
}

/** The next directory version with these institutions (in URA order): its header names them by their entries root. */
export function nextDirectory (current: Directory | undefined, root: Root, institutions: Institution[], init: CandidateInit): Directory {
  return {
    type: 'beeldnet/directory',
    network: root.network,
    version: (current?.version ?? 0) + 1,
    rootVersion: root.version,
    prev: current === undefined ? null : directoryHash(current),
    issued: init.issued,
    expires: plusDays(init.issued, init.validityDays),
    entries: entriesOf(institutions).entries,
    institutions
  }
}

/** The next directory version: the current one (if any) with `changes` applied in order. */
export function buildDirectoryCandidate (current: Directory | undefined, root: Root, changes: Change[], init: CandidateInit): Directory {
  const draft = new DirectoryDraft(current?.institutions ?? [])
  for (const change of changes) draft.apply(change, root.network, init.issued)
  return nextDirectory(current, root, draft.list(), init)
}

/** The next root version from an update-root change. */
export function buildRootCandidate (current: Root, change: Extract<Change, { action: 'update-root' }>, init: CandidateInit): Root {
  if (change.threshold > change.governanceKeys.length) throw new InvalidChangeError('the threshold cannot exceed the number of governance keys')
  return {
    ...current,
    version: current.version + 1,
    issued: init.issued,
    expires: plusDays(init.issued, init.validityDays),
    threshold: change.threshold,
    governanceKeys: change.governanceKeys,
    timestampKey: change.timestampKey ?? current.timestampKey
  }
}
