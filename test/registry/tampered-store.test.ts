import { join } from 'node:path'
import { Level } from 'level'
import { describe, expect, it } from 'vitest'
import type { SignedDirectory } from '../../protocol/registry/documents.ts'
import { verifyDirectory } from '../../protocol/registry/verify.ts'
import { createRegistry } from '../../registry/registry.ts'
import { makeEnrolment, makeNodeKey } from '../helpers/registry-fixtures.ts'
import { captureLogger, NETWORK, propose, publishRootV1, signCandidate, useRegistries } from './helpers.ts'

describe('a registry whose store was edited by hand', () => {
  const startRegistry = useRegistries()

  it('refuses to start (or, told to serve, is flagged), and nodes refuse its directory as forged', async () => {
    const t = await startRegistry()
    const root = await publishRootV1(t)
    await t.http.post('/v1/proposals', propose({ action: 'admit', enrolment: makeEnrolment(NETWORK, '12345678', makeNodeKey()) }, t.keys[0]!))
    await signCandidate(t, t.keys.slice(0, 3))
    const genuine = (await t.http.get('/v1/directory')).body
    expect(verifyDirectory(genuine, { root }).signed.version).toBe(1)
    await t.registry.stop()

    // An attacker on the server points the hospital's node at their own address.
    const db = new Level<string, unknown>(join(t.dir, 'db'), { valueEncoding: 'json' })
    const directories = db.sublevel<string, SignedDirectory>('directories', { valueEncoding: 'json' })
    const stored = (await directories.get('0000000001'))!
    stored.institutions[0]!.nodes[0]!.addresses = ['/ip4/203.0.113.66/tcp/4001']
    await directories.put('0000000001', stored)
    await db.close()

    const refusing = captureLogger()
    const strict = createRegistry({ logger: refusing.logger }, { dir: t.dir, env: {}, port: 0 })
    await expect(strict.start()).rejects.toMatchObject({ code: 'BEELDNET_ERR_STORE_TAMPERED' })
    expect(refusing.lines.some((l) => l.level === 50 && String(l.msg).includes('DOES NOT VERIFY'))).toBe(true)

    // Told to serve what it has, it serves it read-only and says so; every node refuses the file.
    await t.restart({ onTamper: 'serve' })
    const served = await t.http.get('/v1/directory')
    expect(served.body.institutions[0].nodes[0].addresses).toEqual(['/ip4/203.0.113.66/tcp/4001'])
    expect(() => verifyDirectory(served.body, { root })).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_ENTRIES_MISMATCH' }))
    expect(() => verifyDirectory(served.body, { root, held: { version: 1, hash: verifyDirectory(genuine, { root }).hash } }))
      .toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_ENTRIES_MISMATCH' }))

    const health = await t.http.get('/health')
    expect(health).toMatchObject({ status: 500, body: { status: 'tampered', code: 'BEELDNET_ERR_STORE_TAMPERED' } })
    expect(health.body.problems[0]).toContain('BEELDNET_ERR_ENTRIES_MISMATCH')
    expect((await t.http.get('/v1/status')).body.integrity.ok).toBe(false)
    expect(await t.http.get('/v1/timestamp')).toMatchObject({ status: 500, body: { code: 'BEELDNET_ERR_STORE_TAMPERED' } })
    const proposal = propose({ action: 'suspend', ura: '12345678', reason: 'test' }, t.keys[0]!)
    expect(await t.http.post('/v1/proposals', proposal)).toMatchObject({ status: 500, body: { code: 'BEELDNET_ERR_STORE_TAMPERED' } })
  })
})
