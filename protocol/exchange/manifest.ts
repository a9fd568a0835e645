import { z } from 'zod'
import { hashOfSigned } from '../canonical.ts'
import { parseDocument, Ura } from '../registry/documents.ts'
import {
  Base64Signature, DepartmentCode, DicomText, MAX_INSTANCE_BYTES, MAX_INSTANCES, NodeRef, Sha256Hex, Time, TransferId, Uid
} from './common.ts'
import { ManifestForgedError, SignerMismatchError } from './errors.ts'
import { signAsNode, verifyNodeSignature, type NodeSigner } from './node-signature.ts'

/*
 * The push offer: one study, every instance with its UIDs, size and SHA-256, signed by the sending
 * node. The receiver verifies each instance's bytes against this list, so the signature covers the
 * bytes themselves. The study block carries what the receiving hospital must show and file (patient
 * name, ids, BSN, birth date): it travels only inside the encrypted channel, never to the registry.
 */

export const ManifestInstance = z.strictObject({
  sopClassUID: Uid,
  sopInstanceUID: Uid,
  seriesInstanceUID: Uid,
  /** bytes of the instance file exactly as stored */
  size: z.number().int().min(1).max(MAX_INSTANCE_BYTES),
  sha256: Sha256Hex,
  /** a structured report or encapsulated document: sent before images */
  report: z.boolean()
})
export type ManifestInstance = z.infer<typeof ManifestInstance>

export const ManifestPatient = z.strictObject({
  name: DicomText(1024),
  id: DicomText(256),
  issuer: DicomText(256),
  bsn: z.string().regex(/^[0-9]{9}$/).optional(),
  birthDate: DicomText(32),
  sex: DicomText(16)
})

export const ManifestStudy = z.strictObject({
  studyInstanceUID: Uid,
  patient: ManifestPatient,
  date: DicomText(32),
  time: DicomText(32),
  accessionNumber: DicomText(256),
  description: DicomText(1024),
  referringPhysician: DicomText(1024),
  studyId: DicomText(256),
  modalities: z.array(DicomText(16)).max(64)
})
export type ManifestStudy = z.infer<typeof ManifestStudy>

export const Manifest = z.strictObject({
  type: z.literal('beeldnet/push-manifest'),
  transferId: TransferId,
  created: Time,
  sender: NodeRef,
  destination: z.strictObject({ ura: Ura, department: DepartmentCode }),
  /** free text from the sending clinician to the receiving department */
  note: z.string().max(4000),
  /** why the study is sent (referral, second opinion...) */
  reason: z.string().min(1).max(512),
  /** the pull request this push answers, when it answers one */
  requestId: TransferId.optional(),
  study: ManifestStudy,
  instances: z.array(ManifestInstance).min(1).max(MAX_INSTANCES)
}).superRefine((m, ctx) => {
  // Two entries with one UID or one hash cannot both be right: the bytes carry the UID.
  const sops = new Set<string>()
  const shas = new Set<string>()
  for (const [i, instance] of m.instances.entries()) {
    if (sops.has(instance.sopInstanceUID)) ctx.addIssue({ code: 'custom', path: ['instances', i, 'sopInstanceUID'], message: 'appears twice' })
    if (shas.has(instance.sha256)) ctx.addIssue({ code: 'custom', path: ['instances', i, 'sha256'], message: 'appears twice' })
    sops.add(instance.sopInstanceUID)
    shas.add(instance.sha256)
  }
})
export type Manifest = z.infer<typeof Manifest>

export const SignedManifest = z.strictObject({ signed: Manifest, signature: Base64Signature })
export type SignedManifest = z.infer<typeof SignedManifest>

export interface VerifiedManifest {
  manifest: Manifest
  /** SHA-256 of the canonical JSON of the signed part: what answers and receipts refer to */
  hash: string
  envelope: SignedManifest
}

/** Signs a manifest with the sending node's key (the node named as `sender`). */
export async function signManifest (manifest: Manifest, signer: NodeSigner): Promise<SignedManifest> {
  const signed = parseDocument(Manifest, manifest, 'manifest')
  return { signed, signature: await signAsNode(signed, signer) }
}

/**
 * Checks an offer from `peerId` (the authenticated remote peer): well formed and bounded, naming
 * that peer as sender, and signed by its key. Throws BEELDNET_ERR_SCHEMA, _SIGNER_MISMATCH or
 * _MANIFEST_FORGED.
 */
export function verifyManifest (value: unknown, expected: { peerId: string }): VerifiedManifest {
  const envelope = parseDocument(SignedManifest, value, 'manifest')
  const manifest = envelope.signed
  if (manifest.sender.peerId !== expected.peerId) throw new SignerMismatchError('manifest', manifest.sender.peerId, expected.peerId)
  if (!verifyNodeSignature(manifest, envelope.signature, expected.peerId)) throw new ManifestForgedError(manifest.transferId, expected.peerId)
  return { manifest, hash: manifestHash(envelope), envelope }
}

export function manifestHash (envelope: SignedManifest): string {
  return hashOfSigned(envelope.signed)
}

/** Reports (SR, encapsulated documents) before images, keeping the order within each group. */
export function reportsFirst<T extends { report: boolean }> (instances: readonly T[]): T[] {
  return [...instances.filter((i) => i.report), ...instances.filter((i) => !i.report)]
}

/** Counts a receiver shows for an offer. */
export function summariseManifest (manifest: Manifest): { instances: number, reports: number, series: number, bytes: number } {
  let bytes = 0
  let reports = 0
  const series = new Set<string>()
  for (const i of manifest.instances) {
    bytes += i.size
    if (i.report) reports++
    series.add(i.seriesInstanceUID)
  }
  return { instances: manifest.instances.length, reports, series: series.size, bytes }
}
