import { canonicalBytes, canonicalText, sha256Hex } from '../canonical.ts'
import {
  BelowThresholdError, BrokenChainError, ExpiredError, ForgedSignatureError, ForkError, InvalidEntryError,
  ProofOfPossessionError, RollbackError, UnknownRootError, WrongNetworkError
} from '../errors.ts'
import { peerIdOfPublicKey, verifyBytes } from '../keys.ts'
import {
  canonicalDirectoryText, isSignedDirectory, parseDocument, SignedDirectory, SignedEnrolment, SignedProposal, SignedRoot, SignedTimestamp,
  type Directory, type Enrolment, type Proposal, type PublicKeyEntry, type Root, type Signature, type Timestamp
} from './documents.ts'

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

/**
 * Verifies one directory against the pinned root and the version held: signed by the threshold,
 * not expired, not older than what is held, chaining to it, and internally consistent.
 */
export function verifyDirectory (value: unknown, check: DirectoryCheck): Verified<Directory> {
  const { root, held } = check
  const now = check.now ?? new Date()
  // The hand-written check accepts only what the schema accepts, without zod's copy of every entry;
  // anything it doubts is parsed by zod, which refuses with the usual messages.
  const fast = isSignedDirectory(value)
  const env = fast ? value : parseDocument(SignedDirectory, value, 'directory')
  const dir = env.signed
  const what = `directory v${dir.version}`
  if (dir.network !== root.network) throw new WrongNetworkError(root.network, dir.network)
  if (dir.rootVersion !== root.version) throw new UnknownRootError(`${what} is signed under root v${dir.rootVersion}; this node trusts root v${root.version}`)
  const bytes = Buffer.from((fast ? canonicalDirectoryText(dir) : undefined) ?? canonicalText(dir), 'utf8')
  const hash = sha256Hex(bytes)
  const signers = checkThreshold(what, bytes, env.signatures, root.governanceKeys, root.threshold)
  if (held !== undefined) {
    if (dir.version < held.version) throw new RollbackError('directory', dir.version, held.version)
    if (dir.version === held.version && hash !== held.hash) throw new ForkError(dir.version, held.hash, hash)
    if (dir.version === held.version + 1 && dir.prev !== held.hash) throw new BrokenChainError(`${what} does not follow the held v${held.version}: prev ${String(dir.prev).slice(0, 16)} is not ${held.hash.slice(0, 16)}`)
    if (dir.version > held.version + 1) throw new BrokenChainError(`${what} skips versions after the held v${held.version}; verify the versions in between`)
  } else if (dir.version === 1 && dir.prev !== null) {
    throw new BrokenChainError('directory v1 cannot have a predecessor')
  }
  checkNotExpired(what, dir.expires, now)
  checkEntries(dir)
  return { signed: dir, hash, signers }
}

/** Verifies `versions` (ascending) one link at a time from `held`; returns the newest. */
export function verifyDirectoryChain (versions: unknown[], check: DirectoryCheck & { held: HeldVersion }): Verified<Directory> {
  if (versions.length === 0) throw new BrokenChainError('no directory versions to verify')
  let held = check.held
  let last: Verified<Directory> | undefined
  const now = check.now ?? new Date()
  for (const [i, value] of versions.entries()) {
    // Only the newest must still be valid today; the ones in between may have expired since.
    const isLast = i === versions.length - 1
    last = verifyDirectory(value, { root: check.root, held, now: isLast ? now : new Date(0) })
    held = { version: last.signed.version, hash: last.hash }
  }
  return last!
}

/** Entries a signature cannot make sensible: duplicate URAs or keys, keys that do not match their peer id. */
function checkEntries (dir: Directory): void {
  const uras = new Set<string>()
  const peers = new Set<string>()
  for (const inst of dir.institutions) {
    if (uras.has(inst.ura)) throw new InvalidEntryError(`URA ${inst.ura} appears twice`)
    uras.add(inst.ura)
    for (const node of inst.nodes) {
      if (peers.has(node.peerId)) throw new InvalidEntryError(`node ${node.peerId} appears twice`)
      peers.add(node.peerId)
      if (peerIdOfPublicKey(node.publicKey) !== node.peerId) throw new InvalidEntryError(`node ${node.peerId} of URA ${inst.ura} does not match its public key`)
      if (node.notAfter !== undefined && Date.parse(node.notAfter) <= Date.parse(node.notBefore)) throw new InvalidEntryError(`node ${node.peerId} has notAfter before notBefore`)
    }
  }
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
