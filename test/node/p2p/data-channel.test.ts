import { once } from 'node:events'
import { connect } from 'node:tls'
import { generateCertificate } from '@libp2p/tls/utils'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createDataChannel, type DataChannel } from '../../../node/p2p/data-channel.ts'
import { createFramedStream } from '../../../node/p2p/stream-io.ts'
import { until } from '../../helpers/patience.ts'
import { silent, useP2PNetwork, type TestNode } from './p2p-fixtures.ts'

/*
 * The TLS data channel between real nodes with real directories: each side's certificate is bound to
 * its node key, the receiver admits only a peer its directory admits, with a one-time token issued to
 * exactly that peer, and a directory update that revokes a peer closes its data connections.
 */

const Hello = z.strictObject({ hello: z.string() })
const network = useP2PNetwork()

async function channelOf (node: TestNode, cleanups: Array<() => Promise<void>>): Promise<DataChannel> {
  const channel = createDataChannel({ privateKey: node.identity.privateKey, peerId: node.peerId, gating: node.host.gating, directory: node.directory, logger: silent }, { host: '127.0.0.1', port: 0, timeoutMs: 5_000 })
  await channel.start()
  cleanups.push(async () => { await channel.stop() })
  return channel
}

/** A raw TLS client with `node`'s libp2p certificate: what it writes, and everything the server sends back. */
async function rawClient (node: TestNode, port: number, token: string): Promise<{ received: Buffer[], closed: Promise<unknown> }> {
  const socket = connect({ host: '127.0.0.1', port, ...(await generateCertificate(node.identity.privateKey)), rejectUnauthorized: false, minVersion: 'TLSv1.3' })
  await once(socket, 'secureConnect')
  const received: Buffer[] = []
  socket.on('data', (chunk: Buffer) => received.push(chunk))
  socket.on('error', () => {})
  const closed = once(socket, 'close')
  socket.write(token)
  return { received, closed }
}

describe('the TLS data channel', () => {
  async function admittedPair (): Promise<{ a: TestNode, b: TestNode, intruder: TestNode, net: ReturnType<typeof network>, v1: ReturnType<ReturnType<typeof network>['next']> }> {
    const net = network()
    const a = await net.startNode('a')
    const b = await net.startNode('b')
    const intruder = await net.startNode('intruder')
    const v1 = net.next(undefined, [await net.admit(a, '10000001'), await net.admit(b, '10000002')])
    for (const node of [a, b, intruder]) await node.directory.acceptDirectory(v1.envelope, 'test')
    return { a, b, intruder, net, v1 }
  }

  it('carries framed bytes both ways between admitted nodes presenting the token issued to them', async () => {
    const cleanups: Array<() => Promise<void>> = []
    try {
      const { a, b } = await admittedPair()
      const receiver = await channelOf(a, cleanups)
      const sender = await channelOf(b, cleanups)
      const expected = receiver.expect(b.peerId)
      const outbound = createFramedStream(await sender.connect(a.peerId, { host: '127.0.0.1', port: expected.port }, expected.token))
      const inbound = createFramedStream(await expected.stream)
      await outbound.writeControl({ hello: 'from b' })
      expect(await inbound.readControl(Hello, 'hello')).toEqual({ hello: 'from b' })
      await inbound.writeControl({ hello: 'from a' })
      expect(await outbound.readControl(Hello, 'hello')).toEqual({ hello: 'from a' })
      expect(receiver.openConnections().get(b.peerId)).toBe(1)
      await outbound.close()
      await inbound.close()
      expect(await inbound.next()).toBeUndefined()
    } finally {
      for (const cleanup of cleanups.reverse()) await cleanup()
    }
  })

  it('refuses a wrong token, a replayed one and a non-admitted key before writing a byte', async () => {
    const cleanups: Array<() => Promise<void>> = []
    try {
      const { a, b, intruder } = await admittedPair()
      const receiver = await channelOf(a, cleanups)
      const sender = await channelOf(b, cleanups)

      // A token that was never issued.
      const expected = receiver.expect(b.peerId)
      const forged = await rawClient(b, expected.port, 'x'.repeat(expected.token.length))
      await forged.closed
      expect(forged.received).toEqual([])

      // The right token from a key the directory does not admit: the token stays unused.
      const stolen = await rawClient(intruder, expected.port, expected.token)
      await stolen.closed
      expect(stolen.received).toEqual([])

      // Used once by its peer, then replayed: the replay finds nothing.
      await sender.connect(a.peerId, { host: '127.0.0.1', port: expected.port }, expected.token)
      await expected.stream
      const replayed = await rawClient(b, expected.port, expected.token)
      await replayed.closed
      expect(replayed.received).toEqual([])

      // A token issued to b, presented by another admitted key, is refused too.
      const forOther = receiver.expect(intruder.peerId)
      const mismatch = await rawClient(b, forOther.port, forOther.token)
      await mismatch.closed
      expect(mismatch.received).toEqual([])
      forOther.cancel()
      await expect(forOther.stream).rejects.toMatchObject({ code: 'BEELDNET_ERR_DATA_CHANNEL' })
      expect(receiver.openConnections().get(b.peerId)).toBe(1)
      expect(receiver.openConnections().has(intruder.peerId)).toBe(false)
    } finally {
      for (const cleanup of cleanups.reverse()) await cleanup()
    }
  })

  it('refuses to send to a data port answering with another node\'s certificate', async () => {
    const cleanups: Array<() => Promise<void>> = []
    try {
      const { a, b, intruder } = await admittedPair()
      const impostor = await channelOf(intruder, cleanups)
      const sender = await channelOf(b, cleanups)
      await channelOf(a, cleanups)
      await expect(sender.connect(a.peerId, { host: '127.0.0.1', port: impostor.port }, 'token')).rejects.toThrow()
    } finally {
      for (const cleanup of cleanups.reverse()) await cleanup()
    }
  })

  it('closes the data connection both ways when a directory update revokes the peer mid-transfer', async () => {
    const cleanups: Array<() => Promise<void>> = []
    try {
      const { a, b, net, v1 } = await admittedPair()
      const receiver = await channelOf(a, cleanups)
      const sender = await channelOf(b, cleanups)
      const expected = receiver.expect(b.peerId)
      const outbound = createFramedStream(await sender.connect(a.peerId, { host: '127.0.0.1', port: expected.port }, expected.token))
      const inbound = createFramedStream(await expected.stream)
      await outbound.writeControl({ hello: 'first' })
      await inbound.readControl(Hello, 'hello')

      const reading = inbound.next()
      reading.catch(() => {})
      await a.directory.acceptDirectory(net.next(v1.signed, [{ action: 'revoke-node-key', ura: '10000002', peerId: b.peerId, reason: 'key leaked' }]).envelope, 'test')
      await expect(reading).rejects.toMatchObject({ code: expect.stringMatching(/^BEELDNET_ERR_STREAM_/) })
      await until(() => receiver.openConnections().size === 0 && sender.openConnections().size === 0, 'both ends of the data connection closed')
      await expect(outbound.writeControl({ hello: 'after revocation' })).rejects.toThrow()
    } finally {
      for (const cleanup of cleanups.reverse()) await cleanup()
    }
  })
})
