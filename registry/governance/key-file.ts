import { open, readFile, stat } from 'node:fs/promises'
import { generateKeyPair, keyPairFromPrivate, type KeyPair } from '../../protocol/keys.ts'
import { GovernanceKeyFileError } from './errors.ts'

/*
 * A governance member's signing key: kept offline by its owner, used only to sign proposals and
 * candidates. One JSON file, readable by its owner alone.
 */

export interface GovernanceKey extends KeyPair {
  name: string
}

export async function createGovernanceKeyFile (path: string, name: string): Promise<GovernanceKey> {
  const key = { ...generateKeyPair(), name }
  const handle = await open(path, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
    throw new GovernanceKeyFileError(err.code === 'EEXIST' ? `${path} exists; a key file is never overwritten` : `cannot create ${path}: ${err.message}`)
  })
  try {
    await handle.writeFile(JSON.stringify({ type: 'beeldnet/governance-key', ...key }, null, 2) + '\n')
    await handle.sync()
  } finally {
    await handle.close()
  }
  return key
}

export async function loadGovernanceKeyFile (path: string): Promise<GovernanceKey> {
  const info = await stat(path).catch(() => { throw new GovernanceKeyFileError(`no key file at ${path}`) })
  if ((info.mode & 0o077) !== 0) throw new GovernanceKeyFileError(`${path} can be read by others; chmod 600 it`)
  let parsed: { type?: unknown, name?: unknown, privateKey?: unknown }
  try {
    parsed = JSON.parse(await readFile(path, 'utf8')) as typeof parsed
  } catch {
    throw new GovernanceKeyFileError(`${path} is not a governance key file`)
  }
  if (parsed.type !== 'beeldnet/governance-key' || typeof parsed.privateKey !== 'string') throw new GovernanceKeyFileError(`${path} is not a governance key file`)
  return { ...keyPairFromPrivate(parsed.privateKey), name: typeof parsed.name === 'string' ? parsed.name : '' }
}
