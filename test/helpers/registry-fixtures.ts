import { generateKeyPair, peerIdOfPublicKey, signDocument, type KeyPair } from '../../protocol/keys.ts'
import { buildDirectoryCandidate } from '../../protocol/registry/changes.ts'
import { envelopeOf, headerOf, type Change, type Directory, type Root, type SignedDirectory, type SignedEnrolment, type SignedRoot } from '../../protocol/registry/documents.ts'
import { entriesOf } from '../../protocol/registry/entries-tree.ts'
import { directoryHash } from '../../protocol/registry/verify.ts'

type Envelope<T> = { signed: T, signatures: Array<{ keyid: string, sig: string }> }

/**
 * Signs as governance would: a directory's header (its entries root made from the institutions
 * given, as the registry makes it), beside its institutions; anything else as it is.
 */
export interface Signer {
  (signed: Directory, signers?: KeyPair[]): SignedDirectory
  <T>(signed: T, signers?: KeyPair[]): Envelope<T>
}

/** A governance of `n` members with threshold `k`, and helpers to sign what it publishes. */
export interface TestGovernance {
  keys: KeyPair[]
  timestampKey: KeyPair
  root: Root
  signedRoot: SignedRoot
  sign: Signer
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
  const sign = ((signed: unknown, signers = keys.slice(0, k)) => {
    const s = signed as Partial<Directory> | null
    if (s?.type === 'beeldnet/directory' && Array.isArray(s.institutions)) {
      const dir = { ...s, entries: entriesOf(s.institutions).entries } as Directory
      return envelopeOf(dir, signers.map((key) => signDocument(headerOf(dir), key)))
    }
    return { signed, signatures: signers.map((key) => signDocument(signed, key)) }
  }) as Signer
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
  return { signed, envelope: gov.sign(signed), hash: directoryHash(signed) }
}
