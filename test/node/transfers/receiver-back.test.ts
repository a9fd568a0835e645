import { peerIdFromString } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { until } from '../../helpers/patience.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { useP2PNetwork } from '../p2p/p2p-fixtures.ts'
import { RECEIVER_URA, useExchangePairs } from './exchange-pair.ts'
import { instanceHashes, nextEvent, smallStudy, storeWithStudy, useCleanup } from './helpers.ts'

/*
 * A receiver that comes back after a stop is sent to at once: it connects to the senders of its
 * unfinished transfers, and a sender that sees the receiving peer again runs its waiting retry now
 * instead of after a backoff that grew while the receiver was away. Real nodes; the sender's backoff
 * is ten minutes, so only the reconnection can finish the transfer within the test.
 */

const network = useP2PNetwork()
const tempDir = useTempDirs()
const cleanup = useCleanup()
const { pair, startExchange } = useExchangePairs(network, tempDir, cleanup)
const TEN_MINUTES = 600_000

describe('a receiver back after a stop', () => {
  it('connects to the sender of its unfinished transfer, which retries at once, not after its backoff', async () => {
    const { sender, receiver } = await pair({ queue: { backoffInitialMs: TEN_MINUTES, backoffMaxMs: TEN_MINUTES } }, {})
    const generated = await storeWithStudy(sender.store, await tempDir('receiver-back-study'), smallStudy(611, { series: [{ modality: 'CT', instances: 4, rows: 64, columns: 64 }] }))
    const uid = generated.studyInstanceUID

    // The second instance is held until the receiver has stopped: the transfer is cut mid-way.
    const open = sender.store.openInstance.bind(sender.store)
    const receiverStopped = Promise.withResolvers<void>()
    let opened = 0
    sender.store.openInstance = (record, options) => {
      const source = open(record, options)
      return ++opened < 2 ? source : (async function * () { await receiverStopped.promise; yield * source })()
    }
    const record = await sender.exchange.send({ studyInstanceUID: uid, to: { ura: RECEIVER_URA, department: 'RAD' }, reason: 'verwijzing' })
    await until(async () => (await receiver.exchange.incoming.get(sender.node.peerId, record.transferId)) !== undefined, 'the receiver to take the offer')
    const waiting = nextEvent(sender.exchange, 'state', (r) => r.transferId === record.transferId && r.state === 'queued' && r.lastError !== undefined)
    await receiver.exchange.stop()
    receiverStopped.resolve()
    sender.store.openInstance = open
    const retry = await waiting
    expect(retry.direction).toBe('outgoing')
    const nextAttemptAt = retry.direction === 'outgoing' ? retry.nextAttemptAt : undefined
    expect(Date.parse(nextAttemptAt!) - Date.now()).toBeGreaterThan(TEN_MINUTES / 2)

    // The receiver's node goes away and comes back: no connection is left between the two.
    await receiver.node.host.libp2p!.hangUp(peerIdFromString(sender.node.peerId))
    await until(() => sender.node.host.connectedPeers().length === 0, 'the connection to close')
    const complete = nextEvent(sender.exchange, 'study-complete', (e) => e.transferId === record.transferId)
    const back = await startExchange(receiver, {})
    await complete
    expect(await sender.exchange.queue.get(record.transferId)).toMatchObject({ state: 'complete', attempts: 2 })
    expect(await instanceHashes(receiver.store, uid)).toEqual(await instanceHashes(sender.store, uid))
    expect((await back.incoming.get(sender.node.peerId, record.transferId))?.state).toBe('complete')
  })
})
