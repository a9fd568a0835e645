import { EntriesMismatchError, InvalidEntryError, UnknownRootError } from '../errors.ts'
import {
  canonicalInstitution, DirectoryDelta, headerOf, isDirectoryDelta, parseDocument,
  type Directory, type Institution, type Root, type SignedDirectoryHeader
} from './documents.ts'
import { entryLeaf, type EntriesTree } from './entries-tree.ts'
import { entryProblem, verifyDirectoryHeader, type HeldVersion, type Verified, type VerifiedDirectory } from './verify.ts'

/*
 * Directory deltas: from the version a verifier holds (N) to a newer one (M), the signed headers of
 * N+1..M and the institutions that differ between N and M. A verifier holding N, with the trie of
 * its entries, checks each header as it would a whole directory's (threshold, chain, root rules),
 * puts the changed institutions into its trie (at most 8 branches rehashed each) and compares the
 * result with M's signed entries root: the cost follows the change, and what it ends up holding is
 * exactly what verifying M whole gives (same header, same hash, same institutions in URA order).
 */

/** What a verifier holds to take a delta: the directory, its hash and the trie of its entries. */
export interface HeldDirectory {
  directory: Directory
  hash: string
  tree: EntriesTree
}

export interface DeltaCheck {
  /** every verified root, by version: a delta may span a root rotation */
  roots: ReadonlyMap<number, Root>
  /** the root in force: the newest header must be signed under it */
  current: Root
  held: HeldDirectory
  now?: Date
}

/** Institutions sorted by URA, each URA once: what a delta's upserts must be. */
function checkOrder (what: string, list: readonly { ura: string }[] | readonly string[]): void {
  let previous = ''
  for (const item of list) {
    const ura = typeof item === 'string' ? item : item.ura
    if (ura <= previous) throw new InvalidEntryError(`${what}: URA ${ura} ${ura === previous ? 'appears twice' : `comes after ${previous}`}; a delta lists URAs once, in order`)
    previous = ura
  }
}

/** `held` (URA order) with `upserts` put in and `removals` taken out, in URA order. */
function merged (held: readonly Institution[], upserts: readonly Institution[], removals: ReadonlySet<string>): Institution[] {
  const out: Institution[] = []
  let u = 0
  for (const inst of held) {
    while (u < upserts.length && upserts[u]!.ura < inst.ura) out.push(upserts[u++]!)
    if (u < upserts.length && upserts[u]!.ura === inst.ura) { out.push(upserts[u++]!); continue }
    if (!removals.has(inst.ura)) out.push(inst)
  }
  while (u < upserts.length) out.push(upserts[u++]!)
  return out
}

/** The institution with `ura` in a list in URA order. */
function findByUra (list: readonly Institution[], ura: string): Institution | undefined {
  let lo = 0
  let hi = list.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    const at = list[mid]!.ura
    if (at === ura) return list[mid]
    if (at < ura) lo = mid + 1
    else hi = mid
  }
  return undefined
}

/**
 * No node key twice: keys new in this delta (not in the held version of the same institution) are
 * looked for in the rest of the held directory, a scan made only when a delta brings a new key.
 */
function checkNewKeys (held: readonly Institution[], upserts: readonly Institution[], removals: ReadonlySet<string>): void {
  const seen = new Set<string>()
  const fresh = new Set<string>()
  for (const inst of upserts) {
    const before = findByUra(held, inst.ura)
    for (const node of inst.nodes) {
      if (seen.has(node.peerId)) throw new InvalidEntryError(`node ${node.peerId} appears twice`)
      seen.add(node.peerId)
      if (before === undefined || !before.nodes.some((n) => n.peerId === node.peerId)) fresh.add(node.peerId)
    }
  }
  if (fresh.size === 0) return
  const touched = new Set([...upserts.map((i) => i.ura), ...removals])
  for (const inst of held) {
    if (touched.has(inst.ura)) continue
    for (const node of inst.nodes) if (fresh.has(node.peerId)) throw new InvalidEntryError(`node ${node.peerId} appears twice`)
  }
}

/**
 * Verifies a delta against the held directory and returns the newer one, as verifyDirectory would
 * return it for the whole version (plus its trie). Refusals: the schema's, the header checks'
 * (FORGED, BELOW_THRESHOLD, ROLLBACK for a replayed delta, BROKEN_CHAIN for a delta on another base,
 * FORK, EXPIRED, UNKNOWN_ROOT), ENTRIES_MISMATCH when the institutions do not make the signed root,
 * INVALID_ENTRY for an entry no signature makes sensible.
 */
export function verifyDirectoryDelta (value: unknown, check: DeltaCheck): VerifiedDirectory {
  const delta = isDirectoryDelta(value) ? value : parseDocument(DirectoryDelta, value, 'directory delta')
  const { held, roots, current } = check
  const now = check.now ?? new Date()
  const last = delta.headers.at(-1)!.signed
  const what = `the delta to directory v${last.version} on the held v${held.directory.version}`
  let link: HeldVersion = { version: held.directory.version, hash: held.hash }
  let rootVersion = held.directory.rootVersion
  let verified: Verified<unknown> | undefined
  for (const [i, { signed, signatures }] of delta.headers.entries()) {
    const newest = i === delta.headers.length - 1
    if (newest && signed.rootVersion !== current.version) {
      throw new UnknownRootError(`directory v${signed.version} is signed under root v${signed.rootVersion}; the root in force is v${current.version}`)
    }
    if (signed.rootVersion < rootVersion) throw new UnknownRootError(`directory v${signed.version} goes back to root v${signed.rootVersion} after root v${rootVersion}`)
    const root = roots.get(signed.rootVersion)
    if (root === undefined) throw new UnknownRootError(`directory v${signed.version} is signed under root v${signed.rootVersion}, which this verifier has not verified`)
    // Only the newest must still be valid today; the ones in between may have expired since.
    verified = verifyDirectoryHeader(signed, signatures, { root, held: link, now: newest ? now : new Date(0) })
    link = { version: signed.version, hash: verified.hash }
    rootVersion = signed.rootVersion
  }
  checkOrder(what, delta.upserts)
  checkOrder(what, delta.removals)
  const removals = new Set(delta.removals)
  for (const ura of removals) {
    if (held.tree.get(ura) === undefined) throw new InvalidEntryError(`${what} removes URA ${ura}, which the held version does not list`)
  }
  let problem: string | undefined
  const leaves = delta.upserts.map((inst) => {
    if (removals.has(inst.ura)) throw new InvalidEntryError(`${what}: URA ${inst.ura} is both changed and removed`)
    problem ??= entryProblem(inst)
    return entryLeaf(inst)
  })
  const tree = held.tree.with(leaves, delta.removals)
  if (tree.count !== last.entries.count || tree.root !== last.entries.root) throw new EntriesMismatchError(what, last.entries, { count: tree.count, root: tree.root })
  if (problem !== undefined) throw new InvalidEntryError(problem)
  checkNewKeys(held.directory.institutions, delta.upserts, removals)
  const institutions = merged(held.directory.institutions, delta.upserts, removals)
  return { signed: { ...headerOf(last), institutions }, hash: link.hash, signers: verified!.signers, tree }
}

/**
 * The delta from `from` to `to` (both verified, in URA order) with the signed headers of the
 * versions after `from` up to `to`: what the registry serves at /v1/directories/:from/delta.
 */
export function makeDirectoryDelta (from: Directory, to: Directory, headers: SignedDirectoryHeader[]): DirectoryDelta {
  const upserts: Institution[] = []
  const removals: string[] = []
  let f = 0
  for (const inst of to.institutions) {
    while (f < from.institutions.length && from.institutions[f]!.ura < inst.ura) removals.push(from.institutions[f++]!.ura)
    const before = f < from.institutions.length && from.institutions[f]!.ura === inst.ura ? from.institutions[f++] : undefined
    // Unchanged institutions are often the very same objects (a candidate shares them); else compare their canonical text.
    if (before === inst) continue
    if (before === undefined || canonicalInstitution(before) !== canonicalInstitution(inst)) upserts.push(inst)
  }
  while (f < from.institutions.length) removals.push(from.institutions[f++]!.ura)
  return { type: 'beeldnet/directory-delta', headers, upserts, removals }
}
