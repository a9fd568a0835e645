import { hashOfSigned } from '../../protocol/canonical.ts'
import { generateKeyPair, peerIdOfPublicKey, signDocument, type KeyPair } from '../../protocol/keys.ts'
import { buildDirectoryCandidate } from '../../protocol/registry/changes.ts'
import type { Change, Directory, Root, SignedDirectory, SignedEnrolment, SignedRoot } from '../../protocol/registry/documents.ts'

/** A governance of `n` members with threshold `k`, and helpers to sign what it publishes. */
export interface TestGovernance {
  keys: KeyPair[]
  timestampKey: KeyPair
  root: Root
  signedRoot: SignedRoot
  sign: <T>(signed: T, signers?: KeyPair[]) => { signed: T, signatures: Array<{ keyid: string, sig: string }> }
}

export function makeGovernance (k = 3, n = 5, network = 'beeldnet-test'): TestGovernance {
  const keys = Array.from({ length: n }, () => generateKeyPair())
  const timestampKey = generateKeyPair()
  const issued = new Date().toISOString()
  const root: Root = {
    type: 'beeldnet/root',
    network,
    version: 1,
    issued,
    expires: new Date(Date.now() + 365 * 86_400_000).toISOString(),
    threshold: k,
    governanceKeys: keys.map((key, i) => ({ keyid: key.keyid, publicKey: key.publicKey, name: `member ${i + 1}` })),
    timestampKey: { keyid: timestampKey.keyid, publicKey: timestampKey.publicKey }
  }
  const sign = <T>(signed: T, signers = keys.slice(0, k)): { signed: T, signatures: Array<{ keyid: string, sig: string }> } =>
    ({ signed, signatures: signers.map((key) => signDocument(signed, key)) })
  return { keys, timestampKey, root, signedRoot: sign(root), sign }
}

export interface TestNodeKey extends KeyPair { peerId: string }

export function makeNodeKey (): TestNodeKey {
  const key = generateKeyPair()
  return { ...key, peerId: peerIdOfPublicKey(key.publicKey) }
}

export function makeEnrolment (network: string, ura: string, key: TestNodeKey, name = `Ziekenhuis ${ura}`, signer: KeyPair = key): SignedEnrolment {
  const signed = {
    type: 'beeldnet/enrolment' as const,
    network,
    ura,
    name,
    kind: 'hospital' as const,
    departments: [{ code: 'RAD', name: 'Radiologie' }],
    publicKey: key.publicKey,
    peerId: key.peerId,
    addresses: ['/ip4/127.0.0.1/tcp/4001'],
    requested: new Date().toISOString()
  }
  return { signed, signatures: [signDocument(signed, signer)] }
}

/** Builds and signs the next directory version from `changes`. */
export function nextDirectory (gov: TestGovernance, current: Directory | undefined, changes: Change[], options: { issued?: string, validityDays?: number } = {}): { signed: Directory, envelope: SignedDirectory, hash: string } {
  const signed = buildDirectoryCandidate(current, gov.root, changes, { issued: options.issued ?? new Date().toISOString(), validityDays: options.validityDays ?? 30 })
  return { signed, envelope: gov.sign(signed), hash: hashOfSigned(signed) }
}
