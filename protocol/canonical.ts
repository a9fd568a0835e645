import { createHash } from 'node:crypto'
import canonicalize from 'canonicalize'

/** Returned by `fastCanonical` when the value holds something only the reference implementation handles. */
const UNUSUAL = Symbol('unusual')
const MAX_DEPTH = 64

/*
 * RFC 8785 for what JSON.parse and our schemas produce: plain objects and arrays, strings, finite
 * numbers, booleans and null. Keys sorted by UTF-16 code units, strings and numbers serialised as
 * ECMAScript does, exactly as the `canonicalize` package; about 5 times faster on a large directory.
 * Anything else (toJSON, lone surrogates, NaN, undefined in arrays, deep or cyclic values) goes to
 * the package, which serialises it or throws as it always did.
 */
function fastCanonical (v: unknown, depth: number): string | typeof UNUSUAL {
  switch (typeof v) {
    case 'string': return v.isWellFormed() ? JSON.stringify(v) : UNUSUAL
    case 'number': return Number.isFinite(v) ? JSON.stringify(v) : UNUSUAL
    case 'boolean': return v ? 'true' : 'false'
    case 'object': break
    default: return UNUSUAL
  }
  if (v === null) return 'null'
  if (depth > MAX_DEPTH) return UNUSUAL
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== Array.prototype) return UNUSUAL
    let out = '['
    for (let i = 0; i < v.length; i++) {
      const item = v[i] as unknown
      if (item === undefined) return UNUSUAL
      const text = fastCanonical(item, depth + 1)
      if (text === UNUSUAL) return UNUSUAL
      out += i === 0 ? text : ',' + text
    }
    return out + ']'
  }
  const proto = Object.getPrototypeOf(v)
  if (proto !== Object.prototype && proto !== null) return UNUSUAL
  const o = v as Record<string, unknown>
  if (typeof o.toJSON === 'function') return UNUSUAL
  const keys = Object.keys(o).sort()
  let out = '{'
  let first = true
  for (const k of keys) {
    const item = o[k]
    if (item === undefined) continue
    if (!k.isWellFormed()) return UNUSUAL
    const text = fastCanonical(item, depth + 1)
    if (text === UNUSUAL) return UNUSUAL
    out += (first ? '' : ',') + JSON.stringify(k) + ':' + text
    first = false
  }
  return out + '}'
}

/** RFC 8785 canonical JSON text. */
export function canonicalText (value: unknown): string {
  const fast = fastCanonical(value, 0)
  if (fast !== UNUSUAL) return fast
  const text = canonicalize(value)
  if (text === undefined) throw new TypeError('value has no canonical JSON form')
  return text
}

/** RFC 8785 canonical JSON bytes: what is signed and hashed, so every party gets the same bytes. */
export function canonicalBytes (value: unknown): Buffer {
  return Buffer.from(canonicalText(value), 'utf8')
}

export function sha256Hex (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** The hash that names a signed document: SHA-256 of the canonical JSON of its signed part. */
export function hashOfSigned (signed: unknown): string {
  return sha256Hex(canonicalBytes(signed))
}
