import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createIdentityFile, loadIdentityFile } from '../../protocol/identity.ts'
import { useTempDirs } from '../helpers/temp-dir.ts'

const tempDir = useTempDirs()

describe('node identity file', () => {
  it('round-trips an Ed25519 key and its peer id', async () => {
    const path = join(await tempDir(), 'identity.key')
    const created = await createIdentityFile(path)
    const loaded = await loadIdentityFile(path)
    expect(loaded.peerId).toBe(created.peerId)
    expect(loaded.privateKey.type).toBe('Ed25519')
    const message = new TextEncoder().encode('receipt')
    expect(await created.privateKey.publicKey.verify(message, await loaded.privateKey.sign(message))).toBe(true)
  })

  it('never overwrites an existing key', async () => {
    const path = join(await tempDir(), 'identity.key')
    await createIdentityFile(path)
    await expect(createIdentityFile(path)).rejects.toMatchObject({ code: 'EEXIST' })
  })

  it('refuses a key file others can read', async () => {
    const path = join(await tempDir(), 'identity.key')
    await createIdentityFile(path)
    await chmod(path, 0o644)
    await expect(loadIdentityFile(path)).rejects.toMatchObject({ code: 'BEELDNET_ERR_IDENTITY_FILE', message: expect.stringContaining('chmod 600') })
  })

  it('refuses a file that is not a key, and a missing one', async () => {
    const dir = await tempDir()
    const path = join(dir, 'identity.key')
    await writeFile(path, 'not a key', { mode: 0o600 })
    await expect(loadIdentityFile(path)).rejects.toMatchObject({ code: 'BEELDNET_ERR_IDENTITY_FILE' })
    await expect(loadIdentityFile(join(dir, 'absent.key'))).rejects.toMatchObject({ code: 'BEELDNET_ERR_IDENTITY_FILE' })
  })
})
