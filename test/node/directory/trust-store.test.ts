import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { hashOfSigned } from '../../../protocol/canonical.ts'
import { createTrustStore, type TrustedSet } from '../../../node/directory/trust-store.ts'
import { makeGovernance, nextDirectory } from '../../helpers/registry-fixtures.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

const tempDir = useTempDirs()

/** A trust store with a pinned root and directory v1 saved in it. */
async function storeHoldingV1 (): Promise<{ dir: string, store: ReturnType<typeof createTrustStore>, v1: ReturnType<typeof nextDirectory> }> {
  const dir = await tempDir('trust')
  const gov = makeGovernance()
  const store = createTrustStore({ dir })
  await store.pinRoot(gov.signedRoot)
  const v1 = nextDirectory(gov, undefined, [{ action: 'renew' }])
  const set = await store.load() as TrustedSet
  await store.save({ ...set, directory: v1.envelope, directoryHash: v1.hash })
  return { dir, store, v1 }
}

describe('trust store', () => {
  it('pins a root signed by its own threshold, only with the expected hash, and never another one', async () => {
    const dir = await tempDir('trust')
    const gov = makeGovernance(3, 5)
    const store = createTrustStore({ dir })
    await expect(store.pinRoot(gov.signedRoot, 'ab'.repeat(32))).rejects.toMatchObject({ code: 'BEELDNET_ERR_ROOT_HASH_MISMATCH' })
    await expect(store.pinRoot(gov.sign(gov.root, gov.keys.slice(0, 2)))).rejects.toMatchObject({ code: 'BEELDNET_ERR_BELOW_THRESHOLD' })
    expect(await store.load()).toBeUndefined()

    const rootFile = join(await tempDir('files'), 'root.json')
    await writeFile(rootFile, JSON.stringify(gov.signedRoot))
    expect((await store.pinRootFile(rootFile, hashOfSigned(gov.root))).signed.version).toBe(1)
    expect((await store.pinRoot(gov.signedRoot)).hash).toBe(hashOfSigned(gov.root)) // again: harmless
    await expect(store.pinRoot(makeGovernance().signedRoot)).rejects.toMatchObject({ code: 'BEELDNET_ERR_ROOT_ALREADY_PINNED' })
    expect(await readdir(join(dir, 'roots'))).toEqual(['1.json'])
  })

  it('keeps every accepted directory version, and gives back the one of a past time with its signatures checked again', async () => {
    const { dir, store, v1 } = await storeHoldingV1()
    const issued = v1.envelope.signed.issued
    expect((await store.directoryAt(issued))?.version).toBe(1)
    expect(await store.directoryAt('2000-01-01T00:00:00Z')).toBeUndefined()
    // An archived directory edited afterwards no longer verifies.
    const path = join(dir, 'directories', '1.json')
    const kept = JSON.parse(await readFile(path, 'utf8')) as { signed: { expires: string } }
    kept.signed.expires = '2099-01-01T00:00:00Z'
    await writeFile(path, JSON.stringify(kept))
    await expect(store.directoryAt(issued)).rejects.toMatchObject({ code: expect.stringMatching(/^BEELDNET_ERR_/) })
  })

  it('writes trusted.json atomically: a temp file left by a crashed write is ignored and removed', async () => {
    const { dir, v1 } = await storeHoldingV1()
    expect((await readdir(dir)).sort()).toEqual(['directories', 'roots', 'trusted.json'])

    // a crash halfway through the next write leaves a partial temp file next to the intact set
    await writeFile(join(dir, '.trusted.json.0123456789ab.tmp'), '{"root": {"signed": {"ver')
    const loaded = await createTrustStore({ dir }).load()
    expect(loaded?.directoryHash).toBe(v1.hash)
    expect((await readdir(dir)).sort()).toEqual(['directories', 'roots', 'trusted.json'])
  })

  it('refuses a trusted.json edited on disk', async () => {
    const { dir, store } = await storeHoldingV1()

    const edited = JSON.parse(await readFile(join(dir, 'trusted.json'), 'utf8')) as TrustedSet
    edited.directory!.signed.expires = '2099-01-01T00:00:00.000Z'
    edited.directoryHash = hashOfSigned(edited.directory!.signed)
    await writeFile(join(dir, 'trusted.json'), JSON.stringify(edited))
    await expect(store.load()).rejects.toMatchObject({ code: 'BEELDNET_ERR_TRUST_STORE', message: expect.stringContaining('BEELDNET_ERR_FORGED') })

    await writeFile(join(dir, 'trusted.json'), '{"half')
    await expect(store.load()).rejects.toMatchObject({ code: 'BEELDNET_ERR_TRUST_STORE' })
  })
})
