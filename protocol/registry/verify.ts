import { canonicalBytes, sha256Hex } from '../canonical.ts'
import {
  BelowThresholdError, BrokenChainError, DirectoryFormatError, EntriesMismatchError, ExpiredError, ForgedSignatureError, ForkError,
  InvalidEntryError, ProofOfPossessionError, RollbackError, UnknownRootError, WrongNetworkError
} from '../errors.ts'
import { isPeerIdOf, peerIdOfPublicKey, verifyBytes } from '../keys.ts'
import {
  headerOf, isSignedDirectory, parseDocument, SignedDirectory, SignedEnrolment, SignedProposal, SignedRoot, SignedTimestamp,
  type Directory, type DirectoryHeader, type Enrolment, type Institution, type Proposal, type PublicKeyEntry, type Root, type Signature, type Timestamp
} from './documents.ts'
import { entryLeafOfMany, EntriesTree, type EntryLeaf } from './entries-tree.ts'

/*
 * What a node (or a governance member, or the registry itself) checks before believing a registry
 * file. Nothing here trusts the server that delivered the file: a file proves itself against the
 * pinned root, or it is refused with the code of the first thing wrong with it.
 */

/** What a verifier already holds of a directory, to refuse rollbacks and forks. */
export interface HeldVersion {
  version: number
  hash: string
}

export interface Verified<T> {
  signed: T
  hash: string
  /** keyids whose signatures verified */
  signers: string[]
}

/**
 * Counts distinct keys from `keys` with a valid signature over `signedBytes`. A signature by a
 * listed key that does not verify means the document was altered after signing: that is forgery,
 * not merely too few signatures. Signatures by unlisted keys are ignored.
 */
export function checkThreshold (what: string, signedBytes: Uint8Array, signatures: Signature[], keys: PublicKeyEntry[], threshold: number): string[] {
  const byKeyid = new Map(keys.map((k) => [k.keyid, k]))
  const valid = new Set<string>()
  for (const s of signatures) {
    const key = byKeyid.get(s.keyid)
    if (key === undefined) continue
    if (!verifyBytes(signedBytes, s.sig, key.publicKey)) throw new ForgedSignatureError(what, s.keyid)
    valid.add(s.keyid)
  }
  if (valid.size < threshold) throw new BelowThresholdError(what, valid.size, threshold)
  return [...valid]
}

function checkNotExpired (what: string, expires: string, now: Date): void {
  if (Date.parse(expires) <= now.getTime()) throw new ExpiredError(what, expires)
}

/** A root that is its own first version: signed by a threshold of the keys it lists. */
export function verifyInitialRoot (value: unknown): Verified<Root> {
  const env = parseDocument(SignedRoot, value, 'root')
  const bytes = canonicalBytes(env.signed)
  const signers = checkThreshold(`root v${env.signed.version}`, bytes, env.signatures, env.signed.governanceKeys, env.signed.threshold)
  return { signed: env.signed, hash: sha256Hex(bytes), signers }
}

/** Root v(N+1) is believed only with a threshold of v(N)'s keys and a threshold of its own. */
export function verifyRootUpdate (trusted: Root, value: unknown): Verified<Root> {
  const env = parseDocument(SignedRoot, value, 'root')
  const next = env.signed
  if (next.network !== trusted.network) throw new WrongNetworkError(trusted.network, next.network)
  if (next.version <= trusted.version) throw new RollbackError('root', next.version, trusted.version)
  if (next.version !== trusted.version + 1) throw new UnknownRootError(`root v${next.version} does not follow v${trusted.version}; fetch the versions in between`)
  const bytes = canonicalBytes(next)
  const old = checkThreshold(`root v${next.version} (by the keys of v${trusted.version})`, bytes, env.signatures, trusted.governanceKeys, trusted.threshold)
  const own = checkThreshold(`root v${next.version} (by its own keys)`, bytes, env.signatures, next.governanceKeys, next.threshold)
  return { signed: next, hash: sha256Hex(bytes), signers: [...new Set([...old, ...own])] }
}

export interface DirectoryCheck {
  root: Root
  held?: HeldVersion
  now?: Date
}

/** A verified directory, with the trie of its entries: keep it to check deltas against this version. */
export interface VerifiedDirectory extends Verified<Directory> {
  tree: EntriesTree
}

/** The hash that names a directory version: SHA-256 of its header's canonical JSON (what is signed). */
export function directoryHash (header: DirectoryHeader): string {
  return sha256Hex(canonicalBytes(headerOf(header)))
}

/** The old format carried the institutions inside the signed part: refused with its own code. */
export function refuseOldFormat (value: unknown, what = 'the directory'): void {
  const signed = (value as { signed?: unknown } | null)?.signed
  if (typeof signed === 'object' && signed !== null && 'institutions' in signed && (signed as { entries?: unknown }).entries === undefined) {
    const version = (signed as { version?: unknown }).version
    throw new DirectoryFormatError(typeof version === 'number' ? `directory v${version}` : what)
  }
}

/**
 * One signed header against the root it names and the version held: signed by the threshold, not
 * older than what is held, chaining to it, not expired. Its entries are checked by the caller.
 */
export function verifyDirectoryHeader (header: DirectoryHeader, signatures: Signature[], check: DirectoryCheck): Verified<DirectoryHeader> {
  const { root, held } = check
  const now = check.now ?? new Date()
  const what = `directory v${header.version}`
  if (header.network !== root.network) throw new WrongNetworkError(root.network, header.network)
  if (header.rootVersion !== root.version) throw new UnknownRootError(`${what} is signed under root v${header.rootVersion}; this node trusts root v${root.version}`)
  const bytes = canonicalBytes(headerOf(header))
  const hash = sha256Hex(bytes)
  const signers = checkThreshold(what, bytes, signatures, root.governanceKeys, root.threshold)
  if (held !== undefined) {
    if (header.version < held.version) throw new RollbackError('directory', header.version, held.version)
    if (header.version === held.version && hash !== held.hash) throw new ForkError(header.version, held.hash, hash)
    if (header.version === held.version + 1 && header.prev !== held.hash) throw new BrokenChainError(`${what} does not follow the held v${held.version}: prev ${String(header.prev).slice(0, 16)} is not ${held.hash.slice(0, 16)}`)
    if (header.version > held.version + 1) throw new BrokenChainError(`${what} skips versions after the held v${held.version}; verify the versions in between`)
  } else if (header.version === 1 && header.prev !== null) {
    throw new BrokenChainError('directory v1 cannot have a predecessor')
  }
  checkNotExpired(what, header.expires, now)
  return { signed: header, hash, signers }
}

/**
 * Verifies one whole directory against the pinned root and the version held: its header (see
 * verifyDirectoryHeader), then its institutions: in URA order, each sensible, and together making
 * the entries root the header signs. What a node starting from nothing does; the signatures cover
 * a few hundred bytes, the institutions are hashed once each.
 */
export function verifyDirectory (value: unknown, check: DirectoryCheck): VerifiedDirectory {
  refuseOldFormat(value)
  // The hand-written check accepts only what the schema accepts, without zod's copy of every entry;
  // anything it doubts is parsed by zod, which refuses with the usual messages.
  const env = isSignedDirectory(value) ? value : parseDocument(SignedDirectory, value, 'directory')
  const header = verifyDirectoryHeader(env.signed, env.signatures, check)
  const tree = checkEntries(`directory v${env.signed.version}`, env.institutions, env.signed.entries)
  return { signed: { ...header.signed, institutions: env.institutions }, hash: header.hash, signers: header.signers, tree }
}

/** Verifies `versions` (ascending) one link at a time from `held`; returns the newest. */
export function verifyDirectoryChain (versions: unknown[], check: DirectoryCheck & { held: HeldVersion }): VerifiedDirectory {
  if (versions.length === 0) throw new BrokenChainError('no directory versions to verify')
  let held = check.held
  let last: VerifiedDirectory | undefined
  const now = check.now ?? new Date()
  for (const [i, value] of versions.entries()) {
    // Only the newest must still be valid today; the ones in between may have expired since.
    const isLast = i === versions.length - 1
    last = verifyDirectory(value, { root: check.root, held, now: isLast ? now : new Date(0) })
    held = { version: last.signed.version, hash: last.hash }
  }
  return last!
}

/** What a signature cannot make sensible in one entry: a key that is not its peer id's, a window that ends before it starts. */
export function entryProblem (inst: Institution): string | undefined {
  for (const node of inst.nodes) {
    if (!isPeerIdOf(node.peerId, node.publicKey)) return `node ${node.peerId} of URA ${inst.ura} does not match its public key`
    if (node.notAfter !== undefined && Date.parse(node.notAfter) <= Date.parse(node.notBefore)) return `node ${node.peerId} has notAfter before notBefore`
  }
  return undefined
}

/**
 * The institutions of a whole directory: strictly in URA order (so no URA twice), no node key
 * twice, and making the signed entries root. A mismatch is reported before a nonsensical entry:
 * entries that are not the signed ones say nothing about what governance signed.
 */
function checkEntries (what: string, institutions: Institution[], signed: { count: number, root: string }): EntriesTree {
  const peers = new Set<string>()
  const leaves = new Array<EntryLeaf>(institutions.length)
  let problem: string | undefined
  let previous = ''
  // One pass: each institution is checked and hashed while it is in the cache.
  for (let i = 0; i < institutions.length; i++) {
    const inst = institutions[i]!
    if (inst.ura <= previous) throw new InvalidEntryError(inst.ura === previous ? `URA ${inst.ura} appears twice` : `URA ${inst.ura} comes after ${previous}: institutions are listed in URA order`)
    previous = inst.ura
    if (problem === undefined) {
      problem = entryProblem(inst)
      for (const node of inst.nodes) {
        if (peers.has(node.peerId)) problem ??= `node ${node.peerId} appears twice`
        peers.add(node.peerId)
      }
    }
    leaves[i] = entryLeafOfMany(inst)
  }
  const tree = EntriesTree.fromSorted(leaves)
  if (tree.count !== signed.count || tree.root !== signed.root) throw new EntriesMismatchError(what, signed, { count: tree.count, root: tree.root })
  if (problem !== undefined) throw new InvalidEntryError(problem)
  return tree
}

/** A timestamp from the registry's online key: fresh, and naming a directory. */
export function verifyTimestamp (value: unknown, root: Root, now = new Date()): Verified<Timestamp> {
  const env = parseDocument(SignedTimestamp, value, 'timestamp')
  const ts = env.signed
  if (ts.network !== root.network) throw new WrongNetworkError(root.network, ts.network)
  const bytes = canonicalBytes(ts)
  const signers = checkThreshold('timestamp', bytes, env.signatures, [root.timestampKey], 1)
  checkNotExpired('timestamp', ts.expires, now)
  return { signed: ts, hash: sha256Hex(bytes), signers }
}

/** An enrolment proves possession: it is signed by the very key it asks to enrol. */
export function verifyEnrolment (value: unknown, network: string): Verified<Enrolment> {
  const env = parseDocument(SignedEnrolment, value, 'enrolment')
  const e = env.signed
  if (e.network !== network) throw new WrongNetworkError(network, e.network)
  if (peerIdOfPublicKey(e.publicKey) !== e.peerId) throw new ProofOfPossessionError(`peer id ${e.peerId} is not the peer id of the enrolled key`)
  const bytes = canonicalBytes(e)
  const own = env.signatures.filter((s) => s.keyid === sha256Hex(Buffer.from(e.publicKey, 'base64')))
  if (own.length === 0) throw new ProofOfPossessionError('the enrolment is not signed by the key it enrols')
  for (const s of own) if (!verifyBytes(bytes, s.sig, e.publicKey)) throw new ProofOfPossessionError('the enrolment\'s signature by the enrolled key does not verify')
  return { signed: e, hash: sha256Hex(bytes), signers: own.map((s) => s.keyid) }
}

/** A proposal counts only when a current governance member signed it. */
export function verifyProposal (value: unknown, root: Root): Verified<Proposal> {
  const env = parseDocument(SignedProposal, value, 'proposal')
  if (env.signed.network !== root.network) throw new WrongNetworkError(root.network, env.signed.network)
  const bytes = canonicalBytes(env.signed)
  const signers = checkThreshold('proposal', bytes, env.signatures, root.governanceKeys, 1)
  return { signed: env.signed, hash: sha256Hex(bytes), signers }
}

/** Is this peer, at this moment, an active node of an active institution? (Connection gating asks this.) */
export function isActiveNode (dir: Directory, peerId: string, now = new Date()): boolean {
  const t = now.getTime()
  for (const inst of dir.institutions) {
    if (inst.status.state !== 'active') continue
    for (const node of inst.nodes) {
      if (node.peerId !== peerId || node.status !== 'active') continue
      if (Date.parse(node.notBefore) > t) return false
      return node.notAfter === undefined || Date.parse(node.notAfter) > t
    }
  }
  return false
}
