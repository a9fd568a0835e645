import { describe, expect, it } from 'vitest'
import { verifyDirectoryDelta } from '../../protocol/registry/delta.ts'
import { verifyDirectory } from '../../protocol/registry/verify.ts'
import { makeEnrolment, makeNodeKey } from '../helpers/registry-fixtures.ts'
import { NETWORK, propose, publishRootV1, signCandidate, useRegistries, type TestRegistry } from './helpers.ts'
import type { Change } from '../../protocol/registry/documents.ts'

/*
 * GET /v1/directories/:version/delta: what a node holding that version needs to reach the current
 * one. Whatever the registry serves there, the node checks it against what it holds; here the
 * registry's own deltas must check out and equal the whole current directory.
 */

async function publish (t: TestRegistry, changes: Change[]): Promise<void> {
  for (const change of changes) expect((await t.http.post('/v1/proposals', propose(change, t.keys[0]!))).status).toBe(201)
  expect((await signCandidate(t, t.keys.slice(0, 3))).body.published).toBe(true)
}

describe('the registry serves deltas', () => {
  const startRegistry = useRegistries()

  it('from any version it holds to the current one, each checking out against that version', async () => {
    const t = await startRegistry()
    const root = await publishRootV1(t)
    const admit = (ura: string): Change => ({ action: 'admit', enrolment: makeEnrolment(NETWORK, ura, makeNodeKey()) })
    await publish(t, [admit('12345678'), admit('23456789')])
    const v1 = verifyDirectory((await t.http.get('/v1/directories/1')).body, { root })
    await publish(t, [{ action: 'suspend', ura: '12345678', reason: 'audit' }])
    await publish(t, [admit('34567890')])
    const v3 = verifyDirectory((await t.http.get('/v1/directory')).body, { root })

    const delta = await t.http.get('/v1/directories/1/delta')
    expect(delta.status).toBe(200)
    expect(delta.body.headers.map((h: { signed: { version: number } }) => h.signed.version)).toEqual([2, 3])
    expect(delta.body.upserts.map((i: { ura: string }) => i.ura)).toEqual(['12345678', '34567890'])
    const reached = verifyDirectoryDelta(delta.body, { roots: new Map([[1, root]]), current: root, held: { directory: v1.signed, hash: v1.hash, tree: v1.tree } })
    expect(reached.hash).toBe(v3.hash)
    expect(reached.signed).toEqual(v3.signed)

    // the current version itself: no change; unknown versions: not found
    expect((await t.http.get('/v1/directories/3/delta')).body).toMatchObject({ headers: [{ signed: { version: 3 } }], upserts: [], removals: [] })
    expect(await t.http.get('/v1/directories/4/delta')).toMatchObject({ status: 404, body: { code: 'BEELDNET_ERR_NOT_FOUND' } })
    expect(await t.http.get('/v1/directories/0/delta')).toMatchObject({ status: 400, body: { code: 'BEELDNET_ERR_BAD_REQUEST' } })
  })
})
