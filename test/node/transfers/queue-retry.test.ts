import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { NodeIdentity } from '../../../protocol/identity.ts'
import { newTransferId } from '../../../protocol/exchange/common.ts'
import { manifestHash, signManifest, type SignedManifest } from '../../../protocol/exchange/manifest.ts'
import { signReceipt } from '../../../protocol/exchange/receipt.ts'
import type { Clock } from '../../../node/transfers/clock.ts'
import { createTransferQueue, type Deliver, type TransferQueue, type TransferQueueInit } from '../../../node/transfers/send/queue.ts'
import { createTransferStore, type OutgoingRecord } from '../../../node/transfers/transfer-store.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { makeIdentity, RECEIVER_URA, SENDER_URA, useCleanup } from './helpers.ts'

/*
 * Retries that fit the link: the backoff starts over when the receiving peer is seen again, and a
 * transfer is retried for a time, not for a number of attempts. The clock here only moves when the
 * test moves it, and a retry's wait ends only then (or when the queue wakes it).
 */

const tempDir = useTempDirs()
const onStop = useCleanup()

interface HeldClock extends Clock {
  /** moves time on and ends every wait now due */
  advance: (ms: number) => void
}

function heldClock (start = Date.parse('2026-10-20T10:00:00Z')): HeldClock {
  let t = start
  const waits = new Set<{ due: number, resolve: () => void }>()
  return {
    now: () => t,
    random: () => 0.5,
    sleep: async (ms, signal) => new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) { reject(signal.reason); return }
      const wait = { due: t + ms, resolve }
      waits.add(wait)
      signal?.addEventListener('abort', () => { waits.delete(wait); reject(signal.reason) }, { once: true })
    }),
    advance: (ms) => {
      t += ms
      for (const wait of waits) {
        if (wait.due > t) continue
        waits.delete(wait)
        wait.resolve()
      }
    }
  }
}

async function manifestOf (sender: NodeIdentity): Promise<SignedManifest> {
  return signManifest({
    type: 'beeldnet/push-manifest',
    transferId: newTransferId(),
    created: '2026-10-20T10:00:00.000Z',
    sender: { ura: SENDER_URA, peerId: sender.peerId },
    destination: { ura: RECEIVER_URA, department: 'RAD' },
    note: '',
    reason: 'verwijzing',
    study: {
      studyInstanceUID: '1.2.3',
      patient: { name: 'de Vries^Anna', id: 'P1', issuer: 'HOSP-A', birthDate: '19711203', sex: 'F' },
      date: '20261020', time: '', accessionNumber: '', description: '', referringPhysician: '', studyId: '', modalities: ['CT']
    },
    instances: [{ sopClassUID: '1.2.840.10008.5.1.4.1.1.2', sopInstanceUID: '1.2.3.4.1', seriesInstanceUID: '1.2.3.5', size: 1000, sha256: randomBytes(32).toString('hex'), report: false }]
  }, sender.privateKey)
}

/** Fails with ECONNREFUSED while `down()` holds (the receiver is not there), then returns the receiver's receipt. */
function receiverThatMayBeDown (receiver: NodeIdentity, down: () => boolean): Deliver & { calls: number } {
  const deliver = Object.assign(async ({ manifest }: Parameters<Deliver>[0]) => {
    deliver.calls++
    if (down()) throw Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' })
    return signReceipt({
      type: 'beeldnet/push-receipt',
      transferId: manifest.signed.transferId,
      manifestHash: manifestHash(manifest),
      receiver: { ura: RECEIVER_URA, peerId: receiver.peerId },
      studyInstanceUID: manifest.signed.study.studyInstanceUID,
      instances: manifest.signed.instances.map((i) => i.sha256),
      committed: '2026-10-20T10:05:00.000Z'
    }, receiver.privateKey)
  }, { calls: 0 })
  return deliver
}

async function openQueue (deliver: Deliver, clock: Clock, init: TransferQueueInit): Promise<TransferQueue> {
  const transfers = createTransferStore({ dir: await tempDir() })
  await transfers.start()
  const queue = createTransferQueue({ transfers, deliver, clock }, init)
  await queue.start()
  onStop(async () => { await queue.stop(); await transfers.stop() })
  return queue
}

/** Resolves with the next record of this transfer the queue writes for which `accept` holds. */
async function nextRecord (queue: TransferQueue, transferId: string, accept: (r: OutgoingRecord) => boolean): Promise<OutgoingRecord> {
  return new Promise((resolve) => {
    const listener = (record: OutgoingRecord): void => {
      if (record.transferId !== transferId || !accept(record)) return
      queue.off('state', listener as never)
      resolve(record)
    }
    queue.on('state', listener as never)
  })
}

const waitingAfter = (attempts: number) => (r: OutgoingRecord): boolean => r.state === 'queued' && r.nextAttemptAt !== undefined && r.attempts === attempts

describe('retries of the outgoing transfer queue', () => {
  it('waits longer after each failure while the receiver is down, and tries at once when the receiver is seen again, its backoff started over', async () => {
    const sender = await makeIdentity()
    const receiver = await makeIdentity()
    const clock = heldClock()
    let down = true
    const deliver = receiverThatMayBeDown(receiver, () => down)
    const queue = await openQueue(deliver, clock, { backoffInitialMs: 1000, backoffMaxMs: 600_000 })
    const manifest = await manifestOf(sender)
    const id = manifest.signed.transferId

    // Five failures: each wait twice the one before (random() is 0.5: three quarters of the base).
    const waits: number[] = []
    let waiting = nextRecord(queue, id, waitingAfter(1))
    await queue.enqueue({ manifest, peerId: receiver.peerId })
    for (let attempts = 1; attempts <= 5; attempts++) {
      const record = await waiting
      const wait = Date.parse(record.nextAttemptAt!) - clock.now()
      waits.push(wait)
      waiting = nextRecord(queue, id, waitingAfter(attempts + 1))
      clock.advance(wait)
    }
    const long = await waiting
    expect(waits).toEqual([750, 1500, 3000, 6000, 12_000])
    expect(Date.parse(long.nextAttemptAt!) - clock.now()).toBe(24_000)
    expect(deliver.calls).toBe(6)

    // Another peer seen: this transfer goes on waiting.
    await queue.peerSeen((await makeIdentity()).peerId)
    expect(await queue.get(id)).toMatchObject({ state: 'queued', attempts: 6, nextAttemptAt: long.nextAttemptAt })
    expect(deliver.calls).toBe(6)

    // The receiver is seen (still refusing for one more try): the retry runs now, not in 24 s, and the
    // wait after it is the first wait again.
    const seen = clock.now()
    const afterReset = nextRecord(queue, id, waitingAfter(7))
    await queue.peerSeen(receiver.peerId)
    const reset = await afterReset
    expect(clock.now()).toBe(seen)
    expect(reset.backoffFrom).toBe(6)
    expect(Date.parse(reset.nextAttemptAt!) - clock.now()).toBe(750)

    // Back for good: the next retry, after that short wait, delivers.
    down = false
    const complete = nextRecord(queue, id, (r) => r.state === 'complete')
    clock.advance(750)
    expect(await complete).toMatchObject({ state: 'complete', attempts: 8 })
    expect(clock.now() - seen).toBe(750)
  })

  it('retries for a time: many quick failures within it do not end a transfer, the first failure after it does', async () => {
    const sender = await makeIdentity()
    const receiver = await makeIdentity()
    const clock = heldClock()
    const deliver = receiverThatMayBeDown(receiver, () => true)
    const budget = 60_000
    const queue = await openQueue(deliver, clock, { backoffInitialMs: 1000, backoffMaxMs: 4000, retryForMs: budget })
    const manifest = await manifestOf(sender)
    const id = manifest.signed.transferId
    const started = clock.now()

    let attempts = 1
    let next = nextRecord(queue, id, (r) => r.state === 'failed' || waitingAfter(attempts)(r))
    await queue.enqueue({ manifest, peerId: receiver.peerId })
    let record = await next
    while (record.state === 'queued') {
      expect(record.failingSince).toBe(new Date(started).toISOString())
      // The last retry is due when the budget runs out, not after it.
      expect(Date.parse(record.nextAttemptAt!)).toBeLessThanOrEqual(started + budget)
      attempts++
      next = nextRecord(queue, id, (r) => r.state === 'failed' || waitingAfter(attempts)(r))
      clock.advance(Date.parse(record.nextAttemptAt!) - clock.now())
      record = await next
    }
    // Far more than the 8 attempts a count allowed, and it failed exactly when its time was up.
    expect(record).toMatchObject({ state: 'failed', lastError: { code: 'ECONNREFUSED' } })
    expect(record.attempts).toBeGreaterThan(8)
    expect(record.attempts).toBe(deliver.calls)
    expect(clock.now() - started).toBe(budget)

    // Queued again by hand: a fresh budget, counted from its next failure.
    const again = nextRecord(queue, id, waitingAfter(1))
    clock.advance(1000)
    await queue.retry(id)
    expect((await again).failingSince).toBe(new Date(started + budget + 1000).toISOString())
  })
})
