import { z } from 'zod'
import { SchemaError } from '../errors.ts'

/*
 * The registry's documents: root, directory, timestamp, and the messages that change them
 * (enrolments, proposals). Every object is strict: a field nobody defined is refused, so there is
 * no place to put a patient, a study or an image, by mistake or on purpose.
 */

const Base64Key = z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'an Ed25519 public key: base64 of 32 bytes')
const Base64Sig = z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'an Ed25519 signature: base64 of 64 bytes')
const KeyId = z.string().regex(/^[0-9a-f]{64}$/, 'a keyid: SHA-256 hex of the public key')
const Hash = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 hex digest')
const Time = z.iso.datetime({ offset: false })
const Text = (max: number) => z.string().min(1).max(max).refine((s) => s.trim() === s, 'no leading or trailing spaces')
export const NetworkName = z.string().regex(/^[a-z0-9][a-z0-9-]{1,62}$/, 'a network name: lower-case letters, digits and dashes')
/** URA: the 8-digit number the UZI register gives a care institution. */
export const Ura = z.string().regex(/^[0-9]{8}$/, 'a URA number has 8 digits')
export const PeerId = z.string().regex(/^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/, 'an Ed25519 libp2p peer id')
/** Multiaddrs a node listens on, e.g. /dns4/pacs.example.nl/tcp/4001 or /ip4/127.0.0.1/tcp/4001. */
export const Address = z.string().max(256).regex(/^(\/[A-Za-z0-9._~%-]+)+$/, 'a multiaddr such as /dns4/host/tcp/4001')

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
export const InstitutionKind = z.enum(['hospital', 'independent-treatment-centre', 'diagnostic-centre', 'general-practice', 'laboratory', 'teaching-research', 'other'])
export type InstitutionKind = z.infer<typeof InstitutionKind>
export const Department = z.strictObject({ code: z.string().regex(/^[A-Z0-9-]{1,16}$/), name: Text(128) })
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

export const Directory = z.strictObject({
  type: z.literal('beeldnet/directory'),
  network: NetworkName,
  version: z.number().int().min(1),
  /** the root version whose governance keys sign this directory */
  rootVersion: z.number().int().min(1),
  /** hash of version - 1's signed part; null only for version 1 */
  prev: Hash.nullable(),
  issued: Time,
  expires: Time,
  institutions: z.array(Institution).max(100_000)
})
export type Directory = z.infer<typeof Directory>

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
export const SignedDirectory = envelope(Directory)
export type SignedDirectory = z.infer<typeof SignedDirectory>
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
