import type { Directory, Institution, NodeEntry, Root } from './documents.ts'

/*
 * What a governance member reads before signing: every difference between the directory in force
 * and the candidate, one line each, in words rather than JSON.
 */

function describeNode (n: NodeEntry): string {
  const window = `from ${n.notBefore}${n.notAfter === undefined ? '' : ` until ${n.notAfter}`}`
  return `${n.peerId} [${n.addresses.join(', ') || 'no addresses'}] ${window}`
}

function diffNodes (ura: string, before: NodeEntry[], after: NodeEntry[]): string[] {
  const lines: string[] = []
  for (const n of after) {
    const old = before.find((b) => b.peerId === n.peerId)
    if (old === undefined) { lines.push(`+ ${ura} node key ${describeNode(n)}`); continue }
    if (old.status !== n.status) lines.push(`~ ${ura} node ${n.peerId} ${old.status} -> ${n.status}${n.revoked === undefined ? '' : ` (${n.revoked.reason})`}`)
    if (old.addresses.join(' ') !== n.addresses.join(' ')) lines.push(`~ ${ura} node ${n.peerId} addresses [${old.addresses.join(', ')}] -> [${n.addresses.join(', ')}]`)
    if (old.notAfter !== n.notAfter) lines.push(`~ ${ura} node ${n.peerId} valid until ${old.notAfter ?? 'open'} -> ${n.notAfter ?? 'open'}`)
  }
  for (const n of before) if (!after.some((a) => a.peerId === n.peerId)) lines.push(`- ${ura} node key ${n.peerId} REMOVED (keys should stay as tombstones)`)
  return lines
}

function diffInstitution (before: Institution, after: Institution): string[] {
  const lines: string[] = []
  const ura = after.ura
  if (before.name !== after.name) lines.push(`~ ${ura} name ${JSON.stringify(before.name)} -> ${JSON.stringify(after.name)}`)
  if (before.kind !== after.kind) lines.push(`~ ${ura} kind ${before.kind} -> ${after.kind}`)
  if (before.status.state !== after.status.state) {
    lines.push(`~ ${ura} ${after.name}: ${before.status.state} -> ${after.status.state}${after.status.reason === undefined ? '' : ` (${after.status.reason})`}`)
  }
  const deps = (i: Institution): string => i.departments.map((d) => `${d.code} ${d.name}`).join(', ')
  if (deps(before) !== deps(after)) lines.push(`~ ${ura} departments [${deps(before)}] -> [${deps(after)}]`)
  return [...lines, ...diffNodes(ura, before.nodes, after.nodes)]
}

/** Lines describing how `after` differs from `before` (undefined: the first directory). */
export function diffDirectories (before: Directory | undefined, after: Directory): string[] {
  const lines = [`directory v${before?.version ?? 0} -> v${after.version}, valid ${after.issued} .. ${after.expires}`]
  const old = new Map((before?.institutions ?? []).map((i) => [i.ura, i]))
  for (const inst of after.institutions) {
    const prev = old.get(inst.ura)
    if (prev === undefined) {
      lines.push(`+ ${inst.ura} ${inst.name} (${inst.kind}), ${inst.status.state}, departments [${inst.departments.map((d) => d.code).join(', ')}]`)
      for (const n of inst.nodes) lines.push(`+ ${inst.ura} node key ${describeNode(n)}`)
    } else {
      lines.push(...diffInstitution(prev, inst))
    }
    old.delete(inst.ura)
  }
  for (const gone of old.values()) lines.push(`- ${gone.ura} ${gone.name} REMOVED (institutions should stay as tombstones)`)
  if (lines.length === 1) lines.push('  no changes to institutions (renewal)')
  return lines
}

export function diffRoots (before: Root | undefined, after: Root): string[] {
  const names = (r: Root | undefined): string[] => (r?.governanceKeys ?? []).map((k) => `${k.name ?? '?'} ${k.keyid.slice(0, 16)}`)
  const lines = [`root v${before?.version ?? 0} -> v${after.version}: threshold ${before?.threshold ?? '-'} -> ${after.threshold} of ${after.governanceKeys.length}`]
  for (const k of names(after)) if (!names(before).includes(k)) lines.push(`+ governance key ${k}`)
  for (const k of names(before)) if (!names(after).includes(k)) lines.push(`- governance key ${k}`)
  if (before?.timestampKey.keyid !== after.timestampKey.keyid) lines.push(`~ timestamp key -> ${after.timestampKey.keyid.slice(0, 16)}`)
  return lines
}
