import { describe, expect, it } from 'vitest'
import { makeDirectoryDelta, verifyDirectoryDelta, type HeldDirectory } from '../../../protocol/registry/delta.ts'
import { type Directory, type DirectoryDelta, type SignedDirectory } from '../../../protocol/registry/documents.ts'
import { entriesOf } from '../../../protocol/registry/entries-tree.ts'
import { verifyDirectory } from '../../../protocol/registry/verify.ts'
import { makeEnrolment, makeGovernance, makeNodeKey, nextDirectory, type TestGovernance } from '../../helpers/registry-fixtures.ts'

/*
 * A node holding version N takes N+1 (or N+k) as a delta: the signed headers after N and the
 * institutions that changed. What it ends up holding must be what verifying the whole version
 * gives, and every way of making a delta lie must be refused.
 */

const codeOf = (fn: () => unknown): string | undefined => {
  try { fn() } catch (err) { return (err as { code?: string }).code }
  return undefined
}

const header = (env: SignedDirectory) => ({ signed: env.signed, signatures: env.signatures })

function chain (gov: TestGovernance) {
  const v1 = nextDirectory(gov, undefined, ['10000001', '10000002', '20000003', '30000004'].map((ura) => ({ action: 'admit' as const, enrolment: makeEnrolment(gov.root.network, ura, makeNodeKey()) })))
  const v2 = nextDirectory(gov, v1.signed, [{ action: 'suspend', ura: '20000003', reason: 'audit' }])
  const v3 = nextDirectory(gov, v2.signed, [{ action: 'admit', enrolment: makeEnrolment(gov.root.network, '15000005', makeNodeKey()) }])
  return { v1, v2, v3 }
}

function holding (gov: TestGovernance, env: SignedDirectory): HeldDirectory {
  const v = verifyDirectory(env, { root: gov.root, now: new Date(0) })
  return { directory: v.signed, hash: v.hash, tree: v.tree }
}

const check = (gov: TestGovernance, held: HeldDirectory) => ({ roots: new Map([[1, gov.root]]), current: gov.root, held })

describe('directory deltas', () => {
  it('a one-institution change, and two versions at once, give exactly what the whole versions give', () => {
    const gov = makeGovernance(3, 5)
    const { v1, v2, v3 } = chain(gov)
    const held = holding(gov, v1.envelope)
    const delta = makeDirectoryDelta(v1.signed, v2.signed, [header(v2.envelope)])
    expect(delta.upserts.map((i) => i.ura)).toEqual(['20000003'])
    const viaDelta = verifyDirectoryDelta(JSON.parse(JSON.stringify(delta)), check(gov, held))
    const whole = verifyDirectory(v2.envelope, { root: gov.root, held: { version: 1, hash: v1.hash } })
    expect(viaDelta.hash).toBe(whole.hash)
    expect(viaDelta.signed).toEqual(whole.signed)
    expect(viaDelta.tree.root).toBe(whole.tree.root)

    const twoAtOnce = verifyDirectoryDelta(makeDirectoryDelta(v1.signed, v3.signed, [header(v2.envelope), header(v3.envelope)]), check(gov, held))
    expect(twoAtOnce.hash).toBe(v3.hash)
    expect(twoAtOnce.signed).toEqual(verifyDirectory(v3.envelope, { root: gov.root }).signed)
    // the held trie is unchanged: it still takes v2
    expect(held.tree.root).toBe(v1.signed.entries.root)
  })

  it('takes removals, and the trie of any order of changes is the trie of the list', () => {
    const gov = makeGovernance(3, 5)
    const { v1 } = chain(gov)
    const fewer: Directory = { ...v1.signed, version: 2, prev: v1.hash, institutions: v1.signed.institutions.filter((i) => i.ura !== '10000002') }
    const v2 = gov.sign(fewer)
    const delta = makeDirectoryDelta(v1.signed, { ...fewer, entries: v2.signed.entries }, [header(v2)])
    expect(delta).toMatchObject({ upserts: [], removals: ['10000002'] })
    const result = verifyDirectoryDelta(delta, check(gov, holding(gov, v1.envelope)))
    expect(result.signed.institutions.map((i) => i.ura)).toEqual(['10000001', '20000003', '30000004'])
    expect(result.tree.root).toBe(entriesOf(result.signed.institutions).entries.root)
  })

  it('refuses a delta whose institutions do not make the signed root, on the wrong base, replayed, or forged', () => {
    const gov = makeGovernance(3, 5)
    const { v1, v2, v3 } = chain(gov)
    const held = holding(gov, v1.envelope)
    const good = makeDirectoryDelta(v1.signed, v2.signed, [header(v2.envelope)])
    const mutate = (edit: (d: DirectoryDelta) => void): DirectoryDelta => { const d = structuredClone(good); edit(d); return d }

    // an institution changed in transit, one left out, one slipped in
    expect(codeOf(() => verifyDirectoryDelta(mutate((d) => { d.upserts[0]!.nodes[0]!.addresses = ['/ip4/203.0.113.66/tcp/4001'] }), check(gov, held)))).toBe('BEELDNET_ERR_ENTRIES_MISMATCH')
    expect(codeOf(() => verifyDirectoryDelta(mutate((d) => { d.upserts = [] }), check(gov, held)))).toBe('BEELDNET_ERR_ENTRIES_MISMATCH')
    expect(codeOf(() => verifyDirectoryDelta(mutate((d) => { d.upserts.push({ ...v3.signed.institutions.find((i) => i.ura === '15000005')!, ura: '90000009' }) }), check(gov, held)))).toBe('BEELDNET_ERR_ENTRIES_MISMATCH')
    expect(codeOf(() => verifyDirectoryDelta(mutate((d) => { d.removals = ['30000004'] }), check(gov, held)))).toBe('BEELDNET_ERR_ENTRIES_MISMATCH')
    // a header altered after signing, or signed by too few
    expect(codeOf(() => verifyDirectoryDelta(mutate((d) => { d.headers[0]!.signed.expires = new Date(Date.now() + 900 * 86_400_000).toISOString() }), check(gov, held)))).toBe('BEELDNET_ERR_FORGED')
    expect(codeOf(() => verifyDirectoryDelta(mutate((d) => { d.headers[0]!.signatures = d.headers[0]!.signatures.slice(0, 2) }), check(gov, held)))).toBe('BEELDNET_ERR_BELOW_THRESHOLD')
    // against the wrong base: another v1, or a delta that starts after v2
    const otherV1 = holding(gov, nextDirectory(gov, undefined, [{ action: 'admit', enrolment: makeEnrolment(gov.root.network, '10000001', makeNodeKey()) }]).envelope)
    expect(codeOf(() => verifyDirectoryDelta(good, check(gov, otherV1)))).toBe('BEELDNET_ERR_BROKEN_CHAIN')
    expect(codeOf(() => verifyDirectoryDelta(makeDirectoryDelta(v2.signed, v3.signed, [header(v3.envelope)]), check(gov, held)))).toBe('BEELDNET_ERR_BROKEN_CHAIN')
    // replayed to a node that has moved on
    const atV3 = holding(gov, v3.envelope)
    expect(codeOf(() => verifyDirectoryDelta(good, check(gov, atV3)))).toBe('BEELDNET_ERR_ROLLBACK')
    // expired
    const old = nextDirectory(gov, v1.signed, [{ action: 'suspend', ura: '20000003', reason: 'audit' }], { issued: new Date(Date.now() - 40 * 86_400_000).toISOString(), validityDays: 30 })
    expect(codeOf(() => verifyDirectoryDelta(makeDirectoryDelta(v1.signed, old.signed, [header(old.envelope)]), check(gov, held)))).toBe('BEELDNET_ERR_EXPIRED')
    // an entry governance should never have signed: a key that is not its peer id's
    const swapped = structuredClone(v1.signed.institutions[0]!)
    swapped.nodes[0]!.publicKey = v1.signed.institutions[1]!.nodes[0]!.publicKey
    const bad = gov.sign({ ...v1.signed, version: 2, prev: v1.hash, institutions: [swapped, ...v1.signed.institutions.slice(1)] })
    expect(codeOf(() => verifyDirectoryDelta({ type: 'beeldnet/directory-delta', headers: [header(bad)], upserts: [swapped], removals: [] }, check(gov, held)))).toBe('BEELDNET_ERR_INVALID_ENTRY')
    // a key already held by another institution
    const stolen = structuredClone(v1.signed.institutions[0]!)
    stolen.nodes.push(v1.signed.institutions[1]!.nodes[0]!)
    const dup = gov.sign({ ...v1.signed, version: 2, prev: v1.hash, institutions: [stolen, ...v1.signed.institutions.slice(1)] })
    expect(codeOf(() => verifyDirectoryDelta({ type: 'beeldnet/directory-delta', headers: [header(dup)], upserts: [stolen], removals: [] }, check(gov, held)))).toBe('BEELDNET_ERR_INVALID_ENTRY')
    // a field nobody defined
    expect(codeOf(() => verifyDirectoryDelta(mutate((d) => { (d.upserts[0] as unknown as Record<string, unknown>).patientName = 'Jansen^Piet' }), check(gov, held)))).toBe('BEELDNET_ERR_SCHEMA')

    // after all that, the held directory still takes the genuine delta
    expect(verifyDirectoryDelta(good, check(gov, held)).hash).toBe(v2.hash)
  })
})
