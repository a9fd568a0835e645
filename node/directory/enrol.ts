import { canonicalBytes } from '../../protocol/canonical.ts'
import type { NodeIdentity } from '../../protocol/identity.ts'
import { keyidOf } from '../../protocol/keys.ts'
import {
  parseDocument, SignedEnrolment, type Enrolment, type SignedEnrolment as SignedEnrolmentType
} from '../../protocol/registry/documents.ts'
import { verifyEnrolment } from '../../protocol/registry/verify.ts'
import { RegistryResponseError } from '../errors.ts'
import type { RegistryClient } from './registry-client.ts'

/*
 * A node asks to join by sending an enrolment signed by its own libp2p identity key: the signature
 * proves it holds the key the directory will list. Governance admits it (or not) later.
 */

export interface EnrolmentInit {
  /** the network of the pinned root */
  network: string
  /** the institution's 8-digit URA number */
  ura: string
  name: string
  /** default 'hospital' */
  kind?: Enrolment['kind']
  /** departments that can receive studies (default []) */
  departments?: Enrolment['departments']
  /** multiaddrs peers can reach this node at (default []) */
  addresses?: string[]
  /** the request time (default now) */
  requested?: Date
}

/** Builds the enrolment and signs its canonical bytes with the node's identity key. */
export async function buildEnrolment (identity: NodeIdentity, init: EnrolmentInit): Promise<SignedEnrolmentType> {
  const publicKey = Buffer.from(identity.privateKey.publicKey.raw).toString('base64')
  const signed: Enrolment = {
    type: 'beeldnet/enrolment',
    network: init.network,
    ura: init.ura,
    name: init.name,
    kind: init.kind ?? 'hospital',
    departments: init.departments ?? [],
    publicKey,
    peerId: identity.peerId,
    addresses: init.addresses ?? [],
    requested: (init.requested ?? new Date()).toISOString()
  }
  const sig = await identity.privateKey.sign(canonicalBytes(signed))
  // Refuse locally what the registry would refuse: a bad URA or address is reported here, with its path.
  const envelope = parseDocument(SignedEnrolment, { signed, signatures: [{ keyid: keyidOf(publicKey), sig: Buffer.from(sig).toString('base64') }] }, 'enrolment')
  verifyEnrolment(envelope, init.network)
  return envelope
}

/** POSTs the enrolment; the registry answers 201 with the id governance will refer to. */
export async function sendEnrolment (client: RegistryClient, enrolment: SignedEnrolmentType, signal?: AbortSignal): Promise<{ id: string }> {
  const answer = await client.post('/v1/enrolments', enrolment, signal) as { id?: unknown } | undefined
  if (typeof answer?.id !== 'string') throw new RegistryResponseError(`${client.url} accepted the enrolment but returned no id`)
  return { id: answer.id }
}
