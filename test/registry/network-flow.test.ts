import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { createIdentityFile } from '../../protocol/identity.ts'
import type { Directory, Institution } from '../../protocol/registry/documents.ts'
import { BeeldnetNode } from '../../node/beeldnet-node.ts'
import type { DirectoryUpdate } from '../../node/directory/directory-service.ts'
import { buildEnrolment, sendEnrolment } from '../../node/directory/enrol.ts'
import { createRegistryClient } from '../../node/directory/registry-client.ts'
import { beeldnetMain, runBeeldnet, type CliResult } from '../helpers/beeldnet-cli.ts'
import { useTempDirs } from '../helpers/temp-dir.ts'
import { PATIENCE_MS } from '../helpers/patience.ts'

/*
 * The whole governance story with real processes: a registry started by `beeldnet registry start`,
 * five members working only through `beeldnet governance ...`, and two hospital nodes that enrol
 * with `beeldnet node enrol` and then follow the registry by polling, as they do in production.
 */

const tempDir = useTempDirs()
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

const ok = (r: CliResult): CliResult => {
  if (r.code !== 0) throw new Error(`beeldnet exited ${r.code}: ${r.stderr}${r.stdout}`)
  return r
}
const json = <T>(r: CliResult): T => JSON.parse(ok(r).stdout) as T

async function startRegistryProcess (dataDir: string): Promise<{ url: string, child: ChildProcess, stop: () => Promise<void> }> {
  // Every client here shares 127.0.0.1, and the nodes poll each second: the per-address limit is raised.
  const child = spawn(process.execPath, [beeldnetMain, 'registry', '--data-dir', dataDir, 'start'], {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BEELDNET_REGISTRY_RATE_LIMIT_PER_MINUTE: '10000' }
  })
  let url = ''
  for await (const line of createInterface({ input: child.stdout! })) {
    const entry = JSON.parse(line) as { msg: string, url?: string }
    if (entry.msg === 'registry started') { url = entry.url!; break }
  }
  if (url === '') throw new Error('the registry did not start')
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    await exited
  }
  cleanups.push(stop)
  return { url, child, stop }
}

/** Resolves with the first directory update for which `accept` holds. */
function nextUpdate (node: BeeldnetNode, accept: (d: Directory) => boolean, what: string): Promise<DirectoryUpdate> {
  if (node.directory.directory !== undefined && accept(node.directory.directory)) {
    const d = node.directory.directory
    return Promise.resolve({ previous: undefined, current: d, hash: node.directory.status().hash!, source: 'held' })
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`node ${node.config.node.name} did not see ${what} in ${PATIENCE_MS / 1000} s; it holds ${JSON.stringify(node.directory.status())}`)) }, PATIENCE_MS)
    const listener = (u: DirectoryUpdate): void => {
      if (!accept(u.current)) return
      clearTimeout(timer)
      node.directory.off('update', listener)
      resolve(u)
    }
    node.directory.on('update', listener)
  })
}

const institution = (d: Directory, ura: string): Institution | undefined => d.institutions.find((i) => i.ura === ura)

describe('a governed network, from init to revocation', () => {
  it('admits two nodes, rotates a key with overlap, suspends, rotates the root and revokes; both nodes follow; the registry down changes nothing', async () => {
    const base = await tempDir('network')
    const keyFiles = [1, 2, 3, 4, 5].map((i) => join(base, `member-${i}.key`))
    const members = await Promise.all(keyFiles.map(async (file, i) => json<{ keyid: string, publicKey: string }>(
      await runBeeldnet(['governance', '--json', 'keygen', '--out', file, '--name', `lid ${i + 1}`]))))

    const registryDir = join(base, 'registry')
    const init = json<{ rootHash: string }>(await runBeeldnet(['registry', '--data-dir', registryDir, '--json', 'init',
      '--network', 'beeldnet-flow', '--threshold', '3', '--port', '0',
      ...members.flatMap((m, i) => ['--governance-key', `${m.publicKey}:lid ${i + 1}`])]))
    const registry = await startRegistryProcess(registryDir)
    const gov = (...args: string[]): Promise<CliResult> => runBeeldnet(['governance', '--registry', registry.url, '--json', ...args])
    /** members i, j, k sign whatever candidate is open; the last answer says whether it was published */
    const signBy = async (...who: number[]): Promise<{ published: boolean, version: number, kind: string, diff: string[] }> => {
      let last
      for (const i of who) last = json<{ published: boolean, version: number, kind: string, diff: string[] }>(await gov('sign', '--key', keyFiles[i]!, '--yes'))
      return last!
    }

    // Root v1 is published by three of the five members, nobody else.
    expect((await signBy(0, 1)).published).toBe(false)
    expect(await signBy(2)).toMatchObject({ published: true, kind: 'root', version: 1 })

    // Two hospitals set up their nodes and enrol, pinning the root by the hash governance gave them.
    const nodeDirs = [join(base, 'amc'), join(base, 'umcg')]
    await Promise.all(nodeDirs.map(async (dir, i) => ok(await runBeeldnet(['node', '--data-dir', dir, 'init', '--name', i === 0 ? 'AMC' : 'UMCG']))))
    const enrolled = await Promise.all([['11111111', 'Amsterdam UMC'], ['22222222', 'UMC Groningen']].map(async ([ura, name], i) => json<{ id: string, peerId: string }>(
      await runBeeldnet(['node', '--data-dir', nodeDirs[i]!, '--json', 'enrol', '--registry', registry.url, '--root-hash', init.rootHash,
        '--ura', ura!, '--name', name!, '--department', 'RAD:Radiologie', '--address', `/ip4/127.0.0.1/tcp/${4001 + i}`]))))

    const env = { BEELDNET_HTTP_PORT: '0', BEELDNET_REGISTRY_POLL_INTERVAL_SECONDS: '1' }
    const nodes = nodeDirs.map((dataDir) => new BeeldnetNode({ dataDir, env, logger: pino({ level: 'silent' }) }))
    for (const node of nodes) {
      await node.start()
      cleanups.push(() => node.stop())
    }
    // Before anything is admitted the nodes hold the root and no directory.
    expect(nodes[0]!.directory.status()).toMatchObject({ rootVersion: 1, directoryVersion: null })

    const pending = json<{ enrolments: Array<{ id: string }> }>(await gov('proposals'))
    expect(pending.enrolments.map((e) => e.id).sort()).toEqual(enrolled.map((e) => e.id).sort())
    for (const e of enrolled) ok(await gov('propose', '--key', keyFiles[0]!, 'admit', '--enrolment', e.id.slice(0, 12)))
    const admitted = await signBy(1, 3, 4)
    expect(admitted).toMatchObject({ published: true, kind: 'directory', version: 1 })
    expect(admitted.diff.join('\n')).toContain('11111111')

    for (const node of nodes) {
      const { current } = await nextUpdate(node, (d) => d.version === 1, 'directory v1')
      expect(current.institutions.map((i) => [i.ura, i.status.state])).toEqual([['11111111', 'active'], ['22222222', 'active']])
      expect(institution(current, '22222222')!.nodes[0]!.peerId).toBe(enrolled[1]!.peerId)
    }

    // The AMC replaces its node key; the old key keeps working for the overlap so transfers can drain.
    const newKey = await createIdentityFile(join(base, 'amc-new.key'))
    const rotation = await sendEnrolment(createRegistryClient({ url: registry.url }),
      await buildEnrolment(newKey, { network: 'beeldnet-flow', ura: '11111111', name: 'Amsterdam UMC', addresses: ['/ip4/127.0.0.1/tcp/4003'] }))
    ok(await gov('propose', '--key', keyFiles[1]!, 'rotate-node-key', '--ura', '11111111', '--old-peer-id', enrolled[0]!.peerId,
      '--enrolment', rotation.id, '--overlap-days', '2'))
    expect(await signBy(0, 2, 3)).toMatchObject({ published: true, version: 2 })
    for (const node of nodes) {
      const { current } = await nextUpdate(node, (d) => d.version === 2, 'the key rotation')
      const keys = institution(current, '11111111')!.nodes
      const old = keys.find((n) => n.peerId === enrolled[0]!.peerId)!
      expect(keys.find((n) => n.peerId === newKey.peerId)).toMatchObject({ status: 'active' })
      expect(Date.parse(old.notAfter!) - Date.parse(current.issued)).toBe(2 * 86_400_000)
    }

    // Suspension of the UMCG.
    ok(await gov('propose', '--key', keyFiles[4]!, 'suspend', '--ura', '22222222', '--reason', 'security incident under investigation'))
    expect(await signBy(0, 1, 4)).toMatchObject({ published: true, version: 3 })
    for (const node of nodes) {
      const { current } = await nextUpdate(node, (d) => d.version === 3, 'the suspension')
      expect(institution(current, '22222222')!.status).toMatchObject({ state: 'suspended', reason: 'security incident under investigation' })
    }

    // Governance renews itself: member 5 leaves, a new member joins; the old and the new threshold both sign.
    const newMemberKey = join(base, 'member-6.key')
    const newMember = json<{ publicKey: string }>(await gov('keygen', '--out', newMemberKey, '--name', 'lid 6'))
    ok(await gov('propose', '--key', keyFiles[0]!, 'update-root', '--threshold', '3',
      ...[...members.slice(0, 4).map((m, i) => `${m.publicKey}:lid ${i + 1}`), `${newMember.publicKey}:lid 6`].flatMap((k) => ['--governance-key', k])))
    // The leaving member's signature counts for the old threshold only.
    expect(await signBy(0, 1, 4)).toMatchObject({ published: false, kind: 'root' })
    expect(nodes[0]!.directory.status().rootVersion).toBe(1)
    ok(await gov('sign', '--key', newMemberKey, '--yes'))

    // Revocation under the new root, signed by the new member among others; the nodes follow the root first.
    ok(await gov('propose', '--key', newMemberKey, 'revoke', '--ura', '22222222', '--reason', 'left the network'))
    const leftMember = await gov('propose', '--key', keyFiles[4]!, 'reinstate', '--ura', '22222222', '--reason', 'not a member any more')
    expect(leftMember.code).toBe(1)
    expect(leftMember.stdout).toContain('BEELDNET_ERR_BELOW_THRESHOLD')
    expect(await signBy(3, 0)).toMatchObject({ published: false, kind: 'directory', version: 4 })
    ok(await gov('sign', '--key', newMemberKey, '--yes'))
    for (const node of nodes) {
      const { current } = await nextUpdate(node, (d) => d.version === 4, 'the revocation')
      expect(current.rootVersion).toBe(2)
      expect(institution(current, '22222222')!.status).toMatchObject({ state: 'revoked', reason: 'left the network' })
      expect(node.directory.status().rootVersion).toBe(2)
    }
    const history = json<Array<{ version: number }>>(await gov('history'))
    expect(history.map((h) => h.version)).toEqual([1, 2, 3, 4])

    // The registry goes away: the nodes keep v4, say the registry cannot be reached, and report the age.
    await registry.stop()
    const umcg = nodes[1]!
    await expect.poll(() => umcg.directory.status().lastError?.code, { message: 'the node to find the registry gone' }).toBe('BEELDNET_ERR_REGISTRY_UNREACHABLE')
    expect(umcg.directory.status()).toMatchObject({ directoryVersion: 4, expired: false })
    const health = await (await fetch(`${umcg.url}/health`)).json() as { directory: Record<string, unknown> }
    expect(health.directory).toMatchObject({ directoryVersion: 4, ageSeconds: expect.any(Number), lastError: { code: 'BEELDNET_ERR_REGISTRY_UNREACHABLE' } })
    await umcg.stop()
    const shown = json<{ directoryVersion: number, ageSeconds: number, lastError: { code: string } }>(
      await runBeeldnet(['node', '--data-dir', nodeDirs[1]!, '--json', 'directory']))
    expect(shown).toMatchObject({ directoryVersion: 4, lastError: { code: 'BEELDNET_ERR_REGISTRY_UNREACHABLE' } })
    expect(shown.ageSeconds).toBeGreaterThanOrEqual(0)
    // A restart while the registry is down starts from what was verified on disk.
    const again = new BeeldnetNode({ dataDir: nodeDirs[1]!, env, logger: pino({ level: 'silent' }) })
    await again.start()
    cleanups.push(() => again.stop())
    expect(again.directory.status()).toMatchObject({ rootVersion: 2, directoryVersion: 4 })
  })
})
