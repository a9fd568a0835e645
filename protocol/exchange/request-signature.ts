import { z } from 'zod'
import { Time } from './common.ts'
import { signAsNode, verifyNodeSignature, type NodeSigner } from './node-signature.ts'

/*
 * Identity on the wire: a query or pull names the clinician who asks and why, and the requesting
 * node signs it with its key, for one source (audience) at one time. The source checks it against
 * the peer on the authenticated connection and keeps it with its audit record: later it can show
 * who asked, signed by the hospital that vouched for them, not just which connection it came on.
 */

/** How far a request's time may be from the source's clock. */
export const REQUEST_CLOCK_SKEW_MS = 10 * 60_000

export const RequestSignatureFields = {
  /** when the requesting node signed it */
  issued: Time,
  /** the URA of the institution it is meant for: it cannot be replayed at another */
  audience: z.string().regex(/^[0-9]{8}$/, 'a URA number has 8 digits'),
  /** Ed25519 signature of the requesting node over the canonical JSON of everything else */
  signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'a base64 Ed25519 signature')
}

export interface SignedFields { issued: string, audience: string, signature: string }

/** Adds issued, audience and the node's signature over the whole request. */
export async function signRequest<T extends object> (request: T, audience: string, signer: NodeSigner, now = new Date()): Promise<T & SignedFields> {
  const unsigned = { ...request, issued: now.toISOString(), audience }
  return { ...unsigned, signature: await signAsNode(unsigned, signer) }
}

/** Why the request's signature does not hold (in words), or undefined when it does. */
export function requestSignatureProblem (request: SignedFields, from: { peerId: string }, ownUra: string | undefined, now = new Date()): string | undefined {
  const { signature, ...unsigned } = request
  if (!verifyNodeSignature(unsigned, signature, from.peerId)) return 'the request is not signed by the node that sent it'
  if (ownUra !== undefined && request.audience !== ownUra) return `the request was signed for URA ${request.audience}, not for this institution`
  const skew = Math.abs(now.getTime() - Date.parse(request.issued))
  if (!(skew <= REQUEST_CLOCK_SKEW_MS)) return `the request was signed at ${request.issued}, more than ${REQUEST_CLOCK_SKEW_MS / 60_000} minutes from this node's clock`
  return undefined
}
