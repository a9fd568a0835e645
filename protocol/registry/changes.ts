import { hashOfSigned } from '../canonical.ts'
import { InvalidChangeError } from '../errors.ts'
import { verifyEnrolment } from './verify.ts'
import type { Change, Directory, Institution, NodeEntry, Root, SignedEnrolment } from './documents.ts'

/*
 * How proposals turn the current directory into the next candidate. Pure and deterministic: the
 * registry assembles the candidate with it, and each governance member recomputes it before
 * signing, so a registry that slipped in a change of its own would be caught by every signer.
 */

const DAY = 86_400_000

function plusDays (iso: string, days: number): string {
  return new Date(Date.parse(iso) + days * DAY).toISOString()
}

function find (list: Institution[], ura: string): Institution {
  const inst = list.find((i) => i.ura === ura)
  if (inst === undefined) throw new InvalidChangeError(`no institution with URA ${ura}`)
  return inst
}

function nodeFromEnrolment (enrolment: SignedEnrolment, network: string, at: string): NodeEntry {
  const e = verifyEnrolment(enrolment, network).signed
  return { peerId: e.peerId, publicKey: e.publicKey, addresses: e.addresses, notBefore: at, status: 'active' }
}

function assertNewKey (list: Institution[], peerId: string): void {
  if (list.some((i) => i.nodes.some((n) => n.peerId === peerId))) throw new InvalidChangeError(`node key ${peerId} is already in the directory (revoked keys are never re-admitted)`)
}

function liveNode (inst: Institution, peerId: string): NodeEntry {
  const node = inst.nodes.find((n) => n.peerId === peerId)
  if (node === undefined) throw new InvalidChangeError(`URA ${inst.ura} has no node ${peerId}`)
  if (node.status === 'revoked') throw new InvalidChangeError(`node ${peerId} of URA ${inst.ura} is revoked`)
  return node
}

/** Applies one change at time `at` (the candidate's issue time); returns a new list. */
export function applyChange (institutions: Institution[], change: Change, network: string, at: string): Institution[] {
  const list = structuredClone(institutions)
  switch (change.action) {
    case 'admit': {
      const e = change.enrolment.signed
      if (list.some((i) => i.ura === e.ura)) throw new InvalidChangeError(`URA ${e.ura} is already in the directory`)
      const node = nodeFromEnrolment(change.enrolment, network, at)
      assertNewKey(list, node.peerId)
      list.push({ ura: e.ura, name: e.name, kind: e.kind, departments: e.departments, status: { state: 'active', since: at }, nodes: [node] })
      break
    }
    case 'update-addresses':
      liveNode(find(list, change.ura), change.peerId).addresses = change.addresses
      break
    case 'add-node-key':
    case 'rotate-node-key': {
      const inst = find(list, change.ura)
      if (change.enrolment.signed.ura !== change.ura) throw new InvalidChangeError(`the enrolment is for URA ${change.enrolment.signed.ura}, not ${change.ura}`)
      const node = nodeFromEnrolment(change.enrolment, network, at)
      assertNewKey(list, node.peerId)
      if (change.action === 'rotate-node-key') {
        // The old key keeps working through the overlap, so transfers in flight can finish.
        liveNode(inst, change.oldPeerId).notAfter = plusDays(at, change.overlapDays)
      }
      inst.nodes.push(node)
      break
    }
    case 'revoke-node-key': {
      const node = liveNode(find(list, change.ura), change.peerId)
      node.status = 'revoked'
      node.revoked = { since: at, reason: change.reason }
      break
    }
    case 'suspend':
    case 'reinstate':
    case 'revoke': {
      const inst = find(list, change.ura)
      const from = inst.status.state
      const allowed = change.action === 'suspend' ? from === 'active' : change.action === 'reinstate' ? from === 'suspended' : from !== 'revoked'
      if (!allowed) throw new InvalidChangeError(`cannot ${change.action} URA ${change.ura}: it is ${from}`)
      const state = change.action === 'suspend' ? 'suspended' : change.action === 'reinstate' ? 'active' : 'revoked'
      inst.status = { state, since: at, reason: change.reason }
      // A revoked institution is a tombstone: its keys are revoked with it.
      if (state === 'revoked') {
        for (const node of inst.nodes) {
          if (node.status === 'active') { node.status = 'revoked'; node.revoked = { since: at, reason: change.reason } }
        }
      }
      break
    }
    case 'set-kind': {
      const inst = find(list, change.ura)
      if (inst.status.state === 'revoked') throw new InvalidChangeError(`URA ${change.ura} is revoked`)
      if (inst.kind === change.kind) throw new InvalidChangeError(`URA ${change.ura} is ${change.kind} already`)
      inst.kind = change.kind
      break
    }
    case 'renew':
      break
    case 'update-root':
      throw new InvalidChangeError('update-root changes the root, not the directory')
  }
  list.sort((a, b) => a.ura.localeCompare(b.ura))
  return list
}

export interface CandidateInit {
  /** when the candidate is issued (ISO 8601): also the time every change takes effect */
  issued: string
  /** how long the directory stays valid */
  validityDays: number
}

/** The next directory version: the current one (if any) with `changes` applied in order. */
export function buildDirectoryCandidate (current: Directory | undefined, root: Root, changes: Change[], init: CandidateInit): Directory {
  let institutions = current?.institutions ?? []
  for (const change of changes) institutions = applyChange(institutions, change, root.network, init.issued)
  return {
    type: 'beeldnet/directory',
    network: root.network,
    version: (current?.version ?? 0) + 1,
    rootVersion: root.version,
    prev: current === undefined ? null : hashOfSigned(current),
    issued: init.issued,
    expires: plusDays(init.issued, init.validityDays),
    institutions
  }
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
