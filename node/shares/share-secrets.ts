import { createHash, randomBytes, randomInt, scrypt, timingSafeEqual } from 'node:crypto'

/*
 * A share link's two secrets: the token in its URL (32 random bytes, base64url) and the code the
 * clinician hands over apart from it (8 characters). Neither is kept: the token's SHA-256 is the
 * link's lookup key (a token has 256 bits, nothing to brute-force), the code is kept as a salted
 * scrypt hash (it has 40 bits: a copied database must not give it away in a moment).
 */

/** No 0/O and no 1/I: a code read aloud or typed from paper cannot be mistaken. 32 characters, 5 bits each. */
export const CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789'
export const CODE_LENGTH = 8

const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32 } as const

export function newToken (): string {
  return randomBytes(32).toString('base64url')
}

/** What a token looks like; anything else is no token of ours (and is answered like a wrong code). */
export function isTokenShaped (token: string): boolean {
  return /^[A-Za-z0-9_-]{43}$/.test(token)
}

export function tokenHash (token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex')
}

/** A new code, unformatted (8 characters of CODE_ALPHABET). */
export function newCode (): string {
  let code = ''
  for (let i = 0; i < CODE_LENGTH; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]
  return code
}

/** As shown to people: ABCD-EFGH. */
export function formatCode (code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4)}`
}

/** As typed: any case, with or without the dash or spaces. */
export function normaliseCode (typed: string): string {
  return typed.toUpperCase().replace(/[\s-]/g, '')
}

async function derive (code: string, salt: Buffer, params: { N: number, r: number, p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(code, salt, SCRYPT.keylen, { ...params, maxmem: 64 * 1024 * 1024 }, (err, key) => { if (err === null) resolve(key); else reject(err) })
  })
}

/** `scrypt$N$r$p$salt$key` (base64), the form the user store keeps passwords in. */
export async function hashCode (code: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await derive(normaliseCode(code), salt, SCRYPT)
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`
}

/** Whether `typed` is the code `stored` was made from. Takes as long for a token no link has (`stored` undefined). */
export async function verifyCode (typed: string, stored: string | undefined): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = (stored ?? '').split('$')
  const known = scheme === 'scrypt' && salt !== undefined && hash !== undefined
  const params = known ? { N: Number(n), r: Number(r), p: Number(p) } : SCRYPT
  const actual = await derive(normaliseCode(typed), known ? Buffer.from(salt, 'base64') : randomBytes(16), params)
  if (!known) return false
  const expected = Buffer.from(hash, 'base64')
  return actual.length === expected.length && timingSafeEqual(actual, expected)
}
