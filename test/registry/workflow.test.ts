import { gunzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { hashOfSigned } from '../../protocol/canonical.ts'
import { signDocument } from '../../protocol/keys.ts'
import type { Directory } from '../../protocol/registry/documents.ts'
import { verifyDirectory, verifyDirectoryChain, verifyInitialRoot, verifyTimestamp } from '../../protocol/registry/verify.ts'
import { makeEnrolment, makeNodeKey } from '../helpers/registry-fixtures.ts'
import { NETWORK, propose, publishRootV1, signCandidate, useRegistries } from './helpers.ts'

describe('registry workflow', () => {
  const startRegistry = useRegistries()

  it('publishes root v1 only when 3 of 5 governance keys have signed the candidate made by init', async () => {
    const t = await startRegistry()
    expect((await t.http.get('/v1/root')).body.code).toBe('BEELDNET_ERR_NOT_PUBLISHED')
    const candidate = await t.http.get('/v1/candidate')
    expect(candidate.status).toBe(200)
    expect(candidate.body).toMatchObject({ kind: 'root', hash: t.init.rootHash, base: null, proposals: [] })
    expect(candidate.body.signed.governanceKeys.map((k: { keyid: string }) => k.keyid)).toEqual(t.keys.map((k) => k.keyid))

    const sign = async (i: number): Promise<{ status: number, body: Record<string, unknown> }> =>
      t.http.post('/v1/candidate/signatures', { hash: candidate.body.hash, signature: signDocument(candidate.body.signed, t.keys[i]!) })
    expect((await sign(0)).body).toMatchObject({ published: false, kind: 'root', version: 1, collected: 1, needed: 3 })
    // The same key again counts once.
    expect((await sign(0)).body).toMatchObject({ published: false, collected: 1 })
    expect((await sign(3)).body).toMatchObject({ published: false, collected: 2 })
    expect((await sign(4)).body).toMatchObject({ published: true, kind: 'root', version: 1, collected: 3, needed: 3 })

    const root = await t.http.get('/v1/root')
    expect(verifyInitialRoot(root.body).signers).toHaveLength(3)
    expect((await t.http.get('/v1/roots/1')).body).toEqual(root.body)
    expect((await t.http.get('/v1/candidate')).body.code).toBe('BEELDNET_ERR_NO_CANDIDATE')
    expect((await t.http.get('/v1/timestamp')).body.code).toBe('BEELDNET_ERR_NOT_PUBLISHED')
    const status = await t.http.get('/v1/status')
    expect(status.body).toMatchObject({ network: NETWORK, root: { version: 1, threshold: 3 }, directory: null, candidate: null, pendingProposals: 0, pendingEnrolments: 0 })
  })

  it('turns an enrolment into an admit proposal, a frozen candidate and a verifiable directory; history is append-only', async () => {
    const t = await startRegistry()
    const root = await publishRootV1(t)

    const nodeKey = makeNodeKey()
    const enrolment = makeEnrolment(NETWORK, '12345678', nodeKey)
    const enrolled = await t.http.post('/v1/enrolments', enrolment)
    expect(enrolled.status).toBe(201)
    expect(enrolled.body.id).toBe(hashOfSigned(enrolment.signed))
    expect((await t.http.post('/v1/enrolments', enrolment)).status).toBe(200) // idempotent
    const waiting = await t.http.get('/v1/enrolments')
    expect(waiting.body).toEqual([{ id: enrolled.body.id, enrolment, received: expect.any(String) }])

    const admit = propose({ action: 'admit', enrolment: waiting.body[0].enrolment }, t.keys[1]!)
    const proposed = await t.http.post('/v1/proposals', admit)
    expect(proposed.status).toBe(201)
    expect((await t.http.get('/v1/proposals')).body).toEqual([{ id: proposed.body.id, proposal: admit, received: expect.any(String) }])

    const candidate = await t.http.get('/v1/candidate')
    expect(candidate.body).toMatchObject({ kind: 'directory', base: null, proposals: [{ id: proposed.body.id, proposal: admit }] })
    expect(candidate.body.signed).toMatchObject({ version: 1, prev: null, rootVersion: 1 })
    // Frozen: a proposal arriving now waits for the next candidate.
    const second = makeNodeKey()
    const later = propose({ action: 'admit', enrolment: makeEnrolment(NETWORK, '87654321', second) }, t.keys[2]!)
    expect((await t.http.post('/v1/proposals', later)).status).toBe(201)
    expect((await t.http.get('/v1/candidate')).body.hash).toBe(candidate.body.hash)

    const answer = await signCandidate(t, [t.keys[0]!, t.keys[2]!, t.keys[4]!])
    expect(answer.body).toMatchObject({ published: true, kind: 'directory', version: 1 })
    const v1 = await t.http.get('/v1/directory')
    const verified = verifyDirectory(v1.body, { root })
    expect(verified.signed.institutions.map((i) => i.ura)).toEqual(['12345678'])
    expect(verified.signed.institutions[0]!.nodes[0]!.peerId).toBe(nodeKey.peerId)
    expect((await t.http.get('/v1/enrolments')).body).toEqual([])

    const ts = await t.http.get('/v1/timestamp')
    expect(verifyTimestamp(ts.body, root).signed.directory).toEqual({ version: 1, hash: verified.hash })

    // The later proposal makes directory v2, chained to v1.
    expect((await signCandidate(t, t.keys.slice(2, 5))).body).toMatchObject({ published: true, version: 2 })
    const v2 = await t.http.get('/v1/directory')
    const chained = verifyDirectory(v2.body, { root, held: { version: 1, hash: verified.hash } })
    expect(chained.signed.institutions.map((i) => i.ura)).toEqual(['12345678', '87654321'])
    expect(verifyTimestamp((await t.http.get('/v1/timestamp')).body, root).signed.directory).toEqual({ version: 2, hash: chained.hash })

    // Every version is still served, unchanged, and the chain verifies from v1.
    expect((await t.http.get('/v1/directories/1')).body).toEqual(v1.body)
    expect((await t.http.get('/v1/directories/2')).body).toEqual(v2.body)
    expect((await t.http.get('/v1/directories/3')).body.code).toBe('BEELDNET_ERR_NOT_FOUND')
    const history = await t.http.get('/v1/directories')
    expect(history.body.map((h: { version: number, hash: string }) => [h.version, h.hash])).toEqual([[1, verified.hash], [2, chained.hash]])
    expect(history.body[1].signers).toHaveLength(3)
    const fromV1 = verifyDirectoryChain([(await t.http.get('/v1/directories/2')).body], { root, held: { version: 1, hash: verified.hash } })
    expect(fromV1.hash).toBe(chained.hash)

    const status = await t.http.get('/v1/status')
    expect(status.body).toMatchObject({ directory: { version: 2, hash: chained.hash }, candidate: null, pendingProposals: 0, integrity: { ok: true } })

    // After a restart the same files are served.
    await t.restart()
    expect((await t.http.get('/v1/directory')).body).toEqual(v2.body)
    expect((await t.http.get('/v1/directories/1')).body).toEqual(v1.body)
  })

  it('serves the latest directory from cached bytes, gzipped on request, with an ETag', async () => {
    const t = await startRegistry()
    const root = await publishRootV1(t)
    await t.http.post('/v1/proposals', propose({ action: 'admit', enrolment: makeEnrolment(NETWORK, '11112222', makeNodeKey()) }, t.keys[0]!))
    await signCandidate(t, t.keys.slice(0, 3))

    const plain = await fetch(`${t.registry.url}/v1/directory`, { headers: { 'accept-encoding': 'identity' } })
    expect(plain.headers.get('vary')).toMatch(/accept-encoding/i)
    expect(plain.headers.get('content-encoding')).toBeNull()
    const plainBytes = Buffer.from(await plain.arrayBuffer())
    const etag = plain.headers.get('etag')!

    // Node's fetch would decompress transparently; ask with plain http to see the bytes on the wire.
    const { request } = await import('node:http')
    const gz = await new Promise<{ headers: Record<string, unknown>, body: Buffer }>((resolve, reject) => {
      request(`${t.registry.url}/v1/directory`, { headers: { 'accept-encoding': 'gzip, deflate' } }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }))
      }).on('error', reject).end()
    })
    expect(gz.headers['content-encoding']).toBe('gzip')
    expect(gunzipSync(gz.body).equals(plainBytes)).toBe(true)
    const verified = verifyDirectory(JSON.parse(plainBytes.toString()) as unknown, { root })
    expect(etag).toBe(`"${verified.hash}"`)

    const again = await fetch(`${t.registry.url}/v1/directory`, { headers: { 'if-none-match': etag } })
    expect(again.status).toBe(304)
  })

  it('re-signs the timestamp when half its validity has passed', async () => {
    let now = Date.now()
    const t = await startRegistry({ init: { timestampValidityMinutes: 10 }, clock: () => new Date(now) })
    const root = t.init.root
    // In-process, the same workflow as over HTTP.
    const rootCandidate = await t.registry.candidate()
    for (const key of t.keys.slice(0, 3)) await t.registry.addSignature({ hash: rootCandidate.hash, signature: signDocument(rootCandidate.signed, key) })
    await t.registry.submitProposal(propose({ action: 'admit', enrolment: makeEnrolment(NETWORK, '22223333', makeNodeKey()) }, t.keys[0]!))
    const dir = await t.registry.candidate()
    for (const key of t.keys.slice(0, 3)) await t.registry.addSignature({ hash: dir.hash, signature: signDocument(dir.signed, key) })

    const first = await t.registry.timestamp()
    expect(verifyTimestamp(first, root, new Date(now)).signed.directory).toEqual({ version: 1, hash: hashOfSigned(dir.signed as Directory) })
    now += 4 * 60_000
    expect(await t.registry.timestamp()).toEqual(first)
    now += 2 * 60_000
    const second = await t.registry.timestamp()
    expect(second.signed.issued).toBe(new Date(now).toISOString())
    expect(verifyTimestamp(second, root, new Date(now)).signed.expires).toBe(new Date(now + 10 * 60_000).toISOString())
    // A node holding the old one after it expired refuses it.
    expect(() => verifyTimestamp(first, root, new Date(now + 5 * 60_000))).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_EXPIRED' }))
  })
})
