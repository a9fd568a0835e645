import { readFile } from 'node:fs/promises'
import { writeFileAtomic } from '../directory/atomic-file.ts'
import type { UserStore } from './user-store.ts'

/*
 * The API token the CLI on the node's own machine uses (`<data-dir>/cli-token`, mode 0600). It
 * carries the clinician role, since the CLI sends, queries and pulls; whoever can read the data
 * directory holds the node's key and store anyway, so the file grants nothing new. The node makes
 * it at start when it is missing or no longer valid (revoked with `beeldnet node token revoke`).
 */

export const CLI_TOKEN_NAME = 'local CLI'

export async function readCliToken (path: string): Promise<string | undefined> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return undefined; throw err })
  return text?.trim() === '' ? undefined : text?.trim()
}

/** The CLI token, made anew when the file holds none that the node accepts. */
export async function ensureCliToken (users: UserStore, path: string): Promise<string> {
  const existing = await readCliToken(path)
  if (existing !== undefined && await users.tokenFor(existing) !== undefined) return existing
  const { token } = await users.addToken(CLI_TOKEN_NAME, 'clinician')
  await writeFileAtomic(path, `${token}\n`, 0o600)
  return token
}
