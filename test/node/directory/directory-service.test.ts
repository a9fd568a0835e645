import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { hashOfSigned } from '../../../protocol/canonical.ts'
import { generateKeyPair, signDocument } from '../../../protocol/keys.ts'
import { buildDirectoryCandidate } from '../../../protocol/registry/changes.ts'
import { makeDirectoryDelta } from '../../../protocol/registry/delta.ts'
import type { Directory, Root, SignedDirectory } from '../../../protocol/registry/documents.ts'
import { createDirectoryService, type DirectoryAlarm, type DirectoryService, type DirectoryUpdate } from '../../../node/directory/directory-service.ts'
import { createTrustStore, type TrustStore } from '../../../node/directory/trust-store.ts'
import { makeEnrolment, makeGovernance, makeNodeKey, nextDirectory, type TestGovernance } from '../../helpers/registry-fixtures.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { publishDirectory, publishRoot, startStaticRegistry, type StaticRegistry } from './static-registry.ts'

const tempDir = useTempDirs()
const silent = pino({ level: 'silent' })
const DAY = 86_400_000
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

interface Setup {
  gov: TestGovernance
  registry: StaticRegistry
  trustDir: string
  trustStore: TrustStore
  service: DirectoryService
  updates: DirectoryUpdate[]
  alarms: DirectoryAlarm[]
  /** builds, signs and serves the next directory admitting one more institution */
  publishNext: (options?: { issued?: string, validityDays?: number }) => ReturnType<typeof nextDirectory>
  versions: Array<ReturnType<typeof nextDirectory>>
}

async function setup (init: { mirrors?: string[], now?: () => Date } = {}): Promise<Setup> {
  const gov = makeGovernance(3, 5)
  const registry = await startStaticRegistry()
  cleanups.push(registry.stop)
  publishRoot(registry, gov.signedRoot)
  const trustDir = join(await tempDir('trust'), 'trust')
  const trustStore = createTrustStore({ dir: trustDir })
  await trustStore.pinRoot(gov.signedRoot, hashOfSigned(gov.root))
  const service = createDirectoryService({ trustStore, logger: silent }, { registryUrl: registry.url, mirrors: init.mirrors, pollIntervalSeconds: 0, now: init.now })
  await service.start()
  cleanups.push(() => service.stop())
  const updates: DirectoryUpdate[] = []
  const alarms: DirectoryAlarm[] = []
  service.on('update', (u) => updates.push(u))
  service.on('alarm', (a) => alarms.push(a))
  const versions: Array<ReturnType<typeof nextDirectory>> = []
  const publishNext = (options = {}): ReturnType<typeof nextDirectory> => {
    const ura = String(10000001 + versions.length)
    const next = nextDirectory(gov, versions.at(-1)?.signed, [{ action: 'admit', enrolment: makeEnrolment(gov.root.network, ura, makeNodeKey()) }], options)
    versions.push(next)
    publishDirectory(registry, gov, next.envelope)
    return next
  }
  return { gov, registry, trustDir, trustStore, service, updates, alarms, publishNext, versions }
}

/** A directory built on `base` with the given changes, signed by `signers` (default: threshold). */
function variant (gov: TestGovernance, base: Directory | undefined, edit: (d: Directory) => void = () => {}, signers = gov.keys.slice(0, 3)): SignedDirectory {
  const dir = buildDirectoryCandidate(base, gov.root, [{ action: 'admit', enrolment: makeEnrolment(gov.root.network, '20000001', makeNodeKey()) }], { issued: new Date().toISOString(), validityDays: 30 })
  edit(dir)
  return gov.sign(dir, signers)
}

describe('directory service: refresh from the registry', () => {
  it('picks up v1, then v2, emitting an update each time and nothing when there is no news', async () => {
    const s = await setup()
    expect(s.service.status()).toMatchObject({ rootVersion: 1, directoryVersion: null, expired: false })

    const v1 = s.publishNext()
    expect(await s.service.refresh()).toMatchObject({ changed: true, version: 1, hash: v1.hash })
    expect(s.updates).toHaveLength(1)
    expect(s.updates[0]).toMatchObject({ previous: undefined, current: { version: 1 }, hash: v1.hash, source: s.registry.url })

    const v2 = s.publishNext()
    await s.service.refresh()
    expect(s.updates.map((u) => [u.previous?.version, u.current.version])).toEqual([[undefined, 1], [1, 2]])
    const status = s.service.status()
    expect(status).toMatchObject({ rootVersion: 1, directoryVersion: 2, hash: v2.hash, institutions: 2, expired: false, lastError: null, registryUrl: s.registry.url })
    expect(status.lastRefreshed).not.toBeNull()
    expect(s.service.directory?.institutions.map((i) => i.ura)).toEqual(['10000001', '10000002'])

    s.registry.requests.length = 0
    expect(await s.service.refresh()).toMatchObject({ changed: false, version: 2 })
    // the timestamp said nothing is new: the directory itself is not fetched again
    expect(s.registry.requests).toEqual(['/v1/timestamp'])
    expect(s.updates).toHaveLength(2)
  })

  it('jumps from v1 to v3 by verifying v2 in between', async () => {
    const s = await setup()
    s.publishNext()
    await s.service.refresh()
    s.publishNext()
    const v3 = s.publishNext()
    s.registry.requests.length = 0
    expect(await s.service.refresh()).toMatchObject({ changed: true, version: 3, hash: v3.hash })
    expect(s.registry.requests).toEqual(['/v1/timestamp', '/v1/directories/1/delta', '/v1/directory', '/v1/directories/2'])
    expect(s.updates.at(-1)).toMatchObject({ previous: { version: 1 }, current: { version: 3 } })
  })

  it('refuses a jump whose version in between does not chain, keeping v1', async () => {
    const s = await setup()
    const v1 = s.publishNext()
    await s.service.refresh()
    s.publishNext()
    s.publishNext()
    s.registry.files.set('/v1/directories/2', variant(s.gov, v1.signed, (d) => { d.prev = 'cd'.repeat(32) }))
    await expect(s.service.refresh()).rejects.toMatchObject({ code: 'BEELDNET_ERR_BROKEN_CHAIN' })
    expect(s.service.status()).toMatchObject({ directoryVersion: 1, hash: v1.hash, lastError: { code: 'BEELDNET_ERR_BROKEN_CHAIN' } })
  })

  it('picks up the directory on start and polls (the event tells)', async () => {
    const gov = makeGovernance()
    const registry = await startStaticRegistry()
    cleanups.push(registry.stop)
    const trustStore = createTrustStore({ dir: await tempDir('trust') })
    await trustStore.pinRoot(gov.signedRoot)
    const v1 = nextDirectory(gov, undefined, [{ action: 'renew' }])
    publishDirectory(registry, gov, v1.envelope)
    const service = createDirectoryService({ trustStore, logger: silent }, { registryUrl: registry.url, pollIntervalSeconds: 60 })
    const update = new Promise<DirectoryUpdate>((resolve) => service.once('update', resolve))
    await service.start()
    cleanups.push(() => service.stop())
    expect((await update).hash).toBe(v1.hash)
  })

  it('keeps working from the held directory when the registry is down, and reports its age', async () => {
    let offset = 0
    const s = await setup({ now: () => new Date(Date.now() + offset) })
    s.publishNext()
    await s.service.refresh()
    await s.registry.stop()
    offset = 2 * 3_600_000
    await expect(s.service.refresh()).rejects.toMatchObject({ code: 'BEELDNET_ERR_REGISTRY_UNREACHABLE' })
    const status = s.service.status()
    expect(status).toMatchObject({ directoryVersion: 1, institutions: 1, expired: false, lastError: { code: 'BEELDNET_ERR_REGISTRY_UNREACHABLE', source: s.registry.url } })
    expect(status.ageSeconds).toBeGreaterThanOrEqual(7200)
    expect(status.ageSeconds).toBeLessThan(7300)
    offset = 31 * DAY
    expect(s.service.status().expired).toBe(true)
  })

  it('falls back to a mirror (a plain file server without timestamps) when the registry fails', async () => {
    const mirror = await startStaticRegistry()
    cleanups.push(mirror.stop)
    const s = await setup({ mirrors: [mirror.url] })
    const v1 = s.publishNext()
    mirror.files.set('/v1/directory', v1.envelope)
    s.registry.files.delete('/v1/timestamp')
    s.registry.files.set('/v1/timestamp', { broken: true })
    expect(await s.service.refresh()).toMatchObject({ changed: true, version: 1, source: mirror.url })
    expect(s.service.status().lastError).toBeNull()
  })
})

describe('directory service: attacks are refused and the node keeps what it had', () => {
  type Attack = (s: Setup) => void | Promise<void>
  const attacks: Array<[string, string, Attack]> = [
    ['a directory signed by 2 of 5', 'BEELDNET_ERR_BELOW_THRESHOLD', (s) => {
      publishDirectory(s.registry, s.gov, variant(s.gov, s.versions[1]!.signed, undefined, s.gov.keys.slice(0, 2)))
    }],
    ['one key signing three times', 'BEELDNET_ERR_BELOW_THRESHOLD', (s) => {
      const env = variant(s.gov, s.versions[1]!.signed, undefined, [s.gov.keys[0]!])
      env.signatures = [env.signatures[0]!, env.signatures[0]!, env.signatures[0]!]
      publishDirectory(s.registry, s.gov, env)
    }],
    ['an entry tampered with after signing', 'BEELDNET_ERR_ENTRIES_MISMATCH', (s) => {
      const env = variant(s.gov, s.versions[1]!.signed)
      env.institutions[0]!.nodes[0]!.addresses = ['/ip4/6.6.6.6/tcp/4001']
      publishDirectory(s.registry, s.gov, env)
    }],
    ['a replay of an older version', 'BEELDNET_ERR_ROLLBACK', (s) => {
      publishDirectory(s.registry, s.gov, s.versions[0]!.envelope)
    }],
    ['a broken prev chain', 'BEELDNET_ERR_BROKEN_CHAIN', (s) => {
      publishDirectory(s.registry, s.gov, variant(s.gov, s.versions[1]!.signed, (d) => { d.prev = 'ab'.repeat(32) }))
    }],
    ['an expired directory', 'BEELDNET_ERR_EXPIRED', (s) => {
      publishDirectory(s.registry, s.gov, variant(s.gov, s.versions[1]!.signed, (d) => {
        d.issued = new Date(Date.now() - 40 * DAY).toISOString()
        d.expires = new Date(Date.now() - 10 * DAY).toISOString()
      }))
    }],
    ['a root rotation signed only by the new keys', 'BEELDNET_ERR_BELOW_THRESHOLD', (s) => {
      const newKeys = Array.from({ length: 5 }, () => generateKeyPair())
      const root2: Root = { ...s.gov.root, version: 2, governanceKeys: newKeys.map((k) => ({ keyid: k.keyid, publicKey: k.publicKey })) }
      publishRoot(s.registry, { signed: root2, signatures: newKeys.slice(0, 3).map((k) => signDocument(root2, k)) })
      publishDirectory(s.registry, s.gov, variant(s.gov, s.versions[1]!.signed, (d) => { d.rootVersion = 2 }, newKeys.slice(0, 3)), { rootVersion: 2 })
    }],
    ['another directory with the same version', 'BEELDNET_ERR_FORK', (s) => {
      publishDirectory(s.registry, s.gov, variant(s.gov, s.versions[0]!.signed, (d) => { d.version = 2; d.prev = s.versions[0]!.hash }))
    }]
  ]

  it.each(attacks)('%s: %s', async (_label, code, attack) => {
    const s = await setup()
    s.publishNext()
    const held = s.publishNext()
    await s.service.refresh()
    expect(s.service.status().directoryVersion).toBe(2)
    await attack(s)

    await expect(s.service.refresh()).rejects.toMatchObject({ code })
    const status = s.service.status()
    expect(status).toMatchObject({ rootVersion: 1, directoryVersion: 2, hash: held.hash, lastError: { code } })
    expect(s.updates).toHaveLength(1)
    // what is on disk is what was held, and it still verifies
    const reloaded = await createTrustStore({ dir: s.trustDir }).load()
    expect(reloaded).toMatchObject({ directoryHash: held.hash, root: { signed: { version: 1 } }, lastError: { code } })

    if (code === 'BEELDNET_ERR_FORK' || code === 'BEELDNET_ERR_FORGED' || code === 'BEELDNET_ERR_ENTRIES_MISMATCH') {
      expect(s.alarms).toMatchObject([{ code, source: s.registry.url }])
    } else {
      expect(s.alarms).toEqual([])
    }
    if (code === 'BEELDNET_ERR_FORK') {
      const evidence = (await readdir(join(s.trustDir, 'forks'))).sort()
      expect(evidence).toHaveLength(2)
      expect(evidence).toContain(`directory-v2-${held.hash}.json`)
      expect(s.alarms[0]!.evidence).toHaveLength(2)
      const kept = await Promise.all(s.alarms[0]!.evidence.map(async (f) => hashOfSigned((JSON.parse(await readFile(f, 'utf8')) as SignedDirectory).signed)))
      expect(kept).toContain(held.hash)
    }
  })

  it('follows a root rotation signed by both thresholds, then refuses new directories from the old keys', async () => {
    const s = await setup()
    const v1 = s.publishNext()
    await s.service.refresh()
    const newKeys = Array.from({ length: 5 }, () => generateKeyPair())
    const root2: Root = { ...s.gov.root, version: 2, threshold: 3, governanceKeys: newKeys.map((k) => ({ keyid: k.keyid, publicKey: k.publicKey })) }
    publishRoot(s.registry, { signed: root2, signatures: [...s.gov.keys.slice(0, 3), ...newKeys.slice(0, 3)].map((k) => signDocument(root2, k)) })
    const v2 = buildDirectoryCandidate(v1.signed, root2, [{ action: 'renew' }], { issued: new Date().toISOString(), validityDays: 30 })
    publishDirectory(s.registry, s.gov, s.gov.sign(v2, newKeys.slice(0, 3)))

    expect(await s.service.refresh()).toMatchObject({ changed: true, version: 2 })
    expect(s.service.status()).toMatchObject({ rootVersion: 2, directoryVersion: 2 })
    expect((await readdir(join(s.trustDir, 'roots'))).sort()).toEqual(['1.json', '2.json'])

    // the rotated-out keys sign a v3 under root v1: refused
    const v3 = buildDirectoryCandidate(v2, s.gov.root, [{ action: 'renew' }], { issued: new Date().toISOString(), validityDays: 30 })
    publishDirectory(s.registry, s.gov, s.gov.sign(v3), { rootVersion: 2 })
    await expect(s.service.refresh()).rejects.toMatchObject({ code: 'BEELDNET_ERR_UNKNOWN_ROOT' })
    expect(s.service.status().directoryVersion).toBe(2)
    // a restart re-verifies the whole root chain from the pinned root
    expect(await createTrustStore({ dir: s.trustDir }).load()).toMatchObject({ root: { signed: { version: 2 } }, directory: { signed: { version: 2 } } })
  })
})

describe('directory service: deltas', () => {
  const headerOf = (env: SignedDirectory) => ({ signed: env.signed, signatures: env.signatures })

  it('takes the next version as a delta when it holds the one before; a forged delta is an alarm and changes nothing', async () => {
    const s = await setup()
    const v1 = s.publishNext()
    await s.service.refresh()
    const v2 = s.publishNext()
    s.registry.files.set('/v1/directories/1/delta', makeDirectoryDelta(v1.signed, v2.signed, [headerOf(v2.envelope)]))
    s.registry.requests.length = 0
    expect(await s.service.refresh()).toMatchObject({ changed: true, version: 2, hash: v2.hash })
    // the whole directory was not fetched
    expect(s.registry.requests).toEqual(['/v1/timestamp', '/v1/directories/1/delta'])
    expect(s.service.heldEnvelope()).toEqual(v2.envelope)
    expect(s.updates.at(-1)).toMatchObject({ previous: { version: 1 }, current: { version: 2 } })
    expect(await createTrustStore({ dir: s.trustDir }).load()).toMatchObject({ directoryHash: v2.hash })

    const v3 = s.publishNext()
    const forged = structuredClone(makeDirectoryDelta(v2.signed, v3.signed, [headerOf(v3.envelope)]))
    forged.upserts[0]!.nodes[0]!.addresses = ['/ip4/203.0.113.66/tcp/4001']
    s.registry.files.set('/v1/directories/2/delta', forged)
    await expect(s.service.refresh()).rejects.toMatchObject({ code: 'BEELDNET_ERR_ENTRIES_MISMATCH' })
    expect(s.alarms).toMatchObject([{ code: 'BEELDNET_ERR_ENTRIES_MISMATCH', source: s.registry.url }])
    expect(s.service.status()).toMatchObject({ directoryVersion: 2, hash: v2.hash, lastError: { code: 'BEELDNET_ERR_ENTRIES_MISMATCH' } })

    // a delta that does not start at the held version: the whole directory is taken instead
    s.registry.files.set('/v1/directories/2/delta', makeDirectoryDelta(v1.signed, v3.signed, [headerOf(v2.envelope), headerOf(v3.envelope)]))
    expect(await s.service.refresh()).toMatchObject({ changed: true, version: 3, hash: v3.hash })
    expect(s.service.heldEnvelope()).toEqual(v3.envelope)
  })

  it('sets aside a directory held in the old format (BEELDNET_ERR_DIRECTORY_FORMAT) and takes the next one whole', async () => {
    const s = await setup()
    const v1 = s.publishNext()
    await s.service.refresh()
    await s.service.stop()
    const file = join(s.trustDir, 'trusted.json')
    const set = JSON.parse(await readFile(file, 'utf8')) as { directory: SignedDirectory }
    const { entries: _entries, ...rest } = set.directory.signed
    await writeFile(file, JSON.stringify({ ...set, directory: { signed: { ...rest, institutions: set.directory.institutions }, signatures: set.directory.signatures } }))

    const upgraded = createDirectoryService({ trustStore: createTrustStore({ dir: s.trustDir }), logger: silent }, { registryUrl: s.registry.url, pollIntervalSeconds: 0 })
    await upgraded.start()
    cleanups.push(() => upgraded.stop())
    expect(upgraded.status()).toMatchObject({ rootVersion: 1, directoryVersion: null, lastError: { code: 'BEELDNET_ERR_DIRECTORY_FORMAT' } })
    expect(await readdir(join(s.trustDir, 'superseded'))).toHaveLength(1)
    expect(await upgraded.refresh()).toMatchObject({ changed: true, version: 1, hash: v1.hash })
  })
})

describe('directory service: other sources', () => {
  it('takes a directory file, or an ascending array of versions, and refuses one that does not verify', async () => {
    const s = await setup()
    const v1 = s.publishNext()
    const v2 = s.publishNext()
    const v3 = s.publishNext()
    const files = await tempDir('files')
    await writeFile(join(files, 'v1.json'), JSON.stringify(v1.envelope))
    await writeFile(join(files, 'v2-v3.json'), JSON.stringify([v2.envelope, v3.envelope]))
    await writeFile(join(files, 'junk.json'), 'not json')

    expect(await s.service.acceptDirectoryFile(join(files, 'v1.json'))).toMatchObject({ changed: true, version: 1, source: `file:${join(files, 'v1.json')}` })
    expect(await s.service.acceptDirectoryFile(join(files, 'v2-v3.json'))).toMatchObject({ changed: true, version: 3, hash: v3.hash })
    expect(await s.service.acceptDirectoryFile(join(files, 'v1.json')).catch((e: unknown) => e)).toMatchObject({ code: 'BEELDNET_ERR_ROLLBACK' })
    await expect(s.service.acceptDirectoryFile(join(files, 'junk.json'))).rejects.toMatchObject({ code: 'BEELDNET_ERR_IMPORT_SOURCE' })
    await expect(s.service.acceptDirectory(variant(s.gov, v3.signed, undefined, s.gov.keys.slice(0, 1)), 'peer:x')).rejects.toMatchObject({ code: 'BEELDNET_ERR_BELOW_THRESHOLD' })
    expect(s.service.status()).toMatchObject({ directoryVersion: 3, lastError: { code: 'BEELDNET_ERR_BELOW_THRESHOLD', source: 'peer:x' } })
    expect(s.updates.map((u) => u.current.version)).toEqual([1, 3])
  })

  it('hands out the held directory as signed, so peers can verify it for themselves', async () => {
    const s = await setup()
    expect(s.service.heldEnvelope()).toBeUndefined()
    s.publishNext()
    const v2 = s.publishNext()
    await s.service.refresh()
    expect(s.service.heldEnvelope()).toEqual(v2.envelope)
    expect(hashOfSigned(s.service.heldEnvelope()!.signed)).toBe(s.service.status().hash)
  })

  it('refuses everything until a root is pinned', async () => {
    const service = createDirectoryService({ trustStore: createTrustStore({ dir: await tempDir('trust') }), logger: silent })
    await service.start()
    expect(service.status()).toMatchObject({ rootVersion: null, directoryVersion: null, expired: false })
    await expect(service.acceptDirectory({}, 'x')).rejects.toMatchObject({ code: 'BEELDNET_ERR_ROOT_NOT_PINNED' })
    await service.stop()
  })
})
