import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../../node/config/config.ts'
import { UserStore } from '../../node/users/user-store.ts'
import { hashOfSigned } from '../../protocol/canonical.ts'
import type { Root } from '../../protocol/registry/documents.ts'
import { DEMO_PASSWORD } from '../../simulations/scenarios/demo-accounts.ts'
import { startLocalNetwork, type LocalNetwork, type LocalNetworkNode } from '../../simulations/scenarios/local-network.ts'
import { prepareStaging } from '../../simulations/scenarios/staging.ts'
import { useTempDirs } from '../helpers/temp-dir.ts'

/*
 * The scenario `npm start` runs and other suites build on: a registry, governance and three
 * hospital nodes, set up through the real workflow in a temp directory, then started again on
 * the same directory.
 */

const tempDir = useTempDirs()
const running: LocalNetwork[] = []
afterEach(async () => { for (const n of running.splice(0).reverse()) await n.stop() })

async function start (dataDir: string): Promise<LocalNetwork> {
  const network = await startLocalNetwork({ dataDir, nodeCount: 3, sampleSize: 'test', pollIntervalSeconds: 1, demoAccounts: true })
  running.push(network)
  return network
}

async function getJson<T> (url: string, init?: RequestInit): Promise<T> {
  const response = await fetch(url, init)
  expect(response.status, url).toBe(200)
  return await response.json() as T
}

const rootHashAt = async (registryUrl: string): Promise<string> => hashOfSigned((await getJson<{ signed: Root }>(`${registryUrl}/v1/roots/1`)).signed)
/** The node's study listing, as its demo clinician logged in (a session cookie) sees it. */
async function studyUids (node: LocalNetworkNode): Promise<string[]> {
  const login = await fetch(`${node.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'arts', password: DEMO_PASSWORD }) })
  expect(login.status).toBe(200)
  expect(await login.json()).toMatchObject({ user: { username: 'arts', role: 'clinician' } })
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!
  return (await getJson<{ studies: Array<{ studyInstanceUID: string }> }>(`${node.url}/api/studies`, { headers: { cookie } })).studies.map((s) => s.studyInstanceUID).sort()
}

describe('local network scenario', () => {
  it('sets up a governed network of three admitted hospitals with samples, and a second start reuses all of it', async () => {
    const dataDir = join(await tempDir('local-network'), 'net')
    const first = await start(dataDir)
    expect(first.created).toBe(true)
    expect(first.nodes).toHaveLength(3)
    const uras = first.nodes.map((n) => n.ura)
    expect(new Set(uras).size).toBe(3)
    expect(uras.every((u) => /^[0-9]{8}$/.test(u))).toBe(true)
    expect(first.governance.members).toHaveLength(5)
    expect(first.governance.threshold).toBe(3)
    expect(await rootHashAt(first.registry.url)).toBe(first.registry.rootHash)

    for (const n of first.nodes) {
      // The directory every node holds: all three institutions active, each with the node key and address it enrolled with.
      const d = n.node.directory.directory!
      expect(d.institutions.map((i) => [i.ura, i.status.state]).sort()).toEqual(uras.map((u) => [u, 'active']).sort())
      for (const peer of first.nodes) {
        const listed = d.institutions.find((i) => i.ura === peer.ura)!
        expect(listed.name).toBe(peer.name)
        expect(listed.departments).toContainEqual({ code: 'RAD', name: 'Radiologie' })
        expect(listed.nodes).toEqual([expect.objectContaining({ peerId: peer.peerId, addresses: peer.addresses, status: 'active' })])
      }
      expect(n.node.directory.status()).toMatchObject({ rootVersion: 1, directoryVersion: 1, institutions: 3 })

      // Over HTTP: health names the node, the listing holds exactly its own samples.
      expect(await getJson(`${n.url}/health`)).toMatchObject({ status: 'ok', node: n.name, peerId: n.peerId, directory: { directoryVersion: 1 } })
      expect(n.sampleStudies.length).toBeGreaterThan(0)
      expect(n.imported).toBe(n.sampleStudies.length)
      expect(await studyUids(n)).toEqual([...n.sampleStudies].sort())
    }
    // No two hospitals hold the same study.
    expect(new Set(first.nodes.flatMap((n) => n.sampleStudies)).size).toBe(first.nodes.flatMap((n) => n.sampleStudies).length)
    // Every libp2p address is fixed and distinct; the port each node is told to listen on is the one it enrolled with.
    expect(new Set(first.nodes.flatMap((n) => n.addresses)).size).toBe(3)
    const before = first.nodes.map((n) => ({ peerId: n.peerId, studies: n.sampleStudies, addresses: n.addresses }))
    const manifest = await readFile(join(dataDir, 'network.json'), 'utf8')
    await first.stop()
    running.length = 0

    const second = await start(dataDir)
    expect(second.created).toBe(false)
    expect(second.registry.rootHash).toBe(first.registry.rootHash)
    expect(await rootHashAt(second.registry.url)).toBe(first.registry.rootHash)
    expect(second.nodes.map((n) => ({ peerId: n.peerId, studies: n.sampleStudies, addresses: n.addresses }))).toEqual(before)
    expect(await readFile(join(dataDir, 'network.json'), 'utf8')).toBe(manifest)
    for (const n of second.nodes) {
      expect(n.imported).toBe(0)
      // The demo accounts are made once; a restart finds them (and logging in still works).
      expect((await new UserStore(join(n.dataDir, 'users.json')).list()).map((u) => `${u.username}:${u.role}`)).toEqual(['arts:clinician', 'beheer:it-admin', 'auditor:auditor'])
      expect(await studyUids(n)).toEqual([...n.sampleStudies].sort())
      // The registry may listen elsewhere now; the config file (for CLI verbs run by hand) follows it.
      expect((await loadConfig(join(n.dataDir, 'beeldnet.yaml'), {})).registry.url).toBe(second.registry.url)
      // Nothing was enrolled or admitted again: still directory v1.
      expect(n.node.directory.status()).toMatchObject({ rootVersion: 1, directoryVersion: 1, institutions: 3 })
    }
    expect(await second.governance.client.status()).toMatchObject({ directory: { version: 1 }, candidate: null, pendingEnrolments: 0, pendingProposals: 0 })
  })

  it('starts a network again as governance left it: a suspended hospital stays suspended', async () => {
    const dataDir = join(await tempDir('governed'), 'net')
    const first = await startLocalNetwork({ dataDir, nodeCount: 2, sampleSize: 'test', pollIntervalSeconds: 1 })
    running.push(first)
    const [a, b] = first.nodes
    expect(await first.governance.publish([{ action: 'suspend', ura: b!.ura, reason: 'security incident under investigation' }])).toMatchObject({ kind: 'directory', version: 2 })
    await first.stop()
    running.length = 0

    // nodeCount 3 is asked for, but a reused network keeps the two it was made with.
    const second = await start(dataDir)
    expect(second.created).toBe(false)
    expect(second.nodes.map((n) => [n.ura, n.state])).toEqual([[a!.ura, 'active'], [b!.ura, 'suspended']])
    for (const n of second.nodes) expect(n.node.directory.status()).toMatchObject({ directoryVersion: 2, institutions: 2 })
  })

  it('refuses a data directory that holds something else', async () => {
    const dataDir = await tempDir('not-a-network')
    await writeFile(join(dataDir, 'notes.txt'), 'mine')
    await expect(startLocalNetwork({ dataDir, sampleSize: 'test' })).rejects.toMatchObject({ code: 'BEELDNET_ERR_NOT_A_LOCAL_NETWORK' })
    expect(await readFile(join(dataDir, 'notes.txt'), 'utf8')).toBe('mine')
  })

  it('throws away what an interrupted first run left behind and sets up afresh', async () => {
    const dataDir = join(await tempDir('interrupted'), 'net')
    const staging = await prepareStaging(dataDir)
    await writeFile(join(staging, 'half-made'), '')
    const network = await startLocalNetwork({ dataDir, nodeCount: 1, sampleSize: 'test', pollIntervalSeconds: 1 })
    running.push(network)
    expect(network.created).toBe(true)
    await expect(stat(staging)).rejects.toMatchObject({ code: 'ENOENT' })
    expect(await readdir(dataDir)).not.toContain('half-made')
  })

  it('moves a network made with the old directory format aside and sets up a new one, saying so', async () => {
    const dataDir = join(await tempDir('old-format'), 'net')
    const first = await startLocalNetwork({ dataDir, nodeCount: 1, sampleSize: 'test', pollIntervalSeconds: 1 })
    const firstPeer = first.nodes[0]!.peerId
    await first.stop()
    // what a network.json from before the directory's signed header looks like: no directoryFormat
    const manifest = JSON.parse(await readFile(join(dataDir, 'network.json'), 'utf8')) as Record<string, unknown>
    expect(manifest.directoryFormat).toBe(2)
    delete manifest.directoryFormat
    await writeFile(join(dataDir, 'network.json'), JSON.stringify(manifest))

    const lines: string[] = []
    const second = await startLocalNetwork({ dataDir, nodeCount: 1, sampleSize: 'test', pollIntervalSeconds: 1, onProgress: (l) => lines.push(l) })
    running.push(second)
    expect(second.created).toBe(true)
    expect(second.nodes[0]!.peerId).not.toBe(firstPeer)
    expect(lines[0]).toContain(`moved to ${dataDir}.old-1`)
    // nothing is deleted: the old network is all there
    expect(JSON.parse(await readFile(join(`${dataDir}.old-1`, 'network.json'), 'utf8'))).toEqual(manifest)
  })
})
