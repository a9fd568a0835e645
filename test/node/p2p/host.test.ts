import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import type { PeerDisallowedEvent } from '../../../node/p2p/host.ts'
import { createFramedStream } from '../../../node/p2p/stream-io.ts'
import type { Change } from '../../../protocol/registry/documents.ts'
import { useP2PNetwork, type TestNode } from './p2p-fixtures.ts'

const ECHO = '/beeldnet-test/echo/1.0.0'
const Ping = z.strictObject({ ping: z.string() })
const Pong = z.strictObject({ pong: z.string() })
const network = useP2PNetwork()

/** A answers one ping on each ECHO stream. */
function serveEcho (node: TestNode): void {
  void (async () => {
    for (;;) {
      const { stream } = await node.nextInbound(ECHO)
      const framed = createFramedStream(stream)
      const { ping } = await framed.readControl(Ping, 'a ping')
      await framed.writeControl({ pong: ping })
      await framed.close()
    }
  })().catch(() => {})
}

describe('p2p host', () => {
  it('an admitted peer connects, a protocol stream works, and the handler knows who is calling', async () => {
    const net = network()
    const a = await net.startNode('a')
    const b = await net.startNode('b')
    const v1 = net.next(undefined, [await net.admit(a, '10000001'), await net.admit(b, '10000002')])
    await a.directory.acceptDirectory(v1.envelope, 'test')
    await b.directory.acceptDirectory(v1.envelope, 'test')

    const inbound = a.nextInbound(ECHO)
    const framed = createFramedStream(await b.host.dialProtocol(a.peerId, ECHO))
    await framed.writeControl({ ping: 'hallo' })
    const { stream, peer } = await inbound
    expect(peer).toMatchObject({ peerId: b.peerId, ura: '10000002', name: 'Ziekenhuis b', entry: { node: { status: 'active' } } })

    const server = createFramedStream(stream)
    expect(await server.readControl(Ping, 'a ping')).toEqual({ ping: 'hallo' })
    await server.writeControl({ pong: 'hallo' })
    expect(await framed.readControl(Pong, 'a pong')).toEqual({ pong: 'hallo' })
    await Promise.all([framed.close(), server.close()])
    expect(await framed.next()).toBeUndefined()
    expect(await server.next()).toBeUndefined()

    expect(a.host.connectedPeers()).toEqual([{ peerId: b.peerId, ura: '10000002', name: 'Ziekenhuis b', connections: 1 }])
    expect(b.host.status()).toMatchObject({ running: true, peerId: b.peerId, peers: [{ peerId: a.peerId, ura: '10000001' }], refusals: [] })
    expect(b.host.status().listening[0]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW/)
    expect(a.host.institutionOf(b.peerId)?.institution.name).toBe('Ziekenhuis b')
  })

  it('refuses a peer the directory does not list, in both directions, before any protocol runs', async () => {
    const net = network()
    const a = await net.startNode('a')
    const intruder = await net.startNode('intruder')
    serveEcho(a)
    serveEcho(intruder)
    const other = await net.startNode('other')
    const v1 = net.next(undefined, [await net.admit(a, '10000001'), await net.admit(other, '10000002')])
    await a.directory.acceptDirectory(v1.envelope, 'test')
    // The intruder holds a (validly signed) directory that lists itself and A: its own gate lets it try.
    const forIntruder = net.next(undefined, [await net.admit(a, '10000001'), await net.admit(intruder, '10000003')])
    await intruder.directory.acceptDirectory(forIntruder.envelope, 'test')

    // inbound at A: the intruder dials, A refuses after the Noise handshake
    await expect(intruder.host.dialProtocol(a.peerId, ECHO)).rejects.toMatchObject({ code: 'BEELDNET_ERR_PEER_UNREACHABLE' })
    expect(a.host.gating.refusals()).toContainEqual({ direction: 'inbound', reason: 'unknown-peer', count: 1 })
    // outbound from A: refused before dialling, and at libp2p level when dialled by address
    await expect(a.host.dialProtocol(intruder.peerId, ECHO)).rejects.toMatchObject({ code: 'BEELDNET_ERR_PEER_NOT_ALLOWED', reason: 'unknown-peer' })
    await expect(a.host.libp2p!.dial(multiaddr(intruder.address))).rejects.toThrow()
    expect(a.host.gating.refusals()).toContainEqual({ direction: 'outbound', reason: 'unknown-peer', count: 2 })

    expect(a.inboundCount(ECHO)).toBe(0)
    expect(intruder.inboundCount(ECHO)).toBe(0)
    expect(a.host.connectedPeers()).toEqual([])
    expect(intruder.host.connectedPeers()).toEqual([])
  })

  const refusals: Array<[string, string, (ura: string, peerId: string) => Change]> = [
    ['a peer of a suspended institution', 'institution-suspended', (ura) => ({ action: 'suspend', ura, reason: 'security incident' })],
    ['a peer of a revoked institution', 'institution-revoked', (ura) => ({ action: 'revoke', ura, reason: 'left the network' })],
    ['a revoked node key', 'key-revoked', (ura, peerId) => ({ action: 'revoke-node-key', ura, peerId, reason: 'key leaked' })]
  ]

  it.each(refusals)('refuses %s (%s) in both directions', async (_label, reason, change) => {
    const net = network()
    const a = await net.startNode('a')
    const b = await net.startNode('b')
    serveEcho(a)
    serveEcho(b)
    const v1 = net.next(undefined, [await net.admit(a, '10000001'), await net.admit(b, '10000002')])
    const v2 = net.next(v1.signed, [change('10000002', b.peerId)])
    await a.directory.acceptDirectory(v1.envelope, 'test')
    await a.directory.acceptDirectory(v2.envelope, 'test')
    // B still holds v1, in which both are active: only A's gate refuses.
    await b.directory.acceptDirectory(v1.envelope, 'test')

    await expect(b.host.dialProtocol(a.peerId, ECHO)).rejects.toMatchObject({ code: 'BEELDNET_ERR_PEER_UNREACHABLE' })
    expect(a.host.gating.refusals()).toContainEqual({ direction: 'inbound', reason, count: 1 })
    await expect(a.host.dialProtocol(b.peerId, ECHO)).rejects.toMatchObject({ code: 'BEELDNET_ERR_PEER_NOT_ALLOWED', reason })
    await expect(a.host.libp2p!.dial(multiaddr(b.address))).rejects.toThrow()
    expect(a.host.gating.refusals()).toContainEqual({ direction: 'outbound', reason, count: 2 })
    expect(a.inboundCount(ECHO)).toBe(0)
    expect(b.inboundCount(ECHO)).toBe(0)
  })

  it('a directory update that suspends an institution closes its open connection and says so', async () => {
    const net = network()
    const a = await net.startNode('a')
    const b = await net.startNode('b')
    const v1 = net.next(undefined, [await net.admit(a, '10000001'), await net.admit(b, '10000002')])
    await a.directory.acceptDirectory(v1.envelope, 'test')
    await b.directory.acceptDirectory(v1.envelope, 'test')

    // a transfer in flight: B has a stream open to A, A's handler waits for the next frame
    const inbound = a.nextInbound(ECHO)
    const client = createFramedStream(await b.host.dialProtocol(a.peerId, ECHO))
    await client.writeControl({ ping: 'first' })
    const server = createFramedStream((await inbound).stream)
    await server.readControl(Ping, 'a ping')
    const serverRead = server.next().catch((err: unknown) => err)
    const clientRead = client.next().catch((err: unknown) => err)

    const disallowed = new Promise<PeerDisallowedEvent>((resolve) => a.host.once('peer-disallowed', resolve))
    await a.directory.acceptDirectory(net.next(v1.signed, [{ action: 'suspend', ura: '10000002', reason: 'audit' }]).envelope, 'test')
    expect(await disallowed).toEqual({ peerId: b.peerId, ura: '10000002', reason: 'institution-suspended', code: 'BEELDNET_ERR_PEER_NOT_ALLOWED' })
    expect(await serverRead).toMatchObject({ code: 'BEELDNET_ERR_PEER_NOT_ALLOWED' })
    expect(await clientRead).toMatchObject({ code: expect.stringMatching(/^BEELDNET_ERR_(STREAM_RESET|REMOTE_ABORT)$/) })
    expect(a.host.connectedPeers()).toEqual([])
    expect(a.host.gating.refusals()).toContainEqual({ direction: 'existing', reason: 'institution-suspended', count: 1 })
    // and it stays out
    await expect(b.host.dialProtocol(a.peerId, ECHO)).rejects.toMatchObject({ code: 'BEELDNET_ERR_PEER_UNREACHABLE' })
  })

  it('dials at the addresses the directory lists, and follows a changed address', async () => {
    const net = network()
    const a = await net.startNode('a')
    const b = await net.startNode('b')
    serveEcho(a)
    // the directory lists a wrong address for A at first
    const admitA = await net.admit(a, '10000001')
    if (admitA.action !== 'admit') throw new Error('unreachable')
    const wrong = net.next(undefined, [admitA, await net.admit(b, '10000002'),
      { action: 'update-addresses', ura: '10000001', peerId: a.peerId, addresses: ['/ip4/127.0.0.1/tcp/1'] }])
    await a.directory.acceptDirectory(wrong.envelope, 'test')
    await b.directory.acceptDirectory(wrong.envelope, 'test')
    await expect(b.host.dialProtocol(a.peerId, ECHO)).rejects.toMatchObject({ code: 'BEELDNET_ERR_PEER_UNREACHABLE' })

    const fixed = net.next(wrong.signed, [{ action: 'update-addresses', ura: '10000001', peerId: a.peerId, addresses: [a.address] }])
    await b.directory.acceptDirectory(fixed.envelope, 'test')
    await a.directory.acceptDirectory(fixed.envelope, 'test')
    const framed = createFramedStream(await b.host.dialProtocol(a.peerId, ECHO))
    await framed.writeControl({ ping: 'x' })
    expect(await framed.readControl(Pong, 'a pong')).toEqual({ pong: 'x' })
  })

  it('refuses to dial before start, and stops cleanly', async () => {
    const net = network()
    const a = await net.startNode('a')
    await a.host.stop()
    await expect(a.host.dialProtocol(a.peerId, ECHO)).rejects.toMatchObject({ code: 'BEELDNET_ERR_P2P_NOT_STARTED' })
    expect(a.host.status()).toMatchObject({ running: false, listening: [], peers: [] })
  })
})
