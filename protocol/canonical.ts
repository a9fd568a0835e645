import { createHash } from 'node:crypto'
import canonicalize from 'canonicalize'

/** RFC 8785 canonical JSON bytes: what is signed and hashed, so every party gets the same bytes. */
export function canonicalBytes (value: unknown): Buffer {
  const text = canonicalize(value)
  if (text === undefined) throw new TypeError('value has no canonical JSON form')
  return Buffer.from(text, 'utf8')
}

export function sha256Hex (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** The hash that names a signed document: SHA-256 of the canonical JSON of its signed part. */
export function hashOfSigned (signed: unknown): string {
  return sha256Hex(canonicalBytes(signed))
}
