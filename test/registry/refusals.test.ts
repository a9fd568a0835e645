import { describe, expect, it } from 'vitest'
import { generateKeyPair, signDocument } from '../../protocol/keys.ts'
import type { SignedEnrolment } from '../../protocol/registry/documents.ts'
import { makeEnrolment, makeNodeKey } from '../helpers/registry-fixtures.ts'
import { client, NETWORK, propose, publishRootV1, useRegistries } from './helpers.ts'

/** Re-signs an edited enrolment with `key`, as a node would sign what it sends. */
function resign (enrolment: SignedEnrolment, edit: (signed: Record<string, unknown>) => void, key: { keyid: string, privateKey: string, publicKey: string }): unknown {
  const signed = { ...enrolment.signed } as Record<string, unknown>
  edit(signed)
  return { signed, signatures: [signDocument(signed, key)] }
}

describe('registry refusals, each with its code', () => {
  const startRegistry = useRegistries()

  it('refuses enrolments without proof of possession, with patient fields, replayed, or for another network', async () => {
    const t = await startRegistry()
    const nodeKey = makeNodeKey()
    const other = generateKeyPair()

    const byOther = await t.http.post('/v1/enrolments', makeEnrolment(NETWORK, '12345678', nodeKey, 'Ziekenhuis', other))
    expect(byOther).toMatchObject({ status: 422, body: { code: 'BEELDNET_ERR_PROOF_OF_POSSESSION' } })

    for (const field of ['bsn', 'patientName']) {
      const withPatient = resign(makeEnrolment(NETWORK, '12345678', nodeKey), (s) => { s[field] = field === 'bsn' ? '123456782' : 'Jansen^Piet' }, nodeKey)
      const answer = await t.http.post('/v1/enrolments', withPatient)
      expect(answer).toMatchObject({ status: 400, body: { code: 'BEELDNET_ERR_SCHEMA' } })
      expect(answer.body.message).toContain(field)
    }

    const old = resign(makeEnrolment(NETWORK, '12345678', nodeKey), (s) => { s.requested = new Date(Date.now() - 11 * 60_000).toISOString() }, nodeKey)
    expect(await t.http.post('/v1/enrolments', old)).toMatchObject({ status: 422, body: { code: 'BEELDNET_ERR_STALE_REQUEST' } })
    const future = resign(makeEnrolment(NETWORK, '12345678', nodeKey), (s) => { s.requested = new Date(Date.now() + 11 * 60_000).toISOString() }, nodeKey)
    expect(await t.http.post('/v1/enrolments', future)).toMatchObject({ status: 422, body: { code: 'BEELDNET_ERR_STALE_REQUEST' } })

    expect(await t.http.post('/v1/enrolments', makeEnrolment('another-net', '12345678', nodeKey))).toMatchObject({ status: 422, body: { code: 'BEELDNET_ERR_WRONG_NETWORK' } })
    expect((await t.http.get('/v1/enrolments')).body).toEqual([])
  })

  it('refuses proposals before root v1, not signed by governance, or that do not apply', async () => {
    const t = await startRegistry()
    const enrolment = makeEnrolment(NETWORK, '12345678', makeNodeKey())
    const early = await t.http.post('/v1/proposals', propose({ action: 'admit', enrolment }, t.keys[0]!))
    expect(early).toMatchObject({ status: 503, body: { code: 'BEELDNET_ERR_NOT_PUBLISHED' } })

    await publishRootV1(t)
    const outsider = generateKeyPair()
    expect(await t.http.post('/v1/proposals', propose({ action: 'admit', enrolment }, outsider))).toMatchObject({ status: 422, body: { code: 'BEELDNET_ERR_BELOW_THRESHOLD' } })
    const tampered = propose({ action: 'admit', enrolment }, t.keys[0]!)
    tampered.signed.proposed = new Date(0).toISOString()
    expect(await t.http.post('/v1/proposals', tampered)).toMatchObject({ status: 422, body: { code: 'BEELDNET_ERR_FORGED' } })

    expect(await t.http.post('/v1/proposals', propose({ action: 'suspend', ura: '99999999', reason: 'test' }, t.keys[0]!))).toMatchObject({ status: 409, body: { code: 'BEELDNET_ERR_INVALID_CHANGE' } })
    // Applies on top of what is pending: admitting the same URA twice is refused at once.
    expect((await t.http.post('/v1/proposals', propose({ action: 'admit', enrolment }, t.keys[0]!))).status).toBe(201)
    const again = makeEnrolment(NETWORK, '12345678', makeNodeKey())
    expect(await t.http.post('/v1/proposals', propose({ action: 'admit', enrolment: again }, t.keys[1]!))).toMatchObject({ status: 409, body: { code: 'BEELDNET_ERR_INVALID_CHANGE' } })
    // An admit whose enrolment lacks proof of possession cannot be slipped in by governance either.
    const forgedEnrolment = makeEnrolment(NETWORK, '23456789', makeNodeKey(), 'X', generateKeyPair())
    expect(await t.http.post('/v1/proposals', propose({ action: 'admit', enrolment: forgedEnrolment }, t.keys[1]!))).toMatchObject({ status: 422, body: { code: 'BEELDNET_ERR_PROOF_OF_POSSESSION' } })
    // update-root with an unreachable threshold.
    const badRoot = propose({ action: 'update-root', threshold: 4, governanceKeys: t.init.root.governanceKeys.slice(0, 3) }, t.keys[0]!)
    expect(await t.http.post('/v1/proposals', badRoot)).toMatchObject({ status: 409, body: { code: 'BEELDNET_ERR_INVALID_CHANGE' } })
  })

  it('refuses signatures by non-governance keys, forged ones, and ones over a stale hash', async () => {
    const t = await startRegistry()
    const candidate = (await t.http.get('/v1/candidate')).body
    const outsider = generateKeyPair()
    expect(await t.http.post('/v1/candidate/signatures', { hash: candidate.hash, signature: signDocument(candidate.signed, outsider) }))
      .toMatchObject({ status: 403, body: { code: 'BEELDNET_ERR_NOT_GOVERNANCE_KEY' } })

    // A governance keyid with a signature over something else.
    const forged = { keyid: t.keys[0]!.keyid, sig: signDocument({ other: 'document' }, t.keys[0]!).sig }
    expect(await t.http.post('/v1/candidate/signatures', { hash: candidate.hash, signature: forged })).toMatchObject({ status: 422, body: { code: 'BEELDNET_ERR_FORGED' } })
    // A keyid claimed by another key's signature.
    const claimed = { keyid: t.keys[1]!.keyid, sig: signDocument(candidate.signed, t.keys[2]!).sig }
    expect(await t.http.post('/v1/candidate/signatures', { hash: candidate.hash, signature: claimed })).toMatchObject({ status: 422, body: { code: 'BEELDNET_ERR_FORGED' } })

    await publishRootV1(t)
    const enrolment = makeEnrolment(NETWORK, '12345678', makeNodeKey())
    await t.http.post('/v1/proposals', propose({ action: 'admit', enrolment }, t.keys[0]!))
    const dir = (await t.http.get('/v1/candidate')).body
    // A signature over the old (root) candidate's hash.
    expect(await t.http.post('/v1/candidate/signatures', { hash: candidate.hash, signature: signDocument(candidate.signed, t.keys[3]!) }))
      .toMatchObject({ status: 409, body: { code: 'BEELDNET_ERR_CANDIDATE_CHANGED' } })
    // Unknown fields in the request are refused too.
    expect(await t.http.post('/v1/candidate/signatures', { hash: dir.hash, signature: signDocument(dir.signed, t.keys[0]!), note: 'x' }))
      .toMatchObject({ status: 400, body: { code: 'BEELDNET_ERR_SCHEMA' } })
    expect((await t.http.get('/v1/status')).body.candidate).toMatchObject({ kind: 'directory', collected: 0, needed: 3 })
  })

  it('lets a governance member discard a frozen candidate; its proposals go into the next one', async () => {
    const t = await startRegistry()
    await publishRootV1(t)
    await t.http.post('/v1/proposals', propose({ action: 'admit', enrolment: makeEnrolment(NETWORK, '12345678', makeNodeKey()) }, t.keys[0]!))
    const first = (await t.http.get('/v1/candidate')).body
    const request = (hash: string, key = t.keys[1]!): unknown => {
      const signed = { type: 'beeldnet/discard-candidate', network: NETWORK, hash }
      return { signed, signatures: [signDocument(signed, key)] }
    }
    const del = async (body: unknown): Promise<{ status: number, body: { code?: string } }> =>
      t.http.raw('/v1/candidate', { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    expect(await del(request(first.hash, generateKeyPair()))).toMatchObject({ status: 422, body: { code: 'BEELDNET_ERR_BELOW_THRESHOLD' } })
    expect(await del(request('0'.repeat(64)))).toMatchObject({ status: 409, body: { code: 'BEELDNET_ERR_CANDIDATE_CHANGED' } })
    expect(await del(request(first.hash))).toMatchObject({ status: 200, body: { discarded: first.hash } })
    await new Promise((resolve) => setTimeout(resolve, 5))
    const next = (await t.http.get('/v1/candidate')).body
    expect(next.hash).not.toBe(first.hash)
    expect(next.proposals.map((p: { id: string }) => p.id)).toEqual(first.proposals.map((p: { id: string }) => p.id))
    expect((await t.http.get(`/v1/proposals/${next.proposals[0].id as string}`)).body).toMatchObject({ status: 'pending', seq: 0 })
    expect((await t.http.get('/v1/proposals/nope')).body.code).toBe('BEELDNET_ERR_NOT_FOUND')
  })

  it('answers oversized, malformed and wrongly typed bodies and unknown paths with codes', async () => {
    const t = await startRegistry({ init: { bodyLimitBytes: 2048 } })
    const big = await t.http.raw('/v1/enrolments', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pad: 'x'.repeat(4096) }) })
    expect(big).toMatchObject({ status: 413, body: { code: 'BEELDNET_ERR_BODY_TOO_LARGE' } })
    const broken = await t.http.raw('/v1/proposals', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"signed": {' })
    expect(broken).toMatchObject({ status: 400, body: { code: 'BEELDNET_ERR_MALFORMED_BODY' } })
    const empty = await t.http.raw('/v1/proposals', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '' })
    expect(empty).toMatchObject({ status: 400, body: { code: 'BEELDNET_ERR_MALFORMED_BODY' } })
    const text = await t.http.raw('/v1/proposals', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' })
    expect(text).toMatchObject({ status: 415, body: { code: 'BEELDNET_ERR_MEDIA_TYPE' } })
    const poisoned = await t.http.raw('/v1/proposals', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"__proto__": {"x": 1}}' })
    expect(poisoned).toMatchObject({ status: 400, body: { code: 'BEELDNET_ERR_MALFORMED_BODY' } })
    expect(await t.http.get('/v1/nothing')).toMatchObject({ status: 404, body: { code: 'BEELDNET_ERR_NOT_FOUND' } })
    expect(await t.http.get('/v1/roots/abc')).toMatchObject({ status: 400, body: { code: 'BEELDNET_ERR_BAD_REQUEST' } })
    expect(await t.http.get('/v1/roots/7')).toMatchObject({ status: 404, body: { code: 'BEELDNET_ERR_NOT_FOUND' } })
  })

  it('rate-limits each client address', async () => {
    const t = await startRegistry({ init: { rateLimitPerMinute: 5 } })
    const http = client(t.registry.url)
    const answers = []
    for (let i = 0; i < 7; i++) answers.push(await http.get('/v1/status'))
    expect(answers.slice(0, 5).map((a) => a.status)).toEqual([200, 200, 200, 200, 200])
    expect(answers[5]).toMatchObject({ status: 429, body: { code: 'BEELDNET_ERR_RATE_LIMITED' } })
    expect(answers[5]!.headers.get('retry-after')).not.toBeNull()
  })
})
