import { BrokenChainError, UnknownRootError } from '../../protocol/errors.ts'
import { parseDocument, SignedDirectory, type Directory, type Root } from '../../protocol/registry/documents.ts'
import { refuseOldFormat, verifyDirectory, type HeldVersion, type VerifiedDirectory } from '../../protocol/registry/verify.ts'

/*
 * Verifies directory versions offered after the one held, one link at a time, when the root may
 * have rotated in between: each version is checked against the root it names, roots never go
 * back, and the newest must be signed under the root in force, so keys rotated out of the root
 * (perhaps because they leaked) cannot publish anything new. Links are checked as they arrive, so
 * a long catch-up never holds more than one directory in memory.
 */

export interface HeldLink extends HeldVersion {
  /** the root version the held directory was signed under */
  rootVersion: number
}

export interface ChainCheck {
  /** every verified root, by version */
  roots: Map<number, Root>
  /** the root in force (the newest verified) */
  current: Root
  held?: HeldLink
  now: Date
}

/** One link: `newest` is the version to hold; the ones before it may have expired since. */
export function verifyLink (value: unknown, check: ChainCheck, newest: boolean): VerifiedDirectory {
  refuseOldFormat(value)
  const dir = parseDocument(SignedDirectory.shape.signed, (value as { signed?: unknown } | null)?.signed, 'directory header')
  if (newest && dir.rootVersion !== check.current.version) {
    throw new UnknownRootError(`directory v${dir.version} is signed under root v${dir.rootVersion}; the root in force is v${check.current.version}`)
  }
  if (check.held !== undefined && dir.rootVersion < check.held.rootVersion) {
    throw new UnknownRootError(`directory v${dir.version} goes back to root v${dir.rootVersion} after root v${check.held.rootVersion}`)
  }
  const root = check.roots.get(dir.rootVersion)
  if (root === undefined) throw new UnknownRootError(`directory v${dir.version} is signed under root v${dir.rootVersion}, which this node has not verified`)
  return verifyDirectory(value, { root, held: check.held, now: newest ? check.now : new Date(0) })
}

export function linkOf (verified: { signed: Directory, hash: string }): HeldLink {
  return { version: verified.signed.version, hash: verified.hash, rootVersion: verified.signed.rootVersion }
}

/** `offered`: envelopes in ascending version order, the newest last. */
export function verifyOffered (offered: unknown[], check: ChainCheck): VerifiedDirectory {
  if (offered.length === 0) throw new BrokenChainError('no directory versions offered')
  if (check.held === undefined && offered.length > 1) throw new BrokenChainError('without a held directory only one version can be taken')
  let held = check.held
  let result: VerifiedDirectory | undefined
  for (const [i, value] of offered.entries()) {
    result = verifyLink(value, { ...check, held }, i === offered.length - 1)
    held = linkOf(result)
  }
  return result!
}
