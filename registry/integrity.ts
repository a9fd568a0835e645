import { isBeeldnetError } from '../protocol/errors.ts'
import type { Root, SignedDirectory, SignedRoot } from '../protocol/registry/documents.ts'
import { verifyDirectory, verifyInitialRoot, verifyRootUpdate } from '../protocol/registry/verify.ts'

/*
 * The registry re-verifies its own store on start, with the verifiers nodes use: the root chain
 * from v1, and the newest directory against the root it names. A store edited by hand shows up
 * here; nodes would refuse its files anyway, but the operator should hear it first.
 */

export interface IntegrityReport {
  problems: string[]
  /** the newest root whose chain verified */
  root: Root | undefined
}

function describe (err: unknown): string {
  if (isBeeldnetError(err)) return `${err.code}: ${err.message}`
  return `unexpected: ${(err as Error).message}`
}

export function checkIntegrity (roots: SignedRoot[], directory: SignedDirectory | undefined): IntegrityReport {
  const problems: string[] = []
  const verified: Root[] = []
  for (const [i, value] of roots.entries()) {
    try {
      const root = i === 0 ? verifyInitialRoot(value).signed : verifyRootUpdate(verified[i - 1]!, value).signed
      if (root.version !== i + 1) throw new Error(`root v${root.version} is stored where v${i + 1} belongs`)
      verified.push(root)
    } catch (err) {
      problems.push(`root v${i + 1}: ${describe(err)}`)
      break
    }
  }
  if (directory !== undefined) {
    const version = (directory.signed as { version?: unknown } | undefined)?.version
    const root = verified.find((r) => r.version === directory.signed?.rootVersion)
    if (root === undefined) {
      problems.push(`directory v${String(version)}: its root v${String(directory.signed?.rootVersion)} is not in the verified root chain`)
    } else {
      try {
        // Integrity, not freshness: an expired directory is stale, not tampered.
        verifyDirectory(directory, { root, now: new Date(0) })
      } catch (err) {
        problems.push(`directory v${String(version)}: ${describe(err)}`)
      }
    }
  }
  return { problems, root: verified.at(-1) }
}
