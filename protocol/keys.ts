import { createHash, createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto'
import { createRequire } from 'node:module'
import * as ed from '@noble/ed25519'
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

// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), before the 32 key bytes.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')
const verifyKeys = new Map<string, KeyObject | null>()

/** A node:crypto key for a raw Ed25519 public key (a few governance keys, kept), or null if it is not one. */
function verifyKeyOf (publicKeyBase64: string, pub: Buffer): KeyObject | null {
  let key = verifyKeys.get(publicKeyBase64)
  if (key !== undefined) return key
  try {
    key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, pub]), format: 'der', type: 'spki' })
  } catch {
    key = null
  }
  if (verifyKeys.size >= 256) verifyKeys.clear()
  verifyKeys.set(publicKeyBase64, key)
  return key
}

/**
 * Ed25519 verification (RFC 8032) by Node's OpenSSL: one pass over the message, no copy of it
 * (a signed directory of 10,000 institutions is 7 MB, and several members sign it).
 */
export function verifyBytes (bytes: Uint8Array, sigBase64: string, publicKeyBase64: string): boolean {
  const sig = Buffer.from(sigBase64, 'base64')
  const pub = Buffer.from(publicKeyBase64, 'base64')
  if (sig.length !== 64 || pub.length !== 32) return false
  const key = verifyKeyOf(publicKeyBase64, pub)
  if (key === null) return false
  try {
    return verify(null, bytes, key, sig)
  } catch {
    return false
  }
}

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
const BASE58_4 = 58 ** 4
// An Ed25519 peer id is the identity multihash (0x00, length 36) of the protobuf PublicKey
// {Type: Ed25519 (0x08 0x01), Data: 32 bytes (0x12 0x20 ...)}, in base58btc without a prefix.
const peerIdBytes = new Uint8Array([0x00, 0x24, 0x08, 0x01, 0x12, 0x20, ...new Uint8Array(32)])

const limbs = new Float64Array(16)
const digitCodes = new Uint8Array(64)

/**
 * The base58 digits of `bytes` into digitCodes, least significant first; returns how many (without
 * the leading-zero digits). Limbs hold four base-58 digits and take three bytes a step: every
 * intermediate stays below 2^53, so doubles are exact.
 */
function base58Digits (bytes: Uint8Array): number {
  let used = 0
  for (let b = 0; b < bytes.length; b += 3) {
    const take = Math.min(3, bytes.length - b)
    let carry = 0
    for (let k = 0; k < take; k++) carry = carry * 256 + bytes[b + k]!
    const scale = take === 3 ? 16_777_216 : take === 2 ? 65_536 : 256
    for (let j = 0; j < used; j++) {
      carry += limbs[j]! * scale
      const q = Math.floor(carry / BASE58_4)
      limbs[j] = carry - q * BASE58_4
      carry = q
    }
    while (carry > 0) { const q = Math.floor(carry / BASE58_4); limbs[used++] = carry - q * BASE58_4; carry = q }
  }
  let n = 0
  for (let j = 0; j < used; j++) {
    let limb = limbs[j]!
    for (let d = 0; d < 4; d++) { const q = Math.floor(limb / 58); digitCodes[n++] = BASE58.charCodeAt(limb - q * 58); limb = q }
  }
  while (n > 0 && digitCodes[n - 1] === 0x31) n--
  return n
}

function leadingZeros (bytes: Uint8Array): number {
  let zeros = 0
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++
  return zeros
}

/** base58btc of `bytes`. */
function base58 (bytes: Uint8Array): string {
  const n = base58Digits(bytes)
  let out = '1'.repeat(leadingZeros(bytes))
  for (let i = n - 1; i >= 0; i--) out += String.fromCharCode(digitCodes[i]!)
  return out
}

const BASE64_VALUES = new Int8Array(128).fill(-1)
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].entries()) BASE64_VALUES[c.charCodeAt(0)] = i

/** The 32 bytes of a key as base64 (44 characters, one '='), into peerIdBytes; false if it is not written so. */
function decodeKeyInto (publicKeyBase64: string): boolean {
  if (publicKeyBase64.length !== 44 || publicKeyBase64.charCodeAt(43) !== 0x3d) return false
  let o = 6
  for (let i = 0; i < 43; i += 4) {
    let acc = 0
    const chars = Math.min(4, 43 - i)
    for (let k = 0; k < chars; k++) {
      const code = publicKeyBase64.charCodeAt(i + k)
      const v = code < 128 ? BASE64_VALUES[code]! : -1
      if (v < 0) return false
      acc = acc * 64 + v
    }
    if (chars === 4) { peerIdBytes[o++] = acc >>> 16; peerIdBytes[o++] = (acc >>> 8) & 0xff; peerIdBytes[o++] = acc & 0xff } else {
      // three characters carry two bytes and two spare bits (ignored, as Buffer.from does)
      peerIdBytes[o++] = acc >>> 10; peerIdBytes[o++] = (acc >>> 2) & 0xff
    }
  }
  return true
}

const BASE58_VALUES = new Int8Array(128).fill(-1)
for (let i = 0; i < BASE58.length; i++) BASE58_VALUES[BASE58.charCodeAt(i)] = i

/*
 * Every Ed25519 peer id is 52 characters: its 38 bytes are 0x00 (one '1') and then a number between
 * 0x2408011220 * 2^256 and the next, which always takes 51 base58 digits. A string of fixed width
 * is that peer id exactly when it is base58 and its digits make the same number, read as
 * sum(pair_k * 3364^k) over pairs of digits: no carry from one digit to the next, so the 26 steps
 * do not wait on each other. Limbs of 24 bits: 3363 * 2^24 * 26 < 2^42, exact in doubles.
 */
const PEER_ID_LENGTH = 52
const PAIRS = PEER_ID_LENGTH / 2
const LIMB = 16_777_216
const LIMBS = 13 // 312 bits: room for any 52-digit base58 number (< 2^305)
/** WEIGHTS[k * LIMBS + j]: limb j of 3364^k; WEIGHT_LIMBS[k]: how many of them are not zero. */
const WEIGHTS = new Float64Array(PAIRS * LIMBS)
const WEIGHT_LIMBS = new Uint8Array(PAIRS)
for (let k = 0, w = 1n; k < PAIRS; k++, w *= 3364n) {
  let rest = w
  for (let j = 0; j < LIMBS && rest > 0n; j++, rest >>= 24n) {
    WEIGHTS[k * LIMBS + j] = Number(rest & 0xffffffn)
    WEIGHT_LIMBS[k] = j + 1
  }
}
const sums = new Float64Array(LIMBS)

/**
 * Is `peerId` the libp2p peer id of this Ed25519 key? The same answer as comparing with
 * peerIdOfPublicKey, without building either string (a large directory checks 20,000 keys).
 */
export function isPeerIdOf (peerId: string, publicKeyBase64: string): boolean {
  if (!decodeKeyInto(publicKeyBase64)) return peerIdOfPublicKey(publicKeyBase64) === peerId
  if (peerId.length !== PEER_ID_LENGTH) return false
  sums.fill(0)
  for (let p = 0; p < PAIRS; p++) {
    const hi = peerId.charCodeAt(2 * p)
    const lo = peerId.charCodeAt(2 * p + 1)
    const a = hi < 128 ? BASE58_VALUES[hi]! : -1
    const b = lo < 128 ? BASE58_VALUES[lo]! : -1
    if (a < 0 || b < 0) return false
    const pair = a * 58 + b
    const k = PAIRS - 1 - p
    const limbs = WEIGHT_LIMBS[k]!
    for (let j = 0; j < limbs; j++) sums[j] = sums[j]! + pair * WEIGHTS[k * LIMBS + j]!
  }
  // Carry the sums into 24-bit limbs and compare each with the bytes' own, least significant first.
  let carry = 0
  for (let j = 0; j < LIMBS; j++) {
    const x = sums[j]! + carry
    carry = Math.floor(x * (1 / LIMB))
    const end = peerIdBytes.length - 3 * j
    const limb = peerIdBytes[end - 1]! + peerIdBytes[end - 2]! * 256 + (end > 2 ? peerIdBytes[end - 3]! * 65_536 : 0)
    if (x - carry * LIMB !== limb) return false
  }
  return carry === 0
}

/** The libp2p peer id of a node's Ed25519 public key: how the directory ties a key to a peer. */
export function peerIdOfPublicKey (publicKeyBase64: string): string {
  const raw = Buffer.from(publicKeyBase64, 'base64')
  // The same answer as libp2p's peerIdFromPublicKey, without building its key and peer id objects
  // (20,000 keys in a large directory); anything but a 32-byte key goes to libp2p, which refuses it.
  if (raw.length === 32) {
    peerIdBytes.set(raw, 6)
    return base58(peerIdBytes)
  }
  return libp2pPeerIdOf(raw)
}

/**
 * libp2p's answer for a key that is not 32 bytes, loaded on first use: libp2p's crypto is ~14 MB of
 * a process's memory and a tenth of a second to load, and a verifier of 32-byte keys never needs it.
 */
function libp2pPeerIdOf (raw: Buffer): string {
  const require = createRequire(import.meta.url)
  const { peerIdFromPublicKey } = require('@libp2p/peer-id') as typeof import('@libp2p/peer-id')
  const { publicKeyFromRaw } = require('@libp2p/crypto/keys') as typeof import('@libp2p/crypto/keys')
  return peerIdFromPublicKey(publicKeyFromRaw(raw)).toString()
}
