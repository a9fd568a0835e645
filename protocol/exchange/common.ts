import { randomBytes } from 'node:crypto'
import { z } from 'zod'
import { PeerId, Ura } from '../registry/documents.ts'

/*
 * Building blocks shared by the exchange documents, with the limits that keep them bounded.
 * Limits are generous for real studies (a large CT is a few thousand instances) and still bound
 * what a hostile peer can make a node parse.
 */

/** Most instances one transfer may carry. */
export const MAX_INSTANCES = 100_000
/** Largest single instance a manifest may declare (64 GiB; multi-frame files reach a few GB). */
export const MAX_INSTANCE_BYTES = 64 * 1024 ** 3
/**
 * A bound on the serialised size of a signed manifest at MAX_INSTANCES (at most about 400 bytes per
 * instance with 64-character UIDs, plus the study block): what a frame limit must allow for the offer.
 */
export const MAX_MANIFEST_BYTES = 48 * 1024 * 1024

export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 hex digest')
export const Uid = z.string().max(64).regex(/^[0-9]+(\.[0-9]+)*$/, 'a DICOM UID: digits and dots, at most 64 characters')
export const Time = z.iso.datetime({ offset: false })
/** 128 random bits, base64url: chosen by the sender, scoped to it (a receiver keys transfers by peer id and transfer id). */
export const TransferId = z.string().regex(/^[A-Za-z0-9_-]{16,64}$/, 'a transfer id: 16-64 characters of A-Z a-z 0-9 _ -')
export const DepartmentCode = z.string().regex(/^[A-Z0-9-]{1,16}$/, 'a department code as the directory lists it')
export const Base64Signature = z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'an Ed25519 signature: base64 of 64 bytes')
/** DICOM text as a header gives it: may be empty, bounded. */
export const DicomText = (max: number) => z.string().max(max)

/** A node as exchange documents name it: its institution and its key. */
export const NodeRef = z.strictObject({ ura: Ura, peerId: PeerId })
export type NodeRef = z.infer<typeof NodeRef>

export function newTransferId (): string {
  return randomBytes(16).toString('base64url')
}
