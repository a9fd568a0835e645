import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { until } from '../../helpers/patience.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { useP2PNetwork } from '../p2p/p2p-fixtures.ts'
import { RECEIVER_URA, SENDER_URA, useExchangePairs, type Side, type SideOptions } from './exchange-pair.ts'
import { instanceHashes, nextEvent, smallStudy, storeWithStudy, useCleanup } from './helpers.ts'

/*
 * Where a push's instance bytes travel, between real nodes (real libp2p hosts, directories, stores
 * and TLS data channels): over the data channel when both have one, compressed when both allow it,
 * and back on the libp2p stream whenever one side cannot or will not: nothing is lost either way.
 */

const network = useP2PNetwork()
const tempDir = useTempDirs()
const cleanup = useCleanup()
const { pair } = useExchangePairs(network, tempDir, cleanup)

/** A study worth compressing: CT slices with anatomy and noise (never random bytes). */
async function ctStudy (side: Side, seed: number): Promise<{ uid: string, bytes: number }> {
  const generated = await storeWithStudy(side.store, await tempDir('data-path-study'), smallStudy(seed, { series: [{ modality: 'CT', instances: 4, rows: 256, columns: 256 }] }))
  return { uid: generated.studyInstanceUID, bytes: generated.instances.reduce((n, i) => n + i.size, 0) }
}

async function push (sender: Side, receiver: Side, uid: string): Promise<void> {
  const record = await sender.exchange.send({ studyInstanceUID: uid, to: { ura: RECEIVER_URA, department: 'RAD' }, reason: 'verwijzing' })
  await nextEvent(sender.exchange, 'study-complete', (e) => e.transferId === record.transferId)
  expect(await instanceHashes(receiver.store, uid)).toEqual(await instanceHashes(sender.store, uid))
}

describe('the data path of a push', () => {
  it('sends the instance bytes over the TLS data channel when both nodes have one', async () => {
    const { sender, receiver } = await pair({}, {})
    const study = await ctStudy(sender, 501)
    await push(sender, receiver, study.uid)
    expect(sender.dataBytes.connections).toBe(1)
    expect(sender.dataBytes.sent).toBeGreaterThan(study.bytes)
  })

  it('compresses uncompressed pixel data when both allow it, byte for byte at the receiver', async () => {
    const { sender, receiver } = await pair({ compression: true }, { compression: true })
    const study = await ctStudy(sender, 502)
    await push(sender, receiver, study.uid)
    expect(sender.dataBytes.connections).toBe(1)
    expect(sender.dataBytes.sent).toBeLessThan(study.bytes / 1.5)
  })

  it.each([
    ['the sender only', { compression: true }, {}],
    ['the receiver only', {}, { compression: true }]
  ])('sends uncompressed when compression is allowed by %s', async (_label, senderOptions, receiverOptions) => {
    const { sender, receiver } = await pair(senderOptions, receiverOptions)
    const study = await ctStudy(sender, 503)
    await push(sender, receiver, study.uid)
    expect(sender.dataBytes.sent).toBeGreaterThan(study.bytes)
  })

  it('stays on the libp2p stream when the receiver has no data channel, or its data port cannot be reached', async () => {
    const plain = await pair({}, { dataChannel: false })
    const first = await ctStudy(plain.sender, 504)
    await push(plain.sender, plain.receiver, first.uid)
    expect(plain.sender.dataBytes.connections).toBe(0)

    // A firewall in between: connecting fails, the push goes on over the stream it has.
    const firewalled = await pair({ connect: async () => { throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) } }, {})
    const second = await ctStudy(firewalled.sender, 505)
    await push(firewalled.sender, firewalled.receiver, second.uid)
    expect(firewalled.receiver.dataChannel!.openConnections().size).toBe(0)
  })

  it('gives up on a data port that never answers (a firewall dropping packets) and sends over the stream, inside the receiver\'s patience', async () => {
    // A port that takes the connection and then says nothing: no TLS handshake ever completes.
    const blackHole = createServer((socket) => { socket.on('error', () => {}) })
    blackHole.listen(0, '127.0.0.1')
    await once(blackHole, 'listening')
    cleanup(async () => { blackHole.close() })
    const silentPort = (blackHole.address() as AddressInfo).port
    const firewalled: SideOptions = { stallTimeoutMs: 4_000 }
    const { sender, receiver } = await pair(firewalled, firewalled)
    const connect = sender.dataChannel!.connect.bind(sender.dataChannel)
    sender.dataChannel!.connect = async (peerId, target, token, options) => connect(peerId, { ...target, port: silentPort }, token, options)
    const study = await ctStudy(sender, 507)
    await push(sender, receiver, study.uid)
    expect(receiver.dataChannel!.openConnections().size).toBe(0)
    expect((await sender.exchange.queue.list())[0]).toMatchObject({ state: 'complete', attempts: 1 })
  })

  it('a sender the directory revokes mid-transfer loses its data connection too', async () => {
    const { sender, receiver, net, v1 } = await pair({}, {})
    const study = await ctStudy(sender, 506)
    // The second instance is held back: the transfer is mid-stream when the revocation comes.
    const opened: string[] = []
    const open = sender.store.openInstance.bind(sender.store)
    const revoked = Promise.withResolvers<void>()
    sender.store.openInstance = (record, options) => {
      opened.push(record.sha256)
      const source = open(record, options)
      if (opened.length < 2) return source
      return (async function * () { await revoked.promise; yield * source })()
    }
    const record = await sender.exchange.send({ studyInstanceUID: study.uid, to: { ura: RECEIVER_URA, department: 'RAD' }, reason: 'verwijzing' })
    await until(() => receiver.dataChannel!.openConnections().get(sender.node.peerId) === 1, 'the data connection open')
    const ended = nextEvent(sender.exchange, 'state', (r) => r.transferId === record.transferId && r.lastError !== undefined)
    await receiver.node.directory.acceptDirectory(net.next(v1.signed, [{ action: 'revoke-node-key', ura: SENDER_URA, peerId: sender.node.peerId, reason: 'key leaked' }]).envelope, 'test')
    await until(() => receiver.dataChannel!.openConnections().size === 0 && sender.dataChannel!.openConnections().size === 0, 'the data connection closed at both ends')
    revoked.resolve()
    expect((await ended).lastError?.code).toMatch(/^BEELDNET_ERR_(STREAM_RESET|REMOTE_ABORT|PEER_NOT_ALLOWED|STREAM_TRUNCATED)$/)
    expect((await receiver.store.index.getStudy(study.uid))).toBeUndefined()
  })
})
