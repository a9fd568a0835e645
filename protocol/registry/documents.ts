import { z } from 'zod'
import { SchemaError } from '../errors.ts'

/*
 * The registry's documents: root, directory, timestamp, and the messages that change them
 * (enrolments, proposals). Every object is strict: a field nobody defined is refused, so there is
 * no place to put a patient, a study or an image, by mistake or on purpose.
 */

// The patterns are shared with the fast directory check at the end of this file.
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$/
const BASE64_SIG = /^[A-Za-z0-9+/]{86}==$/
const HEX64 = /^[0-9a-f]{64}$/
const NETWORK_NAME = /^[a-z0-9][a-z0-9-]{1,62}$/
const URA = /^[0-9]{8}$/
const PEER_ID = /^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/
const ADDRESS = /^(\/[A-Za-z0-9._~%-]+)+$/
const DEPARTMENT_CODE = /^[A-Z0-9-]{1,16}$/
const Base64Key = z.string().regex(BASE64_KEY, 'an Ed25519 public key: base64 of 32 bytes')
const Base64Sig = z.string().regex(BASE64_SIG, 'an Ed25519 signature: base64 of 64 bytes')
const KeyId = z.string().regex(HEX64, 'a keyid: SHA-256 hex of the public key')
const Hash = z.string().regex(HEX64, 'a SHA-256 hex digest')
const Time = z.iso.datetime({ offset: false })
const TIME = Time._zod.pattern
const Text = (max: number) => z.string().min(1).max(max).refine((s) => s.trim() === s, 'no leading or trailing spaces')
export const NetworkName = z.string().regex(NETWORK_NAME, 'a network name: lower-case letters, digits and dashes')
/** URA: the 8-digit number the UZI register gives a care institution. */
export const Ura = z.string().regex(URA, 'a URA number has 8 digits')
export const PeerId = z.string().regex(PEER_ID, 'an Ed25519 libp2p peer id')
/** Multiaddrs a node listens on, e.g. /dns4/pacs.example.nl/tcp/4001 or /ip4/127.0.0.1/tcp/4001. */
export const Address = z.string().max(256).regex(ADDRESS, 'a multiaddr such as /dns4/host/tcp/4001')

export const Signature = z.strictObject({ keyid: KeyId, sig: Base64Sig })
export type Signature = z.infer<typeof Signature>

export const PublicKeyEntry = z.strictObject({ keyid: KeyId, publicKey: Base64Key, name: Text(128).optional() })
export type PublicKeyEntry = z.infer<typeof PublicKeyEntry>

export const Root = z.strictObject({
  type: z.literal('beeldnet/root'),
  network: NetworkName,
  version: z.number().int().min(1),
  issued: Time,
  expires: Time,
  threshold: z.number().int().min(1),
  governanceKeys: z.array(PublicKeyEntry).min(1).max(64),
  /** the registry's online key: signs timestamps only */
  timestampKey: PublicKeyEntry
}).refine((r) => r.threshold <= r.governanceKeys.length, 'the threshold cannot exceed the number of governance keys')
  .refine((r) => new Set(r.governanceKeys.map((k) => k.keyid)).size === r.governanceKeys.length, 'governance keys must be distinct')
export type Root = z.infer<typeof Root>

/** 'teaching-research': a teaching or research institution; a node sends it studies de-identified only (PS3.15). */
const INSTITUTION_KINDS = ['hospital', 'independent-treatment-centre', 'diagnostic-centre', 'general-practice', 'laboratory', 'teaching-research', 'other'] as const
export const InstitutionKind = z.enum(INSTITUTION_KINDS)
export type InstitutionKind = z.infer<typeof InstitutionKind>
export const Department = z.strictObject({ code: z.string().regex(DEPARTMENT_CODE), name: Text(128) })
export const Status = z.strictObject({
  state: z.enum(['active', 'suspended', 'revoked']),
  since: Time,
  reason: Text(512).optional()
})

export const NodeEntry = z.strictObject({
  peerId: PeerId,
  publicKey: Base64Key,
  addresses: z.array(Address).max(16),
  notBefore: Time,
  notAfter: Time.optional(),
  status: z.enum(['active', 'revoked']),
  /** when and why a key was revoked; the entry stays as a tombstone */
  revoked: z.strictObject({ since: Time, reason: Text(512) }).optional()
})
export type NodeEntry = z.infer<typeof NodeEntry>

export const Institution = z.strictObject({
  ura: Ura,
  name: Text(256),
  kind: InstitutionKind,
  departments: z.array(Department).max(64),
  status: Status,
  nodes: z.array(NodeEntry).max(16)
})
export type Institution = z.infer<typeof Institution>

/** What a directory version's signatures cover: a small header naming its entries by a Merkle root. */
export const DirectoryHeader = z.strictObject({
  type: z.literal('beeldnet/directory'),
  network: NetworkName,
  version: z.number().int().min(1),
  /** the root version whose governance keys sign this directory */
  rootVersion: z.number().int().min(1),
  /** hash of version - 1's header; null only for version 1 */
  prev: Hash.nullable(),
  issued: Time,
  expires: Time,
  /** the institutions: how many, and the root of their trie (protocol/registry/entries-tree.ts) */
  entries: z.strictObject({ count: z.number().int().min(0).max(100_000), root: Hash })
})
export type DirectoryHeader = z.infer<typeof DirectoryHeader>

const Institutions = z.array(Institution).max(100_000)

/** A directory as a verifier holds it: the header and the institutions it names, in URA order. */
export const Directory = DirectoryHeader.extend({ institutions: Institutions })
export type Directory = z.infer<typeof Directory>

/** The header's fields of a directory, without its institutions: what is signed and hashed. */
export function headerOf (d: DirectoryHeader): DirectoryHeader {
  return { type: d.type, network: d.network, version: d.version, rootVersion: d.rootVersion, prev: d.prev, issued: d.issued, expires: d.expires, entries: d.entries }
}

export const Timestamp = z.strictObject({
  type: z.literal('beeldnet/timestamp'),
  network: NetworkName,
  issued: Time,
  expires: Time,
  rootVersion: z.number().int().min(1),
  directory: z.strictObject({ version: z.number().int().min(1), hash: Hash })
})
export type Timestamp = z.infer<typeof Timestamp>

/** A node asks to join (or a new key of it asks to be added), signed by the key it enrols. */
export const Enrolment = z.strictObject({
  type: z.literal('beeldnet/enrolment'),
  network: NetworkName,
  ura: Ura,
  name: Text(256),
  kind: InstitutionKind,
  departments: z.array(Department).max(64),
  publicKey: Base64Key,
  peerId: PeerId,
  addresses: z.array(Address).max(16),
  requested: Time
})
export type Enrolment = z.infer<typeof Enrolment>

export function envelope<T extends z.ZodType> (signed: T) {
  return z.strictObject({ signed, signatures: z.array(Signature).max(64) })
}

export const SignedRoot = envelope(Root)
export type SignedRoot = z.infer<typeof SignedRoot>
/** A whole directory version: its signed header, and its institutions beside it (bound by entries.root). */
export const SignedDirectory = z.strictObject({ signed: DirectoryHeader, signatures: z.array(Signature).max(64), institutions: Institutions })
export type SignedDirectory = z.infer<typeof SignedDirectory>
/** The directory a verifier holds, from a whole version as it travels. */
export function directoryOf (env: SignedDirectory): Directory {
  return { ...env.signed, institutions: env.institutions }
}
/** A whole version as it travels, from a directory and its header's signatures. */
export function envelopeOf (dir: Directory, signatures: Signature[]): SignedDirectory {
  return { signed: headerOf(dir), signatures, institutions: dir.institutions }
}

export const SignedDirectoryHeader = envelope(DirectoryHeader)
export type SignedDirectoryHeader = z.infer<typeof SignedDirectoryHeader>

/** The most versions one delta spans; further behind, a verifier takes the whole directory. */
export const MAX_DELTA_VERSIONS = 1000

/**
 * What changed from the version a verifier holds to a newer one: the signed headers of every
 * version after the held one (each chains to the one before), and the institutions added or
 * changed (upserts) or gone (removals) between the held version and the last header's.
 */
export const DirectoryDelta = z.strictObject({
  type: z.literal('beeldnet/directory-delta'),
  headers: z.array(SignedDirectoryHeader).min(1).max(MAX_DELTA_VERSIONS),
  upserts: Institutions,
  removals: z.array(Ura).max(100_000)
})
export type DirectoryDelta = z.infer<typeof DirectoryDelta>
export const SignedTimestamp = envelope(Timestamp)
export type SignedTimestamp = z.infer<typeof SignedTimestamp>
export const SignedEnrolment = envelope(Enrolment)
export type SignedEnrolment = z.infer<typeof SignedEnrolment>

const Reason = Text(512)
/** What governance can change. Keys join only through an enrolment signed by that key. */
export const Change = z.discriminatedUnion('action', [
  z.strictObject({ action: z.literal('admit'), enrolment: SignedEnrolment }),
  z.strictObject({ action: z.literal('update-addresses'), ura: Ura, peerId: PeerId, addresses: z.array(Address).max(16) }),
  z.strictObject({ action: z.literal('add-node-key'), ura: Ura, enrolment: SignedEnrolment }),
  z.strictObject({ action: z.literal('rotate-node-key'), ura: Ura, oldPeerId: PeerId, enrolment: SignedEnrolment, overlapDays: z.number().min(0).max(90) }),
  z.strictObject({ action: z.literal('revoke-node-key'), ura: Ura, peerId: PeerId, reason: Reason }),
  z.strictObject({ action: z.literal('suspend'), ura: Ura, reason: Reason }),
  z.strictObject({ action: z.literal('reinstate'), ura: Ura, reason: Reason }),
  z.strictObject({ action: z.literal('revoke'), ura: Ura, reason: Reason }),
  /** governance says what an institution is (a teaching or research one gets studies de-identified only) */
  z.strictObject({ action: z.literal('set-kind'), ura: Ura, kind: InstitutionKind, reason: Reason }),
  z.strictObject({ action: z.literal('renew') }),
  z.strictObject({
    action: z.literal('update-root'),
    threshold: z.number().int().min(1),
    governanceKeys: z.array(PublicKeyEntry).min(1).max(64),
    timestampKey: PublicKeyEntry.optional()
  })
])
export type Change = z.infer<typeof Change>

/** A governance member proposes one change, signed by their key. */
export const Proposal = z.strictObject({
  type: z.literal('beeldnet/proposal'),
  network: NetworkName,
  proposed: Time,
  change: Change
})
export type Proposal = z.infer<typeof Proposal>
export const SignedProposal = envelope(Proposal)
export type SignedProposal = z.infer<typeof SignedProposal>

/** Parses `value` with `schema`, or throws SchemaError (BEELDNET_ERR_SCHEMA) listing each problem's path. */
export function parseDocument<T extends z.ZodType> (schema: T, value: unknown, what: string): z.infer<T> {
  const result = schema.safeParse(value)
  if (!result.success) {
    throw new SchemaError(what, result.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`))
  }
  return result.data
}

/*
 * A fast check of a signed directory (10,000 institutions take zod about 70 ms and a copy of every
 * entry). It accepts only what the schemas above accept, checking the same patterns, lengths,
 * enums and strictness by hand, and answers false at the first doubt: the caller then parses with
 * zod, which refuses with its usual messages (or accepts what this check was too cautious for).
 */
const KINDS: ReadonlySet<unknown> = new Set(INSTITUTION_KINDS)
const INSTITUTION_STATES: ReadonlySet<unknown> = new Set(['active', 'suspended', 'revoked'])
const NODE_STATES: ReadonlySet<unknown> = new Set(['active', 'revoked'])

function isRecord (v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}
/**
 * Every own key is one of `required` (present, not undefined) or `optional` (if present, not
 * undefined). for-in rather than Object.keys: no array per object (70,000 objects in a large
 * directory). isRecord has made sure there is no prototype but Object's; a key enumerable there
 * (a polluted prototype) is refused as unknown, or read as zod and every later check read it.
 */
function hasKeys (o: Record<string, unknown>, required: readonly string[], optional: readonly string[] = []): boolean {
  let present = 0
  for (const k in o) {
    if (o[k] === undefined) return false
    if (required.includes(k)) present++
    else if (!optional.includes(k)) return false
  }
  return present === required.length
}
const matches = (v: unknown, re: RegExp): v is string => typeof v === 'string' && re.test(v)
const isText = (v: unknown, max: number): boolean => typeof v === 'string' && v.length >= 1 && v.length <= max && v.trim() === v
const isCount = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1
function isArrayOf (v: unknown, max: number, each: (x: unknown) => boolean): boolean {
  if (!Array.isArray(v) || v.length > max) return false
  for (let i = 0; i < v.length; i++) if (!each(v[i])) return false
  return true
}

/** `chars` as a lookup table by char code (ASCII only). */
function charTable (chars: string): Uint8Array {
  const table = new Uint8Array(128)
  for (const c of chars) table[c.charCodeAt(0)] = 1
  return table
}
const BASE64_CHARS = charTable('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/')
const BASE58_CHARS = charTable('123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz')
/** Are v[from..to) all in `table`? */
function allIn (v: string, from: number, to: number, table: Uint8Array): boolean {
  for (let i = from; i < to; i++) {
    const c = v.charCodeAt(i)
    if (c >= 128 || table[c] === 0) return false
  }
  return true
}
/** BASE64_KEY by hand: V8 takes ~0.3 us a key on that pattern (20,000 keys), the loop a third of it. */
const isBase64Key = (v: unknown): boolean => typeof v === 'string' && v.length === 44 && v.charCodeAt(43) === 0x3d && allIn(v, 0, 43, BASE64_CHARS)
/** PEER_ID by hand, likewise. */
const isPeerId = (v: unknown): boolean => typeof v === 'string' && v.length === 52 && v.startsWith('12D3KooW') && allIn(v, 8, 52, BASE58_CHARS)

const isAddress = (a: unknown): boolean => typeof a === 'string' && a.length <= 256 && ADDRESS.test(a)

function isDepartment (v: unknown): boolean {
  return isRecord(v) && hasKeys(v, ['code', 'name']) && matches(v.code, DEPARTMENT_CODE) && isText(v.name, 128)
}
function isNode (v: unknown): boolean {
  if (!isRecord(v) || !hasKeys(v, ['peerId', 'publicKey', 'addresses', 'notBefore', 'status'], ['notAfter', 'revoked'])) return false
  if (!isPeerId(v.peerId) || !isBase64Key(v.publicKey) || !matches(v.notBefore, TIME) || !NODE_STATES.has(v.status)) return false
  if (!isArrayOf(v.addresses, 16, isAddress)) return false
  if (v.notAfter !== undefined && !matches(v.notAfter, TIME)) return false
  const r = v.revoked
  return r === undefined || (isRecord(r) && hasKeys(r, ['since', 'reason']) && matches(r.since, TIME) && isText(r.reason, 512))
}
function isInstitution (v: unknown): boolean {
  if (!isRecord(v) || !hasKeys(v, ['ura', 'name', 'kind', 'departments', 'status', 'nodes'])) return false
  if (!matches(v.ura, URA) || !isText(v.name, 256) || !KINDS.has(v.kind)) return false
  const s = v.status
  if (!isRecord(s) || !hasKeys(s, ['state', 'since'], ['reason']) || !INSTITUTION_STATES.has(s.state) || !matches(s.since, TIME)) return false
  if (s.reason !== undefined && !isText(s.reason, 512)) return false
  return isArrayOf(v.departments, 64, isDepartment) && isArrayOf(v.nodes, 16, isNode)
}

const isCountOrZero = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= 100_000

function isHeader (d: unknown): boolean {
  if (!isRecord(d) || !hasKeys(d, ['type', 'network', 'version', 'rootVersion', 'prev', 'issued', 'expires', 'entries'])) return false
  if (d.type !== 'beeldnet/directory' || !matches(d.network, NETWORK_NAME) || !isCount(d.version) || !isCount(d.rootVersion)) return false
  if (d.prev !== null && !matches(d.prev, HEX64)) return false
  if (!matches(d.issued, TIME) || !matches(d.expires, TIME)) return false
  const e = d.entries
  return isRecord(e) && hasKeys(e, ['count', 'root']) && isCountOrZero(e.count) && matches(e.root, HEX64)
}

const isSignatureList = (v: unknown): boolean =>
  isArrayOf(v, 64, (s) => isRecord(s) && hasKeys(s, ['keyid', 'sig']) && matches(s.keyid, HEX64) && matches(s.sig, BASE64_SIG))

/** True only if `SignedDirectory` would accept `value` unchanged; false means "ask zod". */
export function isSignedDirectory (value: unknown): value is SignedDirectory {
  if (!isRecord(value) || !hasKeys(value, ['signed', 'signatures', 'institutions'])) return false
  return isSignatureList(value.signatures) && isHeader(value.signed) && isArrayOf(value.institutions, 100_000, isInstitution)
}

/** True only if `DirectoryDelta` would accept `value` unchanged; false means "ask zod". */
export function isDirectoryDelta (value: unknown): value is DirectoryDelta {
  if (!isRecord(value) || !hasKeys(value, ['type', 'headers', 'upserts', 'removals']) || value.type !== 'beeldnet/directory-delta') return false
  if (!Array.isArray(value.headers) || value.headers.length < 1) return false
  if (!isArrayOf(value.headers, MAX_DELTA_VERSIONS, (h) => isRecord(h) && hasKeys(h, ['signed', 'signatures']) && isSignatureList(h.signatures) && isHeader(h.signed))) return false
  return isArrayOf(value.upserts, 100_000, isInstitution) && isArrayOf(value.removals, 100_000, (u) => matches(u, URA))
}

/*
 * The RFC 8785 text of an institution that the checks above accepted, written field by field in
 * sorted key order: every string but the free texts matches an ASCII pattern with nothing to
 * escape, so only names and reasons go through JSON.stringify. The same text as canonicalText()
 * (test/protocol/registry/fast-verify.test.ts), several times faster. Throws RangeError for a free
 * text that is not well-formed UTF-16; the caller then uses canonicalText().
 */
const quote = (s: string): string => '"' + s + '"'
function freeText (s: string): string {
  if (!s.isWellFormed()) throw new RangeError('not well-formed')
  return JSON.stringify(s)
}
function canonicalNode (n: NodeEntry): string {
  let out = '{"addresses":[' + n.addresses.map(quote).join(',') + ']'
  if (n.notAfter !== undefined) out += ',"notAfter":' + quote(n.notAfter)
  out += ',"notBefore":' + quote(n.notBefore) + ',"peerId":' + quote(n.peerId) + ',"publicKey":' + quote(n.publicKey)
  if (n.revoked !== undefined) out += ',"revoked":{"reason":' + freeText(n.revoked.reason) + ',"since":' + quote(n.revoked.since) + '}'
  return out + ',"status":' + quote(n.status) + '}'
}
export function canonicalInstitution (i: Institution): string {
  let out = '{"departments":['
  for (let d = 0; d < i.departments.length; d++) {
    const dep = i.departments[d]!
    out += (d === 0 ? '{"code":' : ',{"code":') + quote(dep.code) + ',"name":' + freeText(dep.name) + '}'
  }
  out += '],"kind":' + quote(i.kind) + ',"name":' + freeText(i.name) + ',"nodes":['
  for (let n = 0; n < i.nodes.length; n++) out += (n === 0 ? '' : ',') + canonicalNode(i.nodes[n]!)
  out += '],"status":{'
  if (i.status.reason !== undefined) out += '"reason":' + freeText(i.status.reason) + ','
  return out + '"since":' + quote(i.status.since) + ',"state":' + quote(i.status.state) + '},"ura":' + quote(i.ura) + '}'
}
