import { peerIdFromString } from '@libp2p/peer-id'
import { canonicalBytes } from '../canonical.ts'
import { verifyBytes } from '../keys.ts'

/*
 * Exchange documents are signed by a node's own libp2p key (Ed25519), not by governance keys: the
 * signer is the node named inside the document, and its public key is read from its peer id, so a
 * signature can be checked against the peer on the other end of an authenticated connection.
 */

/** What signs: a libp2p PrivateKey (NodeIdentity.privateKey) fits. */
export interface NodeSigner {
  sign: (data: Uint8Array) => Uint8Array | Promise<Uint8Array>
}

/** Signs the canonical JSON of `signed`; returns the signature as base64. */
export async function signAsNode (signed: unknown, signer: NodeSigner): Promise<string> {
  return Buffer.from(await signer.sign(canonicalBytes(signed))).toString('base64')
}

/** True when `sigBase64` is the Ed25519 signature of `peerId`'s key over the canonical JSON of `signed`. */
export function verifyNodeSignature (signed: unknown, sigBase64: string, peerId: string): boolean {
  let raw: Uint8Array | undefined
  try {
    const peer = peerIdFromString(peerId)
    raw = peer.type === 'Ed25519' ? peer.publicKey.raw : undefined
  } catch {
    return false
  }
  if (raw === undefined) return false
  return verifyBytes(canonicalBytes(signed), sigBase64, Buffer.from(raw).toString('base64'))
}
