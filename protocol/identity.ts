import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { open, readFile, stat } from 'node:fs/promises'
import type { PrivateKey } from '@libp2p/interface'
import { IdentityFileError } from './errors.ts'

/*
 * A node's identity is one Ed25519 key: its libp2p peer id, the key the registry lists, and the
 * key that signs receipts. The file holds the libp2p protobuf encoding and only its owner may read it.
 */

export interface NodeIdentity {
  privateKey: PrivateKey
  /** the libp2p peer id (base58), as the directory names the node */
  peerId: string
}

export async function createIdentityFile (path: string): Promise<NodeIdentity> {
  const privateKey = await generateKeyPair('Ed25519')
  // 'wx': never overwrite an existing identity; mode applies at creation, before any byte is written.
  const handle = await open(path, 'wx', 0o600)
  try {
    await handle.writeFile(privateKeyToProtobuf(privateKey))
    await handle.sync()
  } finally {
    await handle.close()
  }
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey).toString() }
}

export async function loadIdentityFile (path: string): Promise<NodeIdentity> {
  const info = await stat(path).catch(() => { throw new IdentityFileError(`no identity key at ${path}`) })
  if ((info.mode & 0o077) !== 0) {
    throw new IdentityFileError(`${path} can be read by others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 it`)
  }
  let privateKey: PrivateKey
  try {
    privateKey = privateKeyFromProtobuf(await readFile(path))
  } catch (err) {
    throw new IdentityFileError(`${path} is not a libp2p private key: ${(err as Error).message}`)
  }
  if (privateKey.type !== 'Ed25519') throw new IdentityFileError(`${path} holds a ${privateKey.type} key; Beeldnet nodes use Ed25519`)
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey).toString() }
}
