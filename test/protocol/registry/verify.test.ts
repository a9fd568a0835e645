import { describe, expect, it } from 'vitest'
import { hashOfSigned } from '../../../protocol/canonical.ts'
import { generateKeyPair, signDocument } from '../../../protocol/keys.ts'
import { buildRootCandidate } from '../../../protocol/registry/changes.ts'
import { diffDirectories } from '../../../protocol/registry/diff.ts'
import type { Directory } from '../../../protocol/registry/documents.ts'
import {
  isActiveNode, verifyDirectory, verifyDirectoryChain, verifyEnrolment, verifyInitialRoot, verifyProposal, verifyRootUpdate, verifyTimestamp
} from '../../../protocol/registry/verify.ts'
import { makeEnrolment, makeGovernance, makeNodeKey, nextDirectory } from '../../helpers/registry-fixtures.ts'

const codeOf = (fn: () => unknown): string | undefined => {
  try { fn() } catch (err) { return (err as { code?: string }).code }
  return undefined
}

function twoVersions () {
  const gov = makeGovernance(3, 5)
  const a = makeNodeKey()
  const b = makeNodeKey()
  const v1 = nextDirectory(gov, undefined, [{ action: 'admit', enrolment: makeEnrolment(gov.root.network, '12345678', a) }])
  const v2 = nextDirectory(gov, v1.signed, [{ action: 'admit', enrolment: makeEnrolment(gov.root.network, '87654321', b) }])
  return { gov, a, b, v1, v2 }
}

describe('directory verification', () => {
  it('accepts a directory signed by the threshold and chaining to the one held', () => {
    const { gov, a, v1, v2 } = twoVersions()
    expect(verifyInitialRoot(gov.signedRoot).signed.version).toBe(1)
    const first = verifyDirectory(v1.envelope, { root: gov.root })
    expect(first.hash).toBe(v1.hash)
    expect(first.signers).toHaveLength(3)
    const second = verifyDirectory(v2.envelope, { root: gov.root, held: { version: 1, hash: v1.hash } })
    expect(second.signed.institutions.map((i) => i.ura)).toEqual(['12345678', '87654321'])
    expect(isActiveNode(second.signed, a.peerId)).toBe(true)
    // the same file again is no change, not an error
    expect(verifyDirectory(v2.envelope, { root: gov.root, held: { version: 2, hash: v2.hash } }).hash).toBe(v2.hash)
  })

  it('refuses each attack with its own code', () => {
    const { gov, v1, v2 } = twoVersions()
    const held = { version: 1, hash: v1.hash }
    const check = { root: gov.root, held }
    // 2 of 5
    expect(codeOf(() => verifyDirectory(gov.sign(v2.signed, gov.keys.slice(0, 2)), check))).toBe('BEELDNET_ERR_BELOW_THRESHOLD')
    // one key signing three times counts once
    expect(codeOf(() => verifyDirectory(gov.sign(v2.signed, [gov.keys[0]!, gov.keys[0]!, gov.keys[0]!]), check))).toBe('BEELDNET_ERR_BELOW_THRESHOLD')
    // a signature by someone outside governance does not count
    expect(codeOf(() => verifyDirectory(gov.sign(v2.signed, [gov.keys[0]!, gov.keys[1]!, generateKeyPair()]), check))).toBe('BEELDNET_ERR_BELOW_THRESHOLD')
    // an entry changed after signing
    const tampered = structuredClone(v2.envelope)
    tampered.institutions[1]!.nodes[0]!.addresses = ['/ip4/203.0.113.66/tcp/4001']
    expect(codeOf(() => verifyDirectory(tampered, check))).toBe('BEELDNET_ERR_ENTRIES_MISMATCH')
    // a header changed after signing
    const edited = structuredClone(v2.envelope)
    edited.signed.expires = new Date(Date.now() + 900 * 86_400_000).toISOString()
    expect(codeOf(() => verifyDirectory(edited, check))).toBe('BEELDNET_ERR_FORGED')
    // an institution left out, or one added, with the header as signed
    expect(codeOf(() => verifyDirectory({ ...v2.envelope, institutions: v2.envelope.institutions.slice(1) }, check))).toBe('BEELDNET_ERR_ENTRIES_MISMATCH')
    expect(codeOf(() => verifyDirectory({ ...v2.envelope, institutions: [...v2.envelope.institutions, { ...v2.envelope.institutions[1]!, ura: '99999999' }] }, check))).toBe('BEELDNET_ERR_ENTRIES_MISMATCH')
    // listed out of URA order (the root would not care; the list must be one way only)
    expect(codeOf(() => verifyDirectory({ ...v2.envelope, institutions: [...v2.envelope.institutions].reverse() }, check))).toBe('BEELDNET_ERR_INVALID_ENTRY')
    // the format before signed headers
    expect(codeOf(() => verifyDirectory({ signed: { ...v2.envelope.signed, entries: undefined, institutions: v2.envelope.institutions }, signatures: v2.envelope.signatures }, check))).toBe('BEELDNET_ERR_DIRECTORY_FORMAT')
    // replaying the older version to a node holding the newer
    expect(codeOf(() => verifyDirectory(v1.envelope, { root: gov.root, held: { version: 2, hash: v2.hash } }))).toBe('BEELDNET_ERR_ROLLBACK')
    // a v2 that does not follow the v1 held
    const stray = nextDirectory(gov, { ...v1.signed, issued: new Date(0).toISOString(), institutions: [] }, [])
    expect(stray.signed.version).toBe(2)
    expect(codeOf(() => verifyDirectory(stray.envelope, check))).toBe('BEELDNET_ERR_BROKEN_CHAIN')
    // the same version with other content: fork
    expect(codeOf(() => verifyDirectory(stray.envelope, { root: gov.root, held: { version: 2, hash: v2.hash } }))).toBe('BEELDNET_ERR_FORK')
    // expired
    const old = nextDirectory(gov, v1.signed, [], { issued: new Date(Date.now() - 40 * 86_400_000).toISOString(), validityDays: 30 })
    expect(codeOf(() => verifyDirectory(old.envelope, check))).toBe('BEELDNET_ERR_EXPIRED')
    // signed under a root the node does not have
    expect(codeOf(() => verifyDirectory(gov.sign({ ...v2.signed, rootVersion: 2 }), check))).toBe('BEELDNET_ERR_UNKNOWN_ROOT')
    // another network's directory
    expect(codeOf(() => verifyDirectory(gov.sign({ ...v2.signed, network: 'elsewhere' }), check))).toBe('BEELDNET_ERR_WRONG_NETWORK')
    // a field nobody defined, such as a patient's
    const withPatient = { ...v2.signed, institutions: [{ ...v2.signed.institutions[0]!, patientName: 'Jansen^Piet' }] }
    expect(codeOf(() => verifyDirectory(gov.sign(withPatient), check))).toBe('BEELDNET_ERR_SCHEMA')
    // a signed entry that cannot be right: a peer id that is not its key's
    const swapped = structuredClone(v2.signed)
    swapped.institutions[0]!.nodes[0]!.publicKey = swapped.institutions[1]!.nodes[0]!.publicKey
    expect(codeOf(() => verifyDirectory(gov.sign(swapped), check))).toBe('BEELDNET_ERR_INVALID_ENTRY')
  })

  it('follows several versions in one go only through each link', () => {
    const { gov, v1, v2 } = twoVersions()
    const v3 = nextDirectory(gov, v2.signed, [{ action: 'suspend', ura: '87654321', reason: 'audit' }])
    const held = { version: 1, hash: v1.hash }
    expect(codeOf(() => verifyDirectory(v3.envelope, { root: gov.root, held }))).toBe('BEELDNET_ERR_BROKEN_CHAIN')
    expect(verifyDirectoryChain([v2.envelope, v3.envelope], { root: gov.root, held }).hash).toBe(v3.hash)
    expect(isActiveNode(v3.signed, v3.signed.institutions[1]!.nodes[0]!.peerId)).toBe(false)
  })
})

describe('root rotation', () => {
  it('needs a threshold of the old keys and of the new', () => {
    const gov = makeGovernance(3, 5)
    const newKeys = Array.from({ length: 3 }, () => generateKeyPair())
    const next = buildRootCandidate(gov.root, {
      action: 'update-root',
      threshold: 2,
      governanceKeys: newKeys.map((k) => ({ keyid: k.keyid, publicKey: k.publicKey }))
    }, { issued: new Date().toISOString(), validityDays: 365 })
    const signedBy = (keys: typeof newKeys) => ({ signed: next, signatures: keys.map((k) => signDocument(next, k)) })
    expect(codeOf(() => verifyRootUpdate(gov.root, signedBy(newKeys)))).toBe('BEELDNET_ERR_BELOW_THRESHOLD')
    expect(codeOf(() => verifyRootUpdate(gov.root, signedBy(gov.keys.slice(0, 3))))).toBe('BEELDNET_ERR_BELOW_THRESHOLD')
    const rotated = verifyRootUpdate(gov.root, signedBy([...gov.keys.slice(0, 3), ...newKeys.slice(0, 2)]))
    expect(rotated.signed.version).toBe(2)
    expect(codeOf(() => verifyRootUpdate(rotated.signed, gov.signedRoot))).toBe('BEELDNET_ERR_ROLLBACK')
    expect(codeOf(() => verifyRootUpdate(gov.root, { signed: { ...next, version: 3 }, signatures: [] }))).toBe('BEELDNET_ERR_UNKNOWN_ROOT')
  })
})

describe('enrolments, proposals and timestamps', () => {
  it('an enrolment proves possession of the key it enrols', () => {
    const gov = makeGovernance()
    const node = makeNodeKey()
    expect(verifyEnrolment(makeEnrolment(gov.root.network, '12345678', node), gov.root.network).signed.peerId).toBe(node.peerId)
    expect(codeOf(() => verifyEnrolment(makeEnrolment(gov.root.network, '12345678', node, 'X', makeNodeKey()), gov.root.network))).toBe('BEELDNET_ERR_PROOF_OF_POSSESSION')
    const withBsn = makeEnrolment(gov.root.network, '12345678', node)
    expect(codeOf(() => verifyEnrolment({ ...withBsn, signed: { ...withBsn.signed, bsn: '123456782' } }, gov.root.network))).toBe('BEELDNET_ERR_SCHEMA')
    expect(codeOf(() => verifyEnrolment(makeEnrolment(gov.root.network, '1234567', node), gov.root.network))).toBe('BEELDNET_ERR_SCHEMA')
  })

  it('a proposal counts only from a governance key', () => {
    const gov = makeGovernance()
    const signed = { type: 'beeldnet/proposal' as const, network: gov.root.network, proposed: new Date().toISOString(), change: { action: 'renew' as const } }
    expect(verifyProposal({ signed, signatures: [signDocument(signed, gov.keys[4]!)] }, gov.root).signers).toEqual([gov.keys[4]!.keyid])
    expect(codeOf(() => verifyProposal({ signed, signatures: [signDocument(signed, generateKeyPair())] }, gov.root))).toBe('BEELDNET_ERR_BELOW_THRESHOLD')
  })

  it('a timestamp is signed by the registry\'s online key and short-lived', () => {
    const gov = makeGovernance()
    const signed = {
      type: 'beeldnet/timestamp' as const, network: gov.root.network, issued: new Date().toISOString(),
      expires: new Date(Date.now() + 3_600_000).toISOString(), rootVersion: 1, directory: { version: 1, hash: hashOfSigned({}) }
    }
    expect(verifyTimestamp({ signed, signatures: [signDocument(signed, gov.timestampKey)] }, gov.root).signed.directory.version).toBe(1)
    expect(codeOf(() => verifyTimestamp({ signed, signatures: [signDocument(signed, gov.keys[0]!)] }, gov.root))).toBe('BEELDNET_ERR_BELOW_THRESHOLD')
    const stale = { ...signed, expires: new Date(Date.now() - 1000).toISOString() }
    expect(codeOf(() => verifyTimestamp({ signed: stale, signatures: [signDocument(stale, gov.timestampKey)] }, gov.root))).toBe('BEELDNET_ERR_EXPIRED')
  })
})

describe('changes', () => {
  it('rotation keeps the old key through the overlap; revocation leaves tombstones', () => {
    const { gov, a, v1, v2 } = twoVersions()
    const a2 = makeNodeKey()
    const issued = new Date().toISOString()
    const v3 = nextDirectory(gov, v2.signed, [{ action: 'rotate-node-key', ura: '12345678', oldPeerId: a.peerId, enrolment: makeEnrolment(gov.root.network, '12345678', a2), overlapDays: 7 }], { issued })
    const inst = v3.signed.institutions.find((i) => i.ura === '12345678')!
    expect(inst.nodes.map((n) => n.peerId)).toEqual([a.peerId, a2.peerId])
    expect(inst.nodes[0]!.notAfter).toBe(new Date(Date.parse(issued) + 7 * 86_400_000).toISOString())
    expect(isActiveNode(v3.signed, a.peerId)).toBe(true)
    expect(isActiveNode(v3.signed, a.peerId, new Date(Date.now() + 8 * 86_400_000))).toBe(false)
    expect(isActiveNode(v3.signed, a2.peerId)).toBe(true)

    const v4 = nextDirectory(gov, v3.signed, [{ action: 'revoke', ura: '12345678', reason: 'left the network' }])
    const revoked = v4.signed.institutions.find((i) => i.ura === '12345678')!
    expect(revoked.status.state).toBe('revoked')
    expect(revoked.nodes.every((n) => n.status === 'revoked')).toBe(true)
    expect(diffDirectories(v3.signed, v4.signed).join('\n')).toContain('active -> revoked (left the network)')
    // a revoked key never comes back, nor does a revoked institution
    expect(codeOf(() => nextDirectory(gov, v4.signed, [{ action: 'add-node-key', ura: '87654321', enrolment: makeEnrolment(gov.root.network, '87654321', a2) }]))).toBe('BEELDNET_ERR_INVALID_CHANGE')
    expect(codeOf(() => nextDirectory(gov, v4.signed, [{ action: 'reinstate', ura: '12345678', reason: 'oops' }]))).toBe('BEELDNET_ERR_INVALID_CHANGE')
    expect(v1.signed.version).toBe(1)
  })

  it('governance marks an institution as teaching-research (set-kind), the diff names it; a revoked one or the same kind is refused', () => {
    const { gov, v2 } = twoVersions()
    const change = { action: 'set-kind' as const, ura: '87654321', kind: 'teaching-research' as const, reason: 'opleidingsinstituut' }
    const v3 = nextDirectory(gov, v2.signed, [change])
    expect(v3.signed.institutions.find((i) => i.ura === '87654321')!.kind).toBe('teaching-research')
    expect(diffDirectories(v2.signed, v3.signed)).toContain('~ 87654321 kind hospital -> teaching-research')
    expect(codeOf(() => nextDirectory(gov, v3.signed, [change]))).toBe('BEELDNET_ERR_INVALID_CHANGE')
    const v4 = nextDirectory(gov, v3.signed, [{ action: 'revoke', ura: '12345678', reason: 'left the network' }])
    expect(codeOf(() => nextDirectory(gov, v4.signed, [{ ...change, ura: '12345678' }]))).toBe('BEELDNET_ERR_INVALID_CHANGE')
  })

  it('the diff a signer reads names every change', () => {
    const { v1, v2 } = twoVersions()
    const lines = diffDirectories(v1.signed as Directory, v2.signed)
    expect(lines[0]).toContain('v1 -> v2')
    expect(lines.some((l) => l.startsWith('+ 87654321 Ziekenhuis 87654321 (hospital)'))).toBe(true)
    expect(lines.some((l) => l.startsWith('+ 87654321 node key 12D3KooW'))).toBe(true)
  })
})
