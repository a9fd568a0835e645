import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createIdentityFile } from '../../../protocol/identity.ts'
import { peerIdOfPublicKey } from '../../../protocol/keys.ts'
import { verifyEnrolment } from '../../../protocol/registry/verify.ts'
import { buildEnrolment, sendEnrolment } from '../../../node/directory/enrol.ts'
import { createRegistryClient } from '../../../node/directory/registry-client.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { startStaticRegistry, type StaticRegistry } from './static-registry.ts'

const tempDir = useTempDirs()
let registry: StaticRegistry | undefined
afterEach(async () => { await registry?.stop(); registry = undefined })

describe('enrolment', () => {
  it('is signed by the node identity key and proves possession of it', async () => {
    const identity = await createIdentityFile(join(await tempDir('node'), 'identity.key'))
    registry = await startStaticRegistry()
    const enrolment = await buildEnrolment(identity, {
      network: 'beeldnet-test', ura: '12345678', name: 'Ziekenhuis Zuid', departments: [{ code: 'RAD', name: 'Radiologie' }], addresses: ['/dns4/zuid.example.nl/tcp/4001']
    })
    expect(await sendEnrolment(createRegistryClient({ url: registry.url }), enrolment)).toEqual({ id: 'enr-1' })

    const received = verifyEnrolment(registry.enrolments[0], 'beeldnet-test')
    expect(received.signed).toMatchObject({ ura: '12345678', kind: 'hospital', peerId: identity.peerId, addresses: ['/dns4/zuid.example.nl/tcp/4001'] })
    expect(peerIdOfPublicKey(received.signed.publicKey)).toBe(identity.peerId)
    expect(Math.abs(Date.parse(received.signed.requested) - Date.now())).toBeLessThan(60_000)
  })

  it('refuses locally what the registry would refuse', async () => {
    const identity = await createIdentityFile(join(await tempDir('node'), 'identity.key'))
    await expect(buildEnrolment(identity, { network: 'beeldnet-test', ura: '1234', name: 'X' })).rejects.toMatchObject({ code: 'BEELDNET_ERR_SCHEMA', message: expect.stringContaining('signed.ura') })
  })

  it('passes on the registry\'s refusal code, and reports a registry that does not answer', async () => {
    registry = await startStaticRegistry()
    const client = createRegistryClient({ url: registry.url })
    await expect(client.get('/v1/directory')).rejects.toMatchObject({ code: 'BEELDNET_ERR_NOT_FOUND' })
    const url = registry.url
    await registry.stop()
    registry = undefined
    await expect(createRegistryClient({ url }).get('/v1/directory')).rejects.toMatchObject({ code: 'BEELDNET_ERR_REGISTRY_UNREACHABLE' })
  })
})
