import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { NodeIdentity } from '../../../protocol/identity.ts'
import { newTransferId } from '../../../protocol/exchange/common.ts'
import { manifestHash, signManifest, type SignedManifest } from '../../../protocol/exchange/manifest.ts'
import { signReceipt, type SignedReceipt } from '../../../protocol/exchange/receipt.ts'
import { PeerNotAllowedError } from '../../../node/p2p/errors.ts'
import type { Clock } from '../../../node/transfers/clock.ts'
import { TransferCancelledError, TransferDeclinedError } from '../../../node/transfers/errors.ts'
import type { TransferEvents } from '../../../node/transfers/events.ts'
import { createTransferQueue, type Deliver, type TransferQueue, type TransferQueueInit } from '../../../node/transfers/send/queue.ts'
import { createTransferStore, type OutgoingRecord, type TransferStore } from '../../../node/transfers/transfer-store.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { fakeClock, makeIdentity, RECEIVER_URA, SENDER_URA, useCleanup, type FakeClock } from './helpers.ts'

const tempDir = useTempDirs()
const onStop = useCleanup()

/** A manifest of `n` made-up instances, the first `reports` of them reports (the queue never reads instance bytes). */
async function manifestOf (sender: NodeIdentity, n = 4, reports = 1): Promise<SignedManifest> {
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
    instances: Array.from({ length: n }, (_, i) => ({
      sopClassUID: i < reports ? '1.2.840.10008.5.1.4.1.1.88.11' : '1.2.840.10008.5.1.4.1.1.2',
      sopInstanceUID: `1.2.3.4.${i + 1}`,
      seriesInstanceUID: i < reports ? '1.2.3.6' : '1.2.3.5',
      size: 1000,
      sha256: randomBytes(32).toString('hex'),
      report: i < reports
    }))
  }, sender.privateKey)
}

async function receiptFor (manifest: SignedManifest, receiver: NodeIdentity, signer = receiver): Promise<SignedReceipt> {
  return signReceipt({
    type: 'beeldnet/push-receipt',
    transferId: manifest.signed.transferId,
    manifestHash: manifestHash(manifest),
    receiver: { ura: RECEIVER_URA, peerId: receiver.peerId },
    studyInstanceUID: manifest.signed.study.studyInstanceUID,
    instances: manifest.signed.instances.map((i) => i.sha256),
    committed: '2026-10-20T10:05:00.000Z'
  }, signer.privateKey)
}

type Events = { [K in keyof TransferEvents]: Array<TransferEvents[K][0]> }

interface Opened {
  queue: TransferQueue
  transfers: TransferStore
  events: Events
  stop: () => Promise<void>
}

async function openQueue (dir: string, deliver: Deliver, init: TransferQueueInit = {}, clock: Clock = fakeClock(), start = true): Promise<Opened> {
  const transfers = createTransferStore({ dir })
  await transfers.start()
  const queue = createTransferQueue({ transfers, deliver, clock }, { backoffInitialMs: 1000, ...init })
  const events: Events = { state: [], progress: [], 'report-arrived': [], 'study-complete': [], 'transfer-failed': [] }
  for (const name of Object.keys(events) as Array<keyof TransferEvents>) {
    queue.on(name, ((e: unknown) => { (events[name] as unknown[]).push(e) }) as never)
  }
  if (start) await queue.start()
  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    await queue.stop()
    await transfers.stop()
  }
  onStop(stop)
  return { queue, transfers, events, stop }
}

/** Resolves when the queue writes a record of this transfer in one of these states. */
async function until (queue: TransferQueue, transferId: string, ...states: string[]): Promise<OutgoingRecord> {
  return new Promise((resolve) => {
    const listener = (record: OutgoingRecord): void => {
      if (record.transferId !== transferId || !states.includes(record.state)) return
      queue.off('state', listener as never)
      resolve(record)
    }
    queue.on('state', listener as never)
  })
}

/** A delivery that succeeds at once, reporting states, bytes (in two halves) and confirmations. */
function succeeding (receiver: NodeIdentity, clock?: FakeClock): Deliver {
  return async ({ manifest }, { onProgress }) => {
    onProgress({ kind: 'state', state: 'offering' })
    onProgress({ kind: 'have', sha256s: [] })
    onProgress({ kind: 'state', state: 'sending' })
    for (const i of manifest.signed.instances) {
      for (let half = 0; half < 2; half++) {
        clock?.advance(100)
        onProgress({ kind: 'bytes', bytes: i.size / 2 })
      }
      onProgress({ kind: 'confirmed', sha256: i.sha256 })
    }
    onProgress({ kind: 'state', state: 'verifying' })
    return receiptFor(manifest, receiver)
  }
}

function codedError (code: string): Error {
  return Object.assign(new Error(`failed with ${code}`), { code })
}

describe('the outgoing transfer queue', () => {
  it('delivers, verifies and keeps the receipt, with throttled progress and the notifications', async () => {
    const sender = await makeIdentity()
    const receiver = await makeIdentity()
    const clock = fakeClock()
    const { queue, transfers, events } = await openQueue(await tempDir(), succeeding(receiver, clock), { progressIntervalMs: 250 }, clock)
    const manifest = await manifestOf(sender, 6, 2)
    const done = until(queue, manifest.signed.transferId, 'complete')
    const queued = await queue.enqueue({ manifest, peerId: receiver.peerId })
    expect(queued).toMatchObject({ state: 'queued', attempts: 0, totals: { instances: 6, reports: 2, bytes: 6000 } })

    const record = await done
    expect(record).toMatchObject({ state: 'complete', attempts: 1, done: { instances: 6, bytes: 6000 }, receipt: await receiptFor(manifest, receiver) })
    expect(await queue.get(manifest.signed.transferId)).toEqual(record)
    expect((await transfers.confirmedOf(manifest.signed.transferId)).size).toBe(6)
    expect(events.state.map((r) => r.state)).toEqual(['queued', 'connecting', 'offering', 'sending', 'verifying', 'complete'])

    expect(events['report-arrived']).toEqual([expect.objectContaining({ direction: 'outgoing', transferId: manifest.signed.transferId, reports: ['1.2.3.4.1', '1.2.3.4.2'] })])
    expect(events['study-complete']).toEqual([expect.objectContaining({ transferId: manifest.signed.transferId, receipt: record.receipt })])
    expect(events['transfer-failed']).toEqual([])

    // Twelve byte updates 100 ms apart, at most one event per 250 ms (plus the forced ones on state changes).
    const moving = events.progress.filter((p) => p.state === 'sending')
    expect(moving.length).toBeGreaterThan(1)
    expect(moving.length).toBeLessThan(12)
    const mid = moving.find((p) => p.bytesDone > 0 && p.bytesDone < 6000)!
    expect(mid.rate).toBe(5000) // 500 bytes per 100 ms
    expect(mid.etaSeconds).toBeCloseTo((6000 - mid.bytesDone) / 5000)
    expect(events.progress.at(-1)).toMatchObject({ state: 'complete', bytesDone: 6000, instancesDone: 6, etaSeconds: 0 })
  })

  it('survives a restart: interrupted and queued transfers resume, and nothing final runs again', async () => {
    const sender = await makeIdentity()
    const receiver = await makeIdentity()
    const dir = await tempDir()
    // First process: deliveries hang until the queue stops.
    const hanging: Deliver = async (_job, { onProgress, signal }) => {
      onProgress({ kind: 'state', state: 'sending' })
      return new Promise((_resolve, reject) => { signal.addEventListener('abort', () => { reject(signal.reason) }) })
    }
    const clock = fakeClock()
    const first = await openQueue(dir, hanging, { concurrency: 1 }, clock)
    const a = await manifestOf(sender)
    const b = await manifestOf(sender)
    const c = await manifestOf(sender)
    const sending = until(first.queue, a.signed.transferId, 'sending')
    for (const manifest of [a, b, c]) {
      await first.queue.enqueue({ manifest, peerId: receiver.peerId })
      clock.advance(1000)
    }
    await sending
    await first.queue.cancel(c.signed.transferId)
    await first.stop()

    // As if the process had died mid-send instead of stopping: the record still says 'sending'.
    const crashed = createTransferStore({ dir })
    await crashed.start()
    expect((await crashed.getOutgoing(a.signed.transferId))!.state).toBe('queued')
    await crashed.updateOutgoing(a.signed.transferId, (r) => ({ ...r, state: 'sending' }))
    await crashed.stop()

    const delivered: string[] = []
    const deliver = succeeding(receiver)
    const second = await openQueue(dir, async (job, options) => {
      delivered.push(job.record.transferId)
      return deliver(job, options)
    }, { concurrency: 1 }, fakeClock(), false)
    const resumed = Promise.all([until(second.queue, a.signed.transferId, 'complete'), until(second.queue, b.signed.transferId, 'complete')])
    await second.queue.start()
    const records = await resumed
    expect(records.map((r) => [r.state, r.attempts])).toEqual([['complete', 2], ['complete', 1]])
    // Oldest first, and the cancelled one not at all.
    expect(delivered).toEqual([a.signed.transferId, b.signed.transferId])
    expect((await second.queue.get(c.signed.transferId))!.state).toBe('cancelled')
  })

  it('never runs more deliveries than allowed in total and per peer, and reaches both limits', async () => {
    const sender = await makeIdentity()
    const receivers = [await makeIdentity(), await makeIdentity(), await makeIdentity()]
    let running = 0
    let maxRunning = 0
    const perPeer = new Map<string, number>()
    let maxPerPeer = 0
    const gates: Array<() => void> = []
    let open = false
    let onFull: (() => void) | undefined
    const deliver: Deliver = async ({ record, manifest }) => {
      running++
      perPeer.set(record.peerId, (perPeer.get(record.peerId) ?? 0) + 1)
      maxRunning = Math.max(maxRunning, running)
      maxPerPeer = Math.max(maxPerPeer, perPeer.get(record.peerId)!)
      if (running === 3) onFull?.()
      if (!open) await new Promise<void>((resolve) => gates.push(resolve))
      running--
      perPeer.set(record.peerId, perPeer.get(record.peerId)! - 1)
      return receiptFor(manifest, receivers.find((r) => r.peerId === record.peerId)!)
    }
    const { queue, events } = await openQueue(await tempDir(), deliver, { concurrency: 3, perPeerConcurrency: 2 })
    const full = new Promise<void>((resolve) => { onFull = resolve })
    const ids: string[] = []
    for (const receiver of receivers) {
      for (let n = 0; n < 3; n++) {
        const manifest = await manifestOf(sender)
        ids.push(manifest.signed.transferId)
        await queue.enqueue({ manifest, peerId: receiver.peerId })
      }
    }
    await full
    const allDone = Promise.all(ids.map(async (id) => until(queue, id, 'complete')))
    open = true
    for (const release of gates.splice(0)) release()
    await allDone
    expect(maxRunning).toBe(3)
    expect(maxPerPeer).toBe(2)
    expect(events['study-complete']).toHaveLength(9)
  })

  it('retries a retryable failure with exponential backoff and jitter, then succeeds', async () => {
    const sender = await makeIdentity()
    const receiver = await makeIdentity()
    const clock = fakeClock()
    let calls = 0
    const ok = succeeding(receiver)
    const deliver: Deliver = async (job, options) => {
      calls++
      if (calls <= 2) throw codedError('ECONNRESET')
      return ok(job, options)
    }
    const { queue, events } = await openQueue(await tempDir(), deliver, { backoffInitialMs: 1000 }, clock)
    const manifest = await manifestOf(sender)
    const done = until(queue, manifest.signed.transferId, 'complete')
    await queue.enqueue({ manifest, peerId: receiver.peerId })
    const record = await done
    expect(record).toMatchObject({ state: 'complete', attempts: 3, lastError: { code: 'ECONNRESET' } })
    // random() is 0.5: half the base plus a quarter of it; the base doubles per attempt.
    expect(clock.sleeps).toEqual([750, 1500])
    const retries = events.state.filter((r) => r.state === 'queued' && r.nextAttemptAt !== undefined) as OutgoingRecord[]
    expect(retries.map((r) => r.attempts)).toEqual([1, 2])
    expect(events['transfer-failed']).toEqual([])
  })

  it('does not retry a decline, a final code or a bad receipt, and gives up after maxAttempts', async () => {
    const sender = await makeIdentity()
    const receiver = await makeIdentity()
    const stranger = await makeIdentity()
    const outcomes = new Map<string, () => Promise<SignedReceipt>>()
    const calls = new Map<string, number>()
    const deliver: Deliver = async ({ record }) => {
      calls.set(record.transferId, (calls.get(record.transferId) ?? 0) + 1)
      return outcomes.get(record.transferId)!()
    }
    const clock = fakeClock()
    const { queue, events } = await openQueue(await tempDir(), deliver, { maxAttempts: 3 }, clock)
    const cases: Array<[string, () => Promise<SignedReceipt>, string, string, number]> = []
    const declined = await manifestOf(sender)
    cases.push([declined.signed.transferId, async () => { throw new TransferDeclinedError(declined.signed.transferId, 'unknown-department', 'geen KNO') }, 'declined', 'BEELDNET_ERR_TRANSFER_DECLINED', 1])
    const revoked = await manifestOf(sender)
    cases.push([revoked.signed.transferId, async () => { throw new PeerNotAllowedError(receiver.peerId, 'revoked') }, 'failed', 'BEELDNET_ERR_PEER_NOT_ALLOWED', 1])
    const forged = await manifestOf(sender)
    cases.push([forged.signed.transferId, async () => receiptFor(forged, receiver, stranger), 'failed', 'BEELDNET_ERR_RECEIPT_FORGED', 1])
    const flaky = await manifestOf(sender)
    cases.push([flaky.signed.transferId, async () => { throw codedError('ECONNREFUSED') }, 'failed', 'ECONNREFUSED', 3])
    const manifests = [declined, revoked, forged, flaky]
    for (const [id, outcome] of cases) outcomes.set(id, outcome)

    const ended = Promise.all(cases.map(async ([id]) => until(queue, id, 'declined', 'failed')))
    for (const manifest of manifests) await queue.enqueue({ manifest, peerId: receiver.peerId })
    const records = await ended
    for (const [n, [id, , state, code, attempts]] of cases.entries()) {
      expect(records[n]).toMatchObject({ transferId: id, state, attempts, lastError: { code } })
      expect(calls.get(id)).toBe(attempts)
    }
    expect(clock.sleeps).toHaveLength(2)
    expect(events['transfer-failed'].map((e) => [e.transferId, e.state, e.error.code]).sort()).toEqual(cases.map(([id, , state, code]) => [id, state, code]).sort())

    // A failed transfer can be queued again by hand, with a fresh count.
    outcomes.set(flaky.signed.transferId, async () => receiptFor(flaky, receiver))
    const again = until(queue, flaky.signed.transferId, 'complete')
    await queue.retry(flaky.signed.transferId)
    expect(await again).toMatchObject({ state: 'complete', attempts: 1 })
    await expect(queue.retry(declined.signed.transferId)).rejects.toMatchObject({ code: 'BEELDNET_ERR_TRANSFER_STATE' })
  })

  it('cancels a running delivery and a transfer waiting for its retry; a finished one cannot be cancelled', async () => {
    const sender = await makeIdentity()
    const receiver = await makeIdentity()
    let reason: unknown
    const waiting = fakeClock()
    // Retries wait until aborted: the transfer sits in its backoff.
    const clock: Clock = { ...waiting, sleep: async (_ms, signal) => new Promise((_resolve, reject) => { signal?.addEventListener('abort', () => { reject(signal.reason) }) }) }
    const attempts = new Map<string, number>()
    const deliver: Deliver = async ({ record, manifest }, { onProgress, signal }) => {
      attempts.set(record.transferId, (attempts.get(record.transferId) ?? 0) + 1)
      if (manifest.signed.note === 'flaky') throw codedError('ECONNRESET')
      if (manifest.signed.note === 'quick') return receiptFor(manifest, receiver)
      onProgress({ kind: 'state', state: 'sending' })
      return new Promise((_resolve, reject) => {
        signal.addEventListener('abort', () => {
          reason = signal.reason
          reject(signal.reason)
        })
      })
    }
    const { queue, events } = await openQueue(await tempDir(), deliver, {}, clock)
    const slow = await manifestOf(sender)
    const flaky = await signManifest({ ...(await manifestOf(sender)).signed, note: 'flaky' }, sender.privateKey)
    const quick = await signManifest({ ...(await manifestOf(sender)).signed, note: 'quick' }, sender.privateKey)

    const sending = until(queue, slow.signed.transferId, 'sending')
    const backingOff = until(queue, flaky.signed.transferId, 'queued')
    const completed = until(queue, quick.signed.transferId, 'complete')
    await queue.enqueue({ manifest: slow, peerId: receiver.peerId })
    await queue.enqueue({ manifest: flaky, peerId: receiver.peerId })
    await queue.enqueue({ manifest: quick, peerId: receiver.peerId })
    await sending
    await backingOff
    await completed

    expect(await queue.cancel(slow.signed.transferId)).toMatchObject({ state: 'cancelled' })
    expect(reason).toBeInstanceOf(TransferCancelledError)
    expect(await queue.cancel(flaky.signed.transferId)).toMatchObject({ state: 'cancelled' })
    await expect(queue.cancel(quick.signed.transferId)).rejects.toMatchObject({ code: 'BEELDNET_ERR_TRANSFER_STATE' })
    await expect(queue.cancel('no-such-transfer-0000')).rejects.toMatchObject({ code: 'BEELDNET_ERR_TRANSFER_NOT_FOUND' })
    await queue.stop()
    expect((await queue.get(slow.signed.transferId))!.state).toBe('cancelled')
    expect((await queue.get(flaky.signed.transferId))!.state).toBe('cancelled')
    expect(attempts.get(flaky.signed.transferId)).toBe(1)
    expect(events['transfer-failed']).toEqual([])
  })

  it('refuses a transfer id used before', async () => {
    const sender = await makeIdentity()
    const receiver = await makeIdentity()
    const { queue } = await openQueue(join(await tempDir(), 'transfers'), succeeding(receiver))
    const manifest = await manifestOf(sender)
    const done = until(queue, manifest.signed.transferId, 'complete')
    await queue.enqueue({ manifest, peerId: receiver.peerId })
    await done
    await expect(queue.enqueue({ manifest, peerId: receiver.peerId })).rejects.toMatchObject({ code: 'BEELDNET_ERR_TRANSFER_CONFLICT' })
  })
})
