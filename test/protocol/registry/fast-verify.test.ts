import canonicalize from 'canonicalize'
import { generateKeyPair as libp2pKeyPair, publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { createHash, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { canonicalText } from '../../../protocol/canonical.ts'
import { peerIdOfPublicKey } from '../../../protocol/keys.ts'
import { canonicalInstitution, isSignedDirectory, SignedDirectory, type Directory } from '../../../protocol/registry/documents.ts'
import { entriesOf, entryLeaf, entryLeaves } from '../../../protocol/registry/entries-tree.ts'
import { isPeerIdOf } from '../../../protocol/keys.ts'
import { makeEnrolment, makeGovernance, makeNodeKey, nextDirectory } from '../../helpers/registry-fixtures.ts'

/*
 * The fast paths of directory verification (a hand-written schema check, a field-by-field canonical
 * text, peer ids without libp2p objects) must answer exactly as the slow ones they stand in for.
 */

function richDirectory (): { gov: ReturnType<typeof makeGovernance>, dir: Directory } {
  const gov = makeGovernance(3, 5)
  const [a, b, c] = [makeNodeKey(), makeNodeKey(), makeNodeKey()]
  const v1 = nextDirectory(gov, undefined, [
    { action: 'admit', enrolment: makeEnrolment(gov.root.network, '12345678', a, 'Ziekenhuis "Sint-Jözef" \\ Zuid ☃ 𝄞') },
    { action: 'admit', enrolment: makeEnrolment(gov.root.network, '87654321', b) }
  ])
  const v2 = nextDirectory(gov, v1.signed, [
    { action: 'rotate-node-key', ura: '12345678', oldPeerId: a.peerId, enrolment: makeEnrolment(gov.root.network, '12345678', c), overlapDays: 7 },
    { action: 'revoke-node-key', ura: '87654321', peerId: b.peerId, reason: 'key lost\nin "transit"' },
    { action: 'suspend', ura: '87654321', reason: 'audit' }
  ])
  return { gov, dir: v2.signed }
}

/** The entries root as entries-tree.ts's comment defines it, written the plain way: the format the fast code must keep. */
function referenceRoot (institutions: Directory['institutions']): string {
  const sha = (...parts: Buffer[]): Buffer => createHash('sha256').update(Buffer.concat(parts)).digest()
  const node = (list: Directory['institutions'], depth: number): Buffer => {
    if (list.length === 0) return Buffer.alloc(32)
    if (list.length === 1) return sha(Buffer.from([0]), Buffer.from(canonicalize(list[0]!)!, 'utf8'))
    const children = Array.from({ length: 10 }, (_, d) => node(list.filter((i) => Number(i.ura[depth]) === d), depth + 1))
    return sha(Buffer.from([1]), ...children)
  }
  return node(institutions, 0).toString('hex')
}

describe('fast directory verification paths', () => {
  it('makes the entries root the format defines (leaves, branches, one-leaf subtrees, empty children)', () => {
    const { dir } = richDirectory()
    const base = dir.institutions[0]!
    const uras = ['10000000', '10000001', '10000010', '12345679', '19999999', '20000000', '99999999']
    const many = [...dir.institutions, ...uras.map((ura, i) => ({ ...base, ura, name: `Instelling ${i} é ☃` }))].sort((a, b) => a.ura < b.ura ? -1 : 1)
    for (const list of [[], [base], dir.institutions, many]) expect(entriesOf(list).entries).toEqual({ count: list.length, root: referenceRoot(list) })
    expect(referenceRoot([])).toBe('0'.repeat(64))
  })

  it('writes the same canonical text as the RFC 8785 package, optional fields and escapes included', () => {
    const { dir } = richDirectory()
    expect(JSON.stringify(dir)).toContain('notAfter')
    expect(JSON.stringify(dir)).toContain('revoked')
    for (const inst of dir.institutions) expect(canonicalInstitution(inst)).toBe(canonicalize(inst))
    expect(canonicalText(dir)).toBe(canonicalize(dir))
    const lone = { ...dir.institutions[0]!, name: 'a\uD800b' }
    expect(() => canonicalInstitution(lone)).toThrow(RangeError)
    expect(() => canonicalText(lone)).toThrow()
    // leaves written as bytes are the leaves of the canonical texts, for any size of entry
    expect(entryLeaves(dir.institutions)).toEqual(dir.institutions.map(entryLeaf))
    const base = dir.institutions[0]!
    const big = {
      ...base,
      departments: Array.from({ length: 64 }, (_, i) => ({ code: `D${i}`, name: `Afdeling ${i} ${'é☃"'.repeat(40)}` })),
      nodes: Array.from({ length: 16 }, () => ({ ...base.nodes[0]!, addresses: Array.from({ length: 16 }, (_, a) => `/dns4/${'a'.repeat(240)}.nl/tcp/${a}`) }))
    }
    expect(entryLeaves([big, ...dir.institutions, big])).toEqual([big, ...dir.institutions, big].map(entryLeaf))
    expect(() => entryLeaves([dir.institutions[1]!, lone])).toThrow()
  })

  it('canonicalText matches the package on assorted values and falls back for the unusual', () => {
    const values: unknown[] = [
      null, true, 0, -0, 1e21, 1.5e-7, 'é\u2028"', [1, 'a', null, { b: 1, a: [] }], { '10': 1, '2': 2, b: undefined, a: { z: 1, y: '\u0000' } },
      { toJSON: () => ({ x: 1 }) }, [undefined, 1], new Date(0), { d: new Date(0) }, Object.assign(Object.create(null), { b: 1, a: 2 })
    ]
    for (const v of values) expect(canonicalText(v)).toBe(canonicalize(v))
    expect(() => canonicalText(Number.NaN)).toThrow()
    expect(() => canonicalText({ a: Infinity })).toThrow()
  })

  it('accepts a directory only where zod does, and refuses what it refuses', () => {
    const { gov, dir } = richDirectory()
    const env = gov.sign(dir)
    expect(isSignedDirectory(env)).toBe(true)
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- mutations reach anywhere, as an attacker would
    const mutations: Array<(d: any) => void> = [
      (d) => { d.institutions[0].patientName = 'Jansen^Piet' },
      (d) => { d.institutions[0].nodes[0].addresses.push('not an address') },
      (d) => { d.institutions[0].name = ' padded' },
      (d) => { d.institutions[0].kind = 'spa' },
      (d) => { d.institutions[0].status.since = '2026-02-30T00:00:00Z' },
      (d) => { d.institutions[0].nodes[0].notAfter = undefined },
      (d) => { d.signed.entries.count = -1 },
      (d) => { d.signed.entries.root = 'x' },
      (d) => { d.signed.institutions = [] },
      (d) => { d.signed.version = 1.5 },
      (d) => { d.signed.prev = 'ABC' },
      (d) => { d.signatures.push({ keyid: 'x', sig: 'y' }) },
      (d) => { d.extra = 1 },
      (d) => { d.institutions[1].departments = Array.from({ length: 65 }, () => ({ code: 'RAD', name: 'R' })) },
      (d) => { d.institutions[1].nodes[0].revoked.reason = '' },
      (d) => { d.institutions[1].ura = '1234567' },
      (d) => { d.institutions[0].nodes[0].publicKey = d.institutions[0].nodes[0].publicKey.replace(/^./, '-') },
      (d) => { d.institutions[0].nodes[0].publicKey = d.institutions[0].nodes[0].publicKey.replace(/^./, 'é') },
      (d) => { d.institutions[0].nodes[0].publicKey = d.institutions[0].nodes[0].publicKey.replace('=', 'A') },
      (d) => { d.institutions[0].nodes[0].publicKey += '=' },
      (d) => { d.institutions[0].nodes[0].publicKey = d.institutions[0].nodes[0].publicKey.slice(1) },
      (d) => { d.institutions[0].nodes[0].publicKey = 7 },
      (d) => { d.institutions[0].nodes[0].peerId = d.institutions[0].nodes[0].peerId.replace('12D3KooW', '12D3KooX') },
      (d) => { d.institutions[0].nodes[0].peerId += 'a' },
      (d) => { d.institutions[0].nodes[0].peerId = d.institutions[0].nodes[0].peerId.slice(0, -1) },
      (d) => { d.institutions[0].nodes[0].peerId = null }
    ]
    for (const c of ['0', 'O', 'I', 'l', '+', 'é']) mutations.push((d) => { d.institutions[0].nodes[0].peerId = d.institutions[0].nodes[0].peerId.slice(0, 30) + c + d.institutions[0].nodes[0].peerId.slice(31) })
    for (const mutate of mutations) {
      const copy = structuredClone(env)
      mutate(copy)
      const zod = SignedDirectory.safeParse(copy).success
      // never accepts what zod refuses (it may defer to zod on what zod accepts)
      if (!zod) expect(isSignedDirectory(copy)).toBe(false)
    }
    const parsed = JSON.parse(JSON.stringify(env).replace('"signed":{', '"signed":{"__proto__":{},'))
    expect(isSignedDirectory(parsed)).toBe(false)
  })

  it('computes the libp2p peer id of an Ed25519 key', () => {
    const keys = [Buffer.alloc(32), Buffer.alloc(32, 0xff), ...Array.from({ length: 200 }, () => randomBytes(32))]
    const ids = keys.map((k) => peerIdFromPublicKey(publicKeyFromRaw(k)).toString())
    for (const [i, k] of keys.entries()) {
      expect(peerIdOfPublicKey(k.toString('base64'))).toBe(ids[i])
      expect(isPeerIdOf(ids[i]!, k.toString('base64'))).toBe(true)
      expect(isPeerIdOf(ids[(i + 1) % ids.length]!, k.toString('base64'))).toBe(false)
    }
    // not written as 44 base64 characters: the slow path decides
    expect(isPeerIdOf(ids[2]!, keys[2]!.toString('base64').slice(0, 43))).toBe(peerIdOfPublicKey(keys[2]!.toString('base64').slice(0, 43)) === ids[2])
  })

  it('refuses every peer id but the key\'s own, as comparing the strings does', () => {
    const alphabet = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
    for (const k of [Buffer.alloc(32), Buffer.alloc(32, 0xff), ...Array.from({ length: 50 }, () => randomBytes(32))]) {
      const key = k.toString('base64')
      const id = peerIdFromPublicKey(publicKeyFromRaw(k)).toString()
      const at = 1 + (k[0]! % (id.length - 1))
      const others = [
        '', '1', id.slice(0, -1), id + '1', id + 'z', '1' + id, '11' + id.slice(1), id.slice(1), 'z'.repeat(60), '1'.repeat(52),
        id.slice(0, at) + alphabet[(alphabet.indexOf(id[at]!) + 1) % 58] + id.slice(at + 1),
        id.slice(0, at) + '0' + id.slice(at + 1), id.slice(0, at) + 'é' + id.slice(at + 1)
      ]
      for (const other of others) expect(isPeerIdOf(other, key)).toBe(false)
      expect(isPeerIdOf(id, key)).toBe(true)
    }
  })

  it('asks libp2p for the peer id of a key that is not Ed25519 (loaded only then)', async () => {
    const secp = await libp2pKeyPair('secp256k1')
    const raw = Buffer.from(secp.publicKey.raw)
    expect(peerIdOfPublicKey(raw.toString('base64'))).toBe(peerIdFromPublicKey(secp.publicKey).toString())
    expect(isPeerIdOf(peerIdFromPublicKey(secp.publicKey).toString(), raw.toString('base64'))).toBe(true)
  })
})
