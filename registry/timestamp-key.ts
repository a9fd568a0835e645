import { open, readFile, stat } from 'node:fs/promises'
import { generateKeyPair, keyPairFromPrivate, type KeyPair } from '../protocol/keys.ts'
import { AlreadyInitialisedError, TimestampKeyError } from './errors.ts'

/*
 * The registry's online key. It can sign timestamps and nothing else that anyone trusts: the root
 * names it as `timestampKey`, and no verifier accepts it for a directory or a root.
 */

export async function createTimestampKeyFile (path: string): Promise<KeyPair> {
  const key = generateKeyPair()
  // 'wx': never overwrite a key; the mode applies at creation, before any byte is written.
  const handle = await open(path, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST') throw new AlreadyInitialisedError(path, 'registry')
    throw new TimestampKeyError(`cannot create ${path}: ${err.message}`)
  })
  try {
    await handle.writeFile(JSON.stringify({ type: 'beeldnet/timestamp-key', ...key }, null, 2) + '\n')
    await handle.sync()
  } finally {
    await handle.close()
  }
  return key
}

export async function loadTimestampKeyFile (path: string): Promise<KeyPair> {
  const info = await stat(path).catch(() => { throw new TimestampKeyError(`no timestamp key at ${path}`) })
  if ((info.mode & 0o077) !== 0) throw new TimestampKeyError(`${path} can be read by others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 it`)
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as { privateKey?: unknown }
    if (typeof parsed.privateKey !== 'string') throw new Error('no privateKey')
    return keyPairFromPrivate(parsed.privateKey)
  } catch (err) {
    throw new TimestampKeyError(`${path} is not a timestamp key file: ${(err as Error).message}`)
  }
}
