import type { Institution, NodeEntry, PublicKeyEntry, Root } from '../../protocol/registry/documents.ts'

/*
 * What changed between two lists of institutions (two directory versions, or the directory in
 * force and a candidate), as data rather than text, so the page can say it in either language.
 * It reads like protocol/registry/diff.ts, which the CLI prints before a member signs.
 */

export type State = Institution['status']['state']

export type DirectoryChange =
  | { type: 'institution-added', ura: string, name: string, state: State, nodes: number }
  | { type: 'institution-removed', ura: string, name: string }
  | { type: 'status-changed', ura: string, name: string, from: State, to: State, reason?: string }
  | { type: 'name-changed', ura: string, from: string, to: string }
  | { type: 'kind-changed', ura: string, name: string, from: string, to: string }
  | { type: 'departments-changed', ura: string, name: string, from: string[], to: string[] }
  | { type: 'key-added', ura: string, name: string, peerId: string, addresses: string[] }
  | { type: 'key-rotated', ura: string, name: string, oldPeerId: string, peerId: string, until: string }
  | { type: 'key-revoked', ura: string, name: string, peerId: string, reason?: string }
  | { type: 'key-removed', ura: string, name: string, peerId: string }
  | { type: 'key-validity-changed', ura: string, name: string, peerId: string, from?: string, to?: string }
  | { type: 'addresses-changed', ura: string, name: string, peerId: string, from: string[], to: string[] }

const departmentsOf = (i: Institution): string[] => i.departments.map((d) => `${d.code} ${d.name}`)
const same = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i])

function diffNodes (before: Institution, after: Institution): DirectoryChange[] {
  const { ura, name } = after
  const changes: DirectoryChange[] = []
  const added = after.nodes.filter((n) => !before.nodes.some((b) => b.peerId === n.peerId))
  // An old key that gets an end date in the version that adds a new one was rotated to it.
  const ending = after.nodes.filter((n) => {
    const old = before.nodes.find((b) => b.peerId === n.peerId)
    return old !== undefined && old.notAfter === undefined && n.notAfter !== undefined && n.status === 'active'
  })
  const rotations = new Map<string, NodeEntry>()
  for (const [i, n] of added.entries()) {
    const old = ending[i]
    if (old !== undefined) rotations.set(n.peerId, old)
  }
  for (const n of added) {
    const old = rotations.get(n.peerId)
    if (old !== undefined) changes.push({ type: 'key-rotated', ura, name, oldPeerId: old.peerId, peerId: n.peerId, until: old.notAfter! })
    else changes.push({ type: 'key-added', ura, name, peerId: n.peerId, addresses: n.addresses })
  }
  const rotatedOld = new Set([...rotations.values()].map((n) => n.peerId))
  for (const n of after.nodes) {
    const old = before.nodes.find((b) => b.peerId === n.peerId)
    if (old === undefined) continue
    if (old.status !== n.status) {
      changes.push({ type: 'key-revoked', ura, name, peerId: n.peerId, ...(n.revoked === undefined ? {} : { reason: n.revoked.reason }) })
    }
    if (old.notAfter !== n.notAfter && !rotatedOld.has(n.peerId)) {
      changes.push({ type: 'key-validity-changed', ura, name, peerId: n.peerId, ...(old.notAfter === undefined ? {} : { from: old.notAfter }), ...(n.notAfter === undefined ? {} : { to: n.notAfter }) })
    }
    if (!same(old.addresses, n.addresses)) changes.push({ type: 'addresses-changed', ura, name, peerId: n.peerId, from: old.addresses, to: n.addresses })
  }
  for (const n of before.nodes) {
    if (!after.nodes.some((a) => a.peerId === n.peerId)) changes.push({ type: 'key-removed', ura, name, peerId: n.peerId })
  }
  return changes
}

function diffInstitution (before: Institution, after: Institution): DirectoryChange[] {
  const { ura, name } = after
  const changes: DirectoryChange[] = []
  if (before.name !== after.name) changes.push({ type: 'name-changed', ura, from: before.name, to: after.name })
  if (before.kind !== after.kind) changes.push({ type: 'kind-changed', ura, name, from: before.kind, to: after.kind })
  if (before.status.state !== after.status.state) {
    changes.push({ type: 'status-changed', ura, name, from: before.status.state, to: after.status.state, ...(after.status.reason === undefined ? {} : { reason: after.status.reason }) })
  }
  if (!same(departmentsOf(before), departmentsOf(after))) changes.push({ type: 'departments-changed', ura, name, from: departmentsOf(before), to: departmentsOf(after) })
  let nodes = diffNodes(before, after)
  // Revoking an institution revokes its keys with the same reason: one event says it all.
  if (after.status.state === 'revoked' && before.status.state !== 'revoked') {
    nodes = nodes.filter((c) => !(c.type === 'key-revoked' && c.reason === after.status.reason))
  }
  return [...changes, ...nodes]
}

/** Every change from `before` to `after`, institution by institution (in `after`'s order). */
export function diffInstitutions (before: readonly Institution[], after: readonly Institution[]): DirectoryChange[] {
  const old = new Map(before.map((i) => [i.ura, i]))
  const changes: DirectoryChange[] = []
  for (const inst of after) {
    const prev = old.get(inst.ura)
    if (prev === undefined) {
      changes.push({ type: 'institution-added', ura: inst.ura, name: inst.name, state: inst.status.state, nodes: inst.nodes.length })
      for (const n of inst.nodes) changes.push({ type: 'key-added', ura: inst.ura, name: inst.name, peerId: n.peerId, addresses: n.addresses })
    } else {
      changes.push(...diffInstitution(prev, inst))
    }
    old.delete(inst.ura)
  }
  for (const gone of old.values()) changes.push({ type: 'institution-removed', ura: gone.ura, name: gone.name })
  return changes
}

export type RootChange =
  | { type: 'threshold-changed', from: number | null, to: number, of: number }
  | { type: 'governance-key-added', key: PublicKeyEntry }
  | { type: 'governance-key-removed', key: PublicKeyEntry }
  | { type: 'timestamp-key-changed', keyid: string }

/** How a root candidate differs from the root in force (undefined: root v1). */
export function diffRoot (before: Root | undefined, after: Root): RootChange[] {
  const changes: RootChange[] = []
  if (before?.threshold !== after.threshold || before.governanceKeys.length !== after.governanceKeys.length) {
    changes.push({ type: 'threshold-changed', from: before?.threshold ?? null, to: after.threshold, of: after.governanceKeys.length })
  }
  const had = new Set((before?.governanceKeys ?? []).map((k) => k.keyid))
  const has = new Set(after.governanceKeys.map((k) => k.keyid))
  for (const k of after.governanceKeys) if (!had.has(k.keyid)) changes.push({ type: 'governance-key-added', key: k })
  for (const k of before?.governanceKeys ?? []) if (!has.has(k.keyid)) changes.push({ type: 'governance-key-removed', key: k })
  if (before !== undefined && before.timestampKey.keyid !== after.timestampKey.keyid) changes.push({ type: 'timestamp-key-changed', keyid: after.timestampKey.keyid })
  return changes
}
