import { createHash, randomBytes } from 'node:crypto'
import * as ed from '@noble/ed25519'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { canonicalBytes, sha256Hex } from './canonical.ts'

/*
 * Ed25519 for governance keys, the registry's timestamp key and node keys (a node's libp2p key).
 * Keys travel as base64 of their 32 raw bytes; a key is named by its keyid, the SHA-256 (hex) of
 * those bytes. Signatures are over the canonical JSON of a document's `signed` part.
 */

// noble's synchronous API needs a SHA-512; Node's is native and fast.
ed.hashes.sha512 = (message: Uint8Array) => new Uint8Array(createHash('sha512').update(message).digest())

export interface KeyPair {
  publicKey: string
  /** base64 of the 32-byte seed; never leaves its owner's machine */
  privateKey: string
  keyid: string
}

export interface Signature {
  keyid: string
  sig: string
}

export function keyidOf (publicKeyBase64: string): string {
  return sha256Hex(Buffer.from(publicKeyBase64, 'base64'))
}

export function generateKeyPair (): KeyPair {
  const seed = randomBytes(32)
  const publicKey = Buffer.from(ed.getPublicKey(seed)).toString('base64')
  return { publicKey, privateKey: seed.toString('base64'), keyid: keyidOf(publicKey) }
}

export function keyPairFromPrivate (privateKeyBase64: string): KeyPair {
  const seed = Buffer.from(privateKeyBase64, 'base64')
  if (seed.length !== 32) throw new TypeError('an Ed25519 private key is 32 bytes')
  const publicKey = Buffer.from(ed.getPublicKey(seed)).toString('base64')
  return { publicKey, privateKey: privateKeyBase64, keyid: keyidOf(publicKey) }
}

export function signBytes (bytes: Uint8Array, key: KeyPair): Signature {
  return { keyid: key.keyid, sig: Buffer.from(ed.sign(bytes, Buffer.from(key.privateKey, 'base64'))).toString('base64') }
}

export function signDocument (signed: unknown, key: KeyPair): Signature {
  return signBytes(canonicalBytes(signed), key)
}

export function verifyBytes (bytes: Uint8Array, sigBase64: string, publicKeyBase64: string): boolean {
  const sig = Buffer.from(sigBase64, 'base64')
  const pub = Buffer.from(publicKeyBase64, 'base64')
  if (sig.length !== 64 || pub.length !== 32) return false
  try {
    return ed.verify(sig, bytes, pub)
  } catch {
    return false
  }
}

/** The libp2p peer id of a node's Ed25519 public key: how the directory ties a key to a peer. */
export function peerIdOfPublicKey (publicKeyBase64: string): string {
  return peerIdFromPublicKey(publicKeyFromRaw(Buffer.from(publicKeyBase64, 'base64'))).toString()
}
