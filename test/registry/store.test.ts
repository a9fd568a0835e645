import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { generateKeyPair, signDocument } from '../../protocol/keys.ts'
import type { SignedDirectory } from '../../protocol/registry/documents.ts'
import { RegistryStore } from '../../registry/store/registry-store.ts'
import { acceptsGzip } from '../../registry/directory-cache.ts'
import { useTempDirs } from '../helpers/temp-dir.ts'

const tempDir = useTempDirs()

describe('registry store', () => {
  it('never overwrites a published directory version', async () => {
    const store = new RegistryStore({ location: join(await tempDir('registry-store'), 'db') })
    await store.start()
    try {
      const key = generateKeyPair()
      const make = (issued: string): SignedDirectory => {
        const signed = { type: 'beeldnet/directory' as const, network: 'beeldnet-test', version: 1, rootVersion: 1, prev: null, issued, expires: issued, entries: { count: 0, root: '0'.repeat(64) } }
        return { signed, signatures: [signDocument(signed, key)], institutions: [] }
      }
      const first = make('2026-01-01T00:00:00.000Z')
      const index = { version: 1, hash: 'a'.repeat(64), issued: first.signed.issued, expires: first.signed.expires, signers: [] }
      await store.publish({ directory: { envelope: first, index }, proposals: [], enrolments: [] })
      await expect(store.publish({ directory: { envelope: make('2026-02-01T00:00:00.000Z'), index }, proposals: [], enrolments: [] }))
        .rejects.toMatchObject({ code: 'BEELDNET_ERR_APPEND_ONLY' })
      expect(await store.directory(1)).toEqual(first)
      expect(await store.latestDirectory()).toEqual(first)
    } finally {
      await store.stop()
    }
  })

  it('reads Accept-Encoding as HTTP means it', () => {
    expect(acceptsGzip('gzip, deflate, br')).toBe(true)
    expect(acceptsGzip('br;q=1.0, gzip;q=0.8')).toBe(true)
    expect(acceptsGzip('gzip;q=0')).toBe(false)
    expect(acceptsGzip('identity')).toBe(false)
    expect(acceptsGzip(undefined)).toBe(false)
  })
})
