import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { pino } from 'pino'
import { beforeAll, describe, expect, it } from 'vitest'
import { BeeldnetNode } from '../../../node/beeldnet-node.ts'
import { importFiles } from '../../../node/dicom/file-import.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import type { Exchange } from '../../../node/transfers/exchange.ts'
import { createTransferStore, type OutgoingRecord } from '../../../node/transfers/transfer-store.ts'
import { verifyReceipt } from '../../../protocol/exchange/receipt.ts'
import { generateStudy } from '../../../simulations/generator/index.ts'
import type { LocalNetworkNode } from '../../../simulations/scenarios/local-network.ts'
import { useLocalNetwork } from '../../helpers/local-network.ts'
import { nodeEnv } from '../../../simulations/scenarios/node-env.ts'
import { nextEvent, instanceHashes } from './helpers.ts'
import { until } from '../../helpers/patience.ts'

/*
 * The sending side of a push under stress, with real nodes and a real registry (the scenario
 * `npm start` runs): the sender stopped in the middle of a transfer and started again on the same
 * data directory picks the transfer up from its queue and sends only what the receiver has not
 * verified; a receiving institution suspended by governance ends the transfers to it with
 * BEELDNET_ERR_PEER_NOT_ALLOWED.
 *
 * Where a transfer must be caught in the middle, the sender's store hands out an instance stream
 * that stops after a few bytes until the transfer is aborted (as a slow disk would): no timing.
 */

/** The transfer's record once it reached a final state (it may already have, as the queue resumes at start). */
async function settled (exchange: Exchange, transferId: string): Promise<OutgoingRecord> {
  const final = new Set(['complete', 'failed', 'declined', 'cancelled'])
  const event = nextEvent(exchange, 'state', (r) => r.transferId === transferId && final.has(r.state), `transfer ${transferId} to reach a final state`)
  event.catch(() => {})
  const now = await exchange.queue.get(transferId)
  if (now !== undefined && final.has(now.state)) return now
  return await event as OutgoingRecord
}

async function filesUnder (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])
  return entries.filter((e) => e.isFile()).map((e) => e.name)
}

/** Instance reads held up after their first bytes, until let go: a sender caught mid-instance, without a clock. */
interface StuckReads {
  /** wraps one instance's chunks */
  wrap: (source: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array>
  /** the held reads fail, as a read error would: the delivery unwinds (and finds its abort reason) */
  release: () => void
}

function stuckReads (afterBytes: number): StuckReads {
  const { promise: released, resolve: release } = Promise.withResolvers<void>()
  const wrap = (source: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> => (async function * () {
    let sent = 0
    for await (const chunk of source) {
      if (sent + chunk.byteLength >= afterBytes) {
        yield chunk.subarray(0, afterBytes - sent)
        break
      }
      sent += chunk.byteLength
      yield chunk
    }
    await released
    throw new Error('the held read was let go')
  })()
  return { wrap, release }
}

describe('a sender stopped and restarted, a receiver suspended', () => {
  const suite = useLocalNetwork('sender-restart', 3)
  let a: LocalNetworkNode, b: LocalNetworkNode, c: LocalNetworkNode
  beforeAll(() => { [a, b, c] = suite.nodes as [LocalNetworkNode, LocalNetworkNode, LocalNetworkNode] })

  it('resumes the transfer from its queue at start, sends no instance the receiver verified, and the study arrives whole with a receipt that verifies', async () => {
    const generated = await generateStudy(join(suite.dir, 'study'), { seed: 91, series: [{ modality: 'CT', instances: 24, rows: 128, columns: 128 }] })
    await importFiles(generated.instances.map((i) => i.path), { store: a.node.store })
    const uid = generated.studyInstanceUID
    const total = generated.instances.length

    // The sender gets stuck in the 11th instance, after 4 KiB of it...
    const STUCK_AT = 10
    const held = stuckReads(4096)
    let opened = 0
    const { promise: stuck, resolve: onStuck } = Promise.withResolvers<void>()
    const open = a.node.store.openInstance.bind(a.node.store)
    a.node.store.openInstance = (r) => {
      if (opened++ !== STUCK_AT) return open(r)
      onStuck()
      return held.wrap(open(r))
    }
    // ...until its queue is told to stop (stop() aborts every delivery at once, then waits for them).
    const queue = a.node.exchange.queue
    const stopQueue = queue.stop.bind(queue)
    queue.stop = async () => {
      const stopped = stopQueue()
      held.release()
      await stopped
    }
    const record = await a.node.exchange.send({ studyInstanceUID: uid, to: { ura: b.ura, department: 'RAD' }, reason: 'verwijzing' })
    const { transferId } = record
    await stuck
    // Everything before the stuck one is verified and kept at the receiver.
    await until(async () => (await b.node.exchange.transfers.verifiedOf(a.peerId, transferId)).size === STUCK_AT, 'the receiver to verify the instances sent')

    await a.node.stop()

    // The sender's queue holds it as interrupted, not failed; the receiver kept what it verified, out of sight.
    const aTransfers = createTransferStore({ dir: join(a.dataDir, 'transfers') })
    await aTransfers.start()
    expect(await aTransfers.getOutgoing(transferId)).toMatchObject({ state: 'queued', attempts: 1 })
    await aTransfers.stop()
    const verified = new Set([...(await b.node.exchange.transfers.verifiedOf(a.peerId, transferId)).values()].map((v) => v.sha256))
    expect(verified.size).toBe(STUCK_AT)
    expect(await b.node.exchange.incoming.get(a.peerId, transferId)).toMatchObject({ state: 'receiving' })
    expect((await b.node.store.findStudies()).map((s) => s.studyInstanceUID)).not.toContain(uid)
    await until(async () => (await filesUnder(join(b.node.store.blobs.dir, 'tmp'))).length === 0, 'the receiver to drop the partial instance')

    // Counted from the restarted node's first read: its queue resumes the transfer inside start().
    const node = new BeeldnetNode({
      dataDir: a.dataDir,
      logger: pino({ level: 'silent' }),
      env: nodeEnv(process.env, { httpPort: 0, registryUrl: suite.net.registry.url, pollIntervalSeconds: 1, p2pListen: a.addresses })
    })
    suite.restarted.push(node)
    const sent: string[] = []
    const original = Object.getOwnPropertyDescriptor(StudyStore.prototype, 'openInstance')!
    StudyStore.prototype.openInstance = function (this: StudyStore, r) {
      if (this === node.store) sent.push(r.sha256)
      return (original.value as StudyStore['openInstance']).call(this, r)
    }
    let done: OutgoingRecord
    try {
      await node.start()
      a.node = node
      done = await settled(node.exchange, transferId)
    } finally {
      Object.defineProperty(StudyStore.prototype, 'openInstance', original)
    }

    // Resumed by the restarted queue (a receiver still closing the old session would answer TRANSFER_BUSY
    // and cost one more attempt, with no instance sent: the counts below hold either way).
    expect(done.state).toBe('complete')
    expect(done.attempts).toBeGreaterThanOrEqual(2)
    // Exactly the instances the receiver had not verified, each once.
    expect(sent.filter((sha) => verified.has(sha))).toEqual([])
    expect(new Set(sent).size).toBe(sent.length)
    expect(sent).toHaveLength(total - STUCK_AT)
    // Byte for byte, and a receipt signed by the receiver for this transfer and manifest.
    expect(await instanceHashes(b.node.store, uid)).toEqual(await instanceHashes(node.store, uid))
    const manifest = await node.exchange.transfers.outgoingManifest(transferId)
    const { receipt } = verifyReceipt(done.receipt, { peerId: b.peerId, manifest: manifest.signed, manifestHash: done.manifestHash })
    expect(receipt.instances).toHaveLength(total)
    expect(await b.node.exchange.incoming.get(a.peerId, transferId)).toMatchObject({ state: 'complete', receipt: done.receipt })
    expect(await filesUnder(join(b.node.store.blobs.dir, 'incoming'))).toEqual([])
  })

  it('fails running and queued transfers to an institution governance suspends, with PEER_NOT_ALLOWED', async () => {
    const uid = a.sampleStudies[0]!
    // Every instance read gets stuck: the first two transfers stay 'sending' (two per peer at
    // once), the third waits 'queued' for a slot.
    const held = stuckReads(1024)
    const open = a.node.store.openInstance.bind(a.node.store)
    a.node.store.openInstance = (r) => held.wrap(open(r))
    try {
      const ids: string[] = []
      for (let i = 0; i < 3; i++) ids.push((await a.node.exchange.send({ studyInstanceUID: uid, to: { ura: c.ura, department: 'RAD' }, reason: 'verwijzing' })).transferId)
      const states = async (): Promise<string[]> => Promise.all(ids.map(async (id) => (await a.node.exchange.queue.get(id))!.state))
      await until(async () => (await states()).join() === 'sending,sending,queued', 'two transfers sending and one queued')
      const failures = ids.map(async (id) => nextEvent(a.node.exchange, 'transfer-failed', (e) => e.transferId === id))

      await suite.net.governance.publish([{ action: 'suspend', ura: c.ura, reason: 'beveiligingsincident' }])
      // The nodes poll the registry every second: the new directory reaches the sender by itself.
      for (const failure of await Promise.all(failures)) {
        expect(failure).toMatchObject({ direction: 'outgoing', state: 'failed', error: { code: 'BEELDNET_ERR_PEER_NOT_ALLOWED' } })
      }
      for (const id of ids) {
        expect(await a.node.exchange.queue.get(id)).toMatchObject({ state: 'failed', lastError: { code: 'BEELDNET_ERR_PEER_NOT_ALLOWED' } })
      }
      expect(a.node.p2p.connectedPeers().map((p) => p.peerId)).not.toContain(c.peerId)
      // and a new send is refused, saying why: the institution is listed, suspended
      const refused = a.node.exchange.send({ studyInstanceUID: uid, to: { ura: c.ura, department: 'RAD' }, reason: 'verwijzing' })
      await expect(refused).rejects.toMatchObject({ code: 'BEELDNET_ERR_INSTITUTION_NOT_ACTIVE' })
      await expect(refused).rejects.toThrow(/institution-suspended/)
    } finally {
      // The cancelled deliveries still wait in their reads: let them go (their records stay failed).
      held.release()
      a.node.store.openInstance = open
    }
  })
})
