import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { hashOfSigned } from '../../../protocol/canonical.ts'
import { DirectoryHello } from '../../../protocol/p2p/directory-gossip.ts'
import { DIRECTORY_PROTOCOL } from '../../../protocol/p2p/ids.ts'
import type { SignedDirectory } from '../../../protocol/registry/documents.ts'
import { createFramedStream } from '../../../node/p2p/stream-io.ts'
import { publishDirectory, startStaticRegistry } from '../directory/static-registry.ts'
import { eventually, useP2PNetwork, type TestNode } from './p2p-fixtures.ts'

const network = useP2PNetwork()

describe('directory gossip', () => {
  it('a dialler with an older directory gets the newer one from its peer and adopts it', async () => {
    const net = network()
    const a = await net.startNode('a', { gossip: true })
    const b = await net.startNode('b', { gossip: true })
    const v1 = net.next(undefined, [await net.admit(a, '10000001'), await net.admit(b, '10000002')])
    const v2 = net.next(v1.signed, [{ action: 'renew' }])
    await a.directory.acceptDirectory(v1.envelope, 'test')
    await a.directory.acceptDirectory(v2.envelope, 'test')
    await b.directory.acceptDirectory(v1.envelope, 'test')

    // B connects to A for any reason: the exchange runs on the new connection
    const adopted = await b.gossip!.exchange(a.peerId)
    expect(adopted).toMatchObject({ peerId: a.peerId, role: 'dialler', local: { version: 1 }, remote: { version: 2, hash: v2.hash }, outcome: 'adopted' })
    expect(b.directory.status()).toMatchObject({ directoryVersion: 2, hash: v2.hash })
    expect(b.updates.at(-1)).toMatchObject({ current: { version: 2 }, source: `peer:${a.peerId}` })
    expect(await eventually(a.exchanges, (e) => e.role === 'listener', 'the listener side')).toMatchObject({ peerId: b.peerId, outcome: 'served' })
  })

  it('a listener with an older directory gets the newer one from the peer that dialled it', async () => {
    const net = network()
    const a = await net.startNode('a', { gossip: true })
    const b = await net.startNode('b', { gossip: true })
    const v1 = net.next(undefined, [await net.admit(a, '10000001'), await net.admit(b, '10000002')])
    const v2 = net.next(v1.signed, [{ action: 'renew' }])
    await a.directory.acceptDirectory(v1.envelope, 'test')
    await b.directory.acceptDirectory(v1.envelope, 'test')
    await b.directory.acceptDirectory(v2.envelope, 'test')

    // Any dial opens the connection (this protocol is not even served); gossip starts on it by itself.
    await expect(b.host.dialProtocol(a.peerId, '/beeldnet-test/none/1.0.0')).rejects.toMatchObject({ code: 'BEELDNET_ERR_PROTOCOL_UNSUPPORTED' })
    await eventually(a.updates, (u) => u.current.version === 2, 'A adopts v2')
    expect(a.directory.status()).toMatchObject({ directoryVersion: 2, hash: v2.hash })
    expect(a.updates.at(-1)!.source).toBe(`peer:${b.peerId}`)
    expect(await eventually(a.exchanges, (e) => e.outcome === 'adopted', 'the exchange')).toMatchObject({ role: 'listener', peerId: b.peerId })
  })

  it('hands on every version in between that it saw, so the chain verifies', async () => {
    const net = network()
    const a = await net.startNode('a', { gossip: true })
    const b = await net.startNode('b', { gossip: true })
    const v1 = net.next(undefined, [await net.admit(a, '10000001'), await net.admit(b, '10000002')])
    const v2 = net.next(v1.signed, [{ action: 'renew' }])
    const v3 = net.next(v2.signed, [{ action: 'renew' }])
    for (const v of [v1, v2, v3]) await a.directory.acceptDirectory(v.envelope, 'test')
    await b.directory.acceptDirectory(v1.envelope, 'test')

    expect(await b.gossip!.exchange(a.peerId)).toMatchObject({ outcome: 'adopted', remote: { version: 3 } })
    expect(b.directory.status()).toMatchObject({ directoryVersion: 3, hash: v3.hash })
  })

  it('a peer further ahead than it can prove makes the node catch up from the registry', async () => {
    const net = network()
    const registry = await startStaticRegistry()
    onTestFinished(registry.stop)
    const a = await net.startNode('a', { gossip: true })
    const b = await net.startNode('b', { gossip: true, registryUrl: registry.url })
    const v1 = net.next(undefined, [await net.admit(a, '10000001'), await net.admit(b, '10000002')])
    const v2 = net.next(v1.signed, [{ action: 'renew' }])
    const v3 = net.next(v2.signed, [{ action: 'renew' }])
    await a.directory.acceptDirectory(v1.envelope, 'test')
    // A takes v2 and v3 in one go: it never held v2, so it can hand on v3 only
    await a.directory.acceptDirectory([v2.envelope, v3.envelope], 'test')
    await b.directory.acceptDirectory(v1.envelope, 'test')
    for (const v of [v1, v2, v3]) publishDirectory(registry, net.gov, v.envelope)

    expect(await b.gossip!.exchange(a.peerId)).toMatchObject({ outcome: 'refused', code: 'BEELDNET_ERR_BROKEN_CHAIN' })
    await eventually(b.updates, (u) => u.current.version === 3, 'B catches up from the registry')
    expect(b.updates.at(-1)!.source).toBe(registry.url)
  })

  it('spreads a new version to connected peers when it arrives', async () => {
    const net = network()
    const a = await net.startNode('a', { gossip: true })
    const b = await net.startNode('b', { gossip: true })
    const v1 = net.next(undefined, [await net.admit(a, '10000001'), await net.admit(b, '10000002')])
    await a.directory.acceptDirectory(v1.envelope, 'test')
    await b.directory.acceptDirectory(v1.envelope, 'test')
    expect(await b.gossip!.exchange(a.peerId)).toMatchObject({ outcome: 'in-step' })

    const v2 = net.next(v1.signed, [{ action: 'renew' }])
    await a.directory.acceptDirectory(v2.envelope, 'registry')
    await eventually(b.updates, (u) => u.current.version === 2, 'B gets v2 without asking')
    expect(b.updates.at(-1)!.source).toBe(`peer:${a.peerId}`)
  })

  it('a fork (same version, another hash) raises the alarm on both sides and keeps both files', async () => {
    const net = network()
    const a = await net.startNode('a', { gossip: true })
    const b = await net.startNode('b', { gossip: true })
    const v1 = net.next(undefined, [await net.admit(a, '10000001'), await net.admit(b, '10000002')])
    const v2 = net.next(v1.signed, [{ action: 'renew' }])
    const v2forked = net.next(v1.signed, [{ action: 'update-addresses', ura: '10000002', peerId: b.peerId, addresses: [b.address, '/ip4/127.0.0.1/tcp/9'] }])
    expect(v2forked.hash).not.toBe(v2.hash)
    for (const [node, v] of [[a, v2], [b, v2forked]] as const) {
      await node.directory.acceptDirectory(v1.envelope, 'test')
      await node.directory.acceptDirectory(v.envelope, 'test')
    }

    expect(await b.gossip!.exchange(a.peerId)).toMatchObject({ outcome: 'fork', code: 'BEELDNET_ERR_FORK' })
    await eventually(a.exchanges, (e) => e.outcome === 'fork', 'the fork at A')
    for (const [node, own] of [[a, v2], [b, v2forked]] as const) {
      expect(node.alarms).toMatchObject([{ code: 'BEELDNET_ERR_FORK', version: 2, source: `peer:${(node === a ? b : a).peerId}` }])
      // each keeps its own version in force, and both files as evidence
      expect(node.directory.status()).toMatchObject({ directoryVersion: 2, hash: own.hash })
      const files = (await readdir(join(node.trustDir, 'forks'))).sort()
      expect(files).toEqual([`directory-v2-${v2.hash}.json`, `directory-v2-${v2forked.hash}.json`].sort())
      const kept = await Promise.all(files.map(async (f) => hashOfSigned((JSON.parse(await readFile(join(node.trustDir, 'forks', f), 'utf8')) as SignedDirectory).signed)))
      expect(kept.sort()).toEqual([v2.hash, v2forked.hash].sort())
    }
  })

  it('a forged directory offered by a peer is refused and the node keeps its own', async () => {
    const net = network()
    const a = await net.startNode('a', { gossip: true })
    // M is admitted but runs no gossip of its own: it speaks the protocol by hand
    const m = await net.startNode('m')
    const v1 = net.next(undefined, [await net.admit(a, '10000001'), await net.admit(m, '10000009')])
    await a.directory.acceptDirectory(v1.envelope, 'test')
    await m.directory.acceptDirectory(v1.envelope, 'test')
    const forged = net.next(v1.signed, [{ action: 'revoke', ura: '10000001', reason: 'forged' }]).envelope
    forged.signatures = forged.signatures.slice(0, 1)

    const framed = createFramedStream(await m.host.dialProtocol(a.peerId, DIRECTORY_PROTOCOL))
    await framed.writeControl({ type: 'hello', version: 2, hash: hashOfSigned(forged.signed) })
    expect(await framed.readControl(DirectoryHello, 'hello')).toMatchObject({ version: 1, hash: v1.hash })
    const bytes = Buffer.from(JSON.stringify([forged]))
    await framed.writeControl({ type: 'offer', versions: [2], bytes: bytes.byteLength })
    await framed.writeData(bytes)
    await framed.writeEnd()
    await framed.close()
    expect(await framed.next()).toBeUndefined()

    expect(await eventually(a.exchanges, () => true, 'the exchange')).toMatchObject({ outcome: 'refused', code: 'BEELDNET_ERR_BELOW_THRESHOLD' })
    expect(a.directory.status()).toMatchObject({ directoryVersion: 1, hash: v1.hash, lastError: { code: 'BEELDNET_ERR_BELOW_THRESHOLD', source: `peer:${m.peerId}` } })
  })

  it('an offer above the size limit is refused on its announcement', async () => {
    const net = network()
    const a = await net.startNode('a', { gossip: { maxDirectoryBytes: 1000 } })
    const m = await net.startNode('m')
    const v1 = net.next(undefined, [await net.admit(a, '10000001'), await net.admit(m, '10000009')])
    await a.directory.acceptDirectory(v1.envelope, 'test')
    await m.directory.acceptDirectory(v1.envelope, 'test')

    const framed = createFramedStream(await m.host.dialProtocol(a.peerId, DIRECTORY_PROTOCOL))
    await framed.writeControl({ type: 'hello', version: 5, hash: 'ab'.repeat(32) })
    await framed.readControl(DirectoryHello, 'hello')
    await framed.writeControl({ type: 'offer', versions: [2, 3, 4, 5], bytes: 50_000_000 })
    expect(await framed.next().catch((err: unknown) => err)).toMatchObject({ remoteCode: 'BEELDNET_ERR_DATA_TOO_LONG' })
    expect(await eventually(a.exchanges, () => true, 'the exchange')).toMatchObject({ outcome: 'failed', code: 'BEELDNET_ERR_DATA_TOO_LONG' })
    expect(a.directory.status().directoryVersion).toBe(1)
  })

  it('two nodes in step exchange hellos only', async () => {
    const net = network()
    const nodes: TestNode[] = [await net.startNode('a', { gossip: true }), await net.startNode('b', { gossip: true })]
    const v1 = net.next(undefined, [await net.admit(nodes[0]!, '10000001'), await net.admit(nodes[1]!, '10000002')])
    for (const node of nodes) await node.directory.acceptDirectory(v1.envelope, 'test')
    expect(await nodes[1]!.gossip!.exchange(nodes[0]!.peerId)).toMatchObject({ outcome: 'in-step', local: { version: 1, hash: v1.hash }, remote: { version: 1, hash: v1.hash } })
    expect(nodes.map((n) => n.updates.length)).toEqual([1, 1])
  })
})
