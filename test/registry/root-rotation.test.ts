import { describe, expect, it } from 'vitest'
import { generateKeyPair, signDocument, type KeyPair } from '../../protocol/keys.ts'
import type { PublicKeyEntry } from '../../protocol/registry/documents.ts'
import { verifyDirectory, verifyInitialRoot, verifyRootUpdate } from '../../protocol/registry/verify.ts'
import { GovernanceClient } from '../../registry/governance/client.ts'
import { makeEnrolment, makeNodeKey } from '../helpers/registry-fixtures.ts'
import { NETWORK, propose, publishRootV1, useRegistries, type TestRegistry } from './helpers.ts'

const entry = (k: KeyPair, name: string): PublicKeyEntry => ({ keyid: k.keyid, publicKey: k.publicKey, name })

/** Proposes a 3-of-5 root keeping old members 1 and 2 and adding three new keys. */
async function proposeRotation (t: TestRegistry): Promise<{ fresh: KeyPair[], candidate: { hash: string, signed: unknown } }> {
  await publishRootV1(t)
  const fresh = [generateKeyPair(), generateKeyPair(), generateKeyPair()]
  const governanceKeys = [entry(t.keys[0]!, 'member 1'), entry(t.keys[1]!, 'member 2'), ...fresh.map((k, i) => entry(k, `new member ${i + 1}`))]
  const proposed = await t.http.post('/v1/proposals', propose({ action: 'update-root', threshold: 3, governanceKeys }, t.keys[0]!))
  expect(proposed.status).toBe(201)
  const candidate = await t.http.get('/v1/candidate')
  expect(candidate.body).toMatchObject({ kind: 'root', base: { version: 1 }, proposals: [{ id: proposed.body.id }] })
  expect(candidate.body.signed).toMatchObject({ version: 2, threshold: 3 })
  return { fresh, candidate: candidate.body }
}

async function sign (t: TestRegistry, candidate: { hash: string, signed: unknown }, key: KeyPair): Promise<Record<string, any>> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const answer = await t.http.post('/v1/candidate/signatures', { hash: candidate.hash, signature: signDocument(candidate.signed, key) })
  expect(answer.status).toBe(200)
  return answer.body
}

describe('root rotation', () => {
  const startRegistry = useRegistries()

  it('is not published on the new keys alone, only once the old keys reach their threshold too', async () => {
    const t = await startRegistry()
    const { fresh, candidate } = await proposeRotation(t)
    // A directory proposal waits while the root candidate is frozen; its signer is leaving governance.
    const enrolment = makeEnrolment(NETWORK, '12345678', makeNodeKey())
    const leaving = await t.http.post('/v1/proposals', propose({ action: 'admit', enrolment }, t.keys[4]!))
    expect(leaving.status).toBe(201)
    for (const key of fresh) await sign(t, candidate, key)
    let answer = await sign(t, candidate, t.keys[2]!)
    expect(answer).toMatchObject({ published: false, thresholds: [{ of: 'root v1', collected: 1, needed: 3 }, { of: 'root v2', collected: 3, needed: 3 }] })
    answer = await sign(t, candidate, t.keys[3]!)
    expect(answer.published).toBe(false)
    answer = await sign(t, candidate, t.keys[4]!)
    expect(answer).toMatchObject({ published: true, kind: 'root', version: 2 })

    const v1 = verifyInitialRoot((await t.http.get('/v1/roots/1')).body).signed
    const v2 = verifyRootUpdate(v1, (await t.http.get('/v1/root')).body).signed
    expect(v2.governanceKeys.map((k) => k.keyid)).toEqual([t.keys[0]!.keyid, t.keys[1]!.keyid, ...fresh.map((k) => k.keyid)])

    // Under root v2, a member who left can neither propose nor sign; the new members can.
    expect((await t.http.post('/v1/proposals', propose({ action: 'admit', enrolment }, t.keys[4]!))).body.code).toBe('BEELDNET_ERR_BELOW_THRESHOLD')
    expect((await t.http.post('/v1/proposals', propose({ action: 'admit', enrolment }, fresh[0]!))).status).toBe(201)
    const dir = (await t.http.get('/v1/candidate')).body
    expect(dir.signed.rootVersion).toBe(2)
    expect(dir.proposals).toHaveLength(1)
    const setAside = (await t.http.get(`/v1/proposals/${leaving.body.id as string}`)).body
    expect(setAside).toMatchObject({ status: 'rejected', reason: expect.stringContaining('BEELDNET_ERR_BELOW_THRESHOLD') })
    expect((await t.http.post('/v1/candidate/signatures', { hash: dir.hash, signature: signDocument(dir.signed, t.keys[4]!) })).body.code).toBe('BEELDNET_ERR_NOT_GOVERNANCE_KEY')

    // The lead's governance client recomputes the candidate from the signed proposals and agrees.
    const reviewed = await new GovernanceClient(t.registry.url).reviewCandidate()
    expect(reviewed.candidate.hash).toBe(dir.hash)
    for (const key of fresh) await sign(t, dir, key)
    expect(verifyDirectory((await t.http.get('/v1/directory')).body, { root: v2 }).signed.rootVersion).toBe(2)
  })

  it('is not published on the old keys alone', async () => {
    const t = await startRegistry()
    const { fresh, candidate } = await proposeRotation(t)
    for (const key of t.keys.slice(2)) await sign(t, candidate, key)
    let answer = await sign(t, candidate, fresh[0]!)
    expect(answer).toMatchObject({ published: false, thresholds: [{ collected: 3, needed: 3 }, { collected: 1, needed: 3 }] })
    expect((await t.http.get('/v1/root')).body.signed.version).toBe(1)
    // A key in both sets counts for both.
    answer = await sign(t, candidate, t.keys[0]!)
    expect(answer).toMatchObject({ published: false, thresholds: [{ collected: 4 }, { collected: 2 }] })
    answer = await sign(t, candidate, fresh[1]!)
    expect(answer).toMatchObject({ published: true, version: 2 })
  })
})
