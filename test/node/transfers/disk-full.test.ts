import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { healthProblems } from '../../../node/api/health.ts'
import { importFiles } from '../../../node/dicom/file-import.ts'
import type { DiskRefusal, Statfs } from '../../../node/store/disk-space.ts'
import type { StudyStore } from '../../../node/store/study-store.ts'
import type { OutgoingRecord } from '../../../node/transfers/transfer-store.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { until } from '../../helpers/patience.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { useP2PNetwork } from '../p2p/p2p-fixtures.ts'
import { RECEIVER_URA, SENDER_URA, useExchangePairs, type Side } from './exchange-pair.ts'
import { instanceHashes, nextEvent, smallStudy, useCleanup } from './helpers.ts'

/*
 * A receiving node whose disk is full (issue 18 point 2), with two real nodes over libp2p: an offer
 * that does not fit is refused with BEELDNET_ERR_DISK_FULL, which the sender's record shows and its
 * queue retries; concurrent offers are admitted against bytes already promised; an ENOSPC in the
 * middle of a transfer ends it cleanly; a full node still sends studies out. Where the sender would
 * retry on its own, its backoff is ten minutes, so only peerSeen (what a reconnection does) retries.
 */

const network = useP2PNetwork()
const tempDir = useTempDirs()
const cleanup = useCleanup()
const { pair } = useExchangePairs(network, tempDir, cleanup)
const TEN_MINUTES = 600_000
const GiB = 1024 ** 3
const LONG_BACKOFF = { backoffInitialMs: TEN_MINUTES, backoffMaxMs: TEN_MINUTES }

async function bytesOf (study: GeneratedStudy): Promise<number> {
  let n = 0
  for (const i of study.instances) n += (await stat(i.path)).size
  return n
}

async function store (target: StudyStore, study: GeneratedStudy): Promise<void> {
  const summary = await importFiles(study.instances.map((i) => i.path), { store: target })
  if (summary.rejected.length > 0) throw new Error(`import rejected ${JSON.stringify(summary.rejected)}`)
}

/** A disk presented by statfs as having `free()` bytes free (4 KiB blocks). */
function fakeDisk (free: () => number): Statfs {
  return async () => ({ bsize: 4096, bavail: Math.floor(free() / 4096), blocks: 100 * GiB / 4096 })
}

function sendTo (side: Side, studyInstanceUID: string): Promise<OutgoingRecord> {
  return side.exchange.send({ studyInstanceUID, to: { ura: RECEIVER_URA, department: 'RAD' }, reason: 'verwijzing' })
}

/** The sender's record once a delivery of `uid` failed with `code` and waits for its retry. */
function retryAfter (sender: Side, uid: string, code: string): Promise<unknown> {
  return nextEvent(sender.exchange, 'state', (r) => r.direction === 'outgoing' && r.studyInstanceUID === uid && r.state === 'queued' && r.lastError?.code === code, `a ${code} on the sender's record`)
}

describe('a receiving node whose disk is full', () => {
  it('refuses an offer past its quota with BEELDNET_ERR_DISK_FULL, says so on /health, and takes the retry once retention freed space', async () => {
    const old = await generateStudy(await tempDir('old'), smallStudy(901))
    const fresh = await generateStudy(await tempDir('fresh'), smallStudy(902))
    const [oldBytes, freshBytes] = [await bytesOf(old), await bytesOf(fresh)]
    const { sender, receiver } = await pair({ queue: LONG_BACKOFF }, { store: { space: { maxBytes: oldBytes + freshBytes - 1 } } })
    await store(receiver.store, old)
    await store(sender.store, fresh)
    const refusals: DiskRefusal[] = []
    receiver.store.space.on('refused', (r) => refusals.push(r))

    const refused = retryAfter(sender, fresh.studyInstanceUID, 'BEELDNET_ERR_DISK_FULL')
    const record = await sendTo(sender, fresh.studyInstanceUID)
    await refused
    const waiting = await sender.exchange.queue.get(record.transferId)
    expect(waiting).toMatchObject({ state: 'queued', attempts: 1, lastError: { code: 'BEELDNET_ERR_DISK_FULL' } })
    // What the sending clinician and IT read on the transfer: the receiver's own reason.
    expect(waiting!.lastError!.message).toMatch(/no room in the store: .*store\.maxBytes/)
    expect(refusals).toMatchObject([{ code: 'BEELDNET_ERR_DISK_FULL', route: 'transfer', neededBytes: freshBytes }])
    expect(await receiver.store.index.getStudy(fresh.studyInstanceUID)).toBeUndefined()
    expect((await receiver.exchange.incoming.get(sender.node.peerId, record.transferId))?.lastError?.code).toBe('BEELDNET_ERR_DISK_FULL')
    const usage = await receiver.store.diskUsage()
    expect(healthProblems({ directory: null, p2p: null, store: usage, diskFull: await receiver.store.space.problem() }).map((p) => p.code)).toContain('BEELDNET_ERR_DISK_FULL')

    // Retention removes the old study (as its sweep does once the study is past its days).
    const { purged } = await receiver.store.purgeExpired(1, new Date(Date.now() + 2 * 86_400_000))
    expect(purged.map((s) => s.studyInstanceUID)).toEqual([old.studyInstanceUID])
    expect(await receiver.store.space.problem()).toBeUndefined()
    expect(healthProblems({ directory: null, p2p: null, store: await receiver.store.diskUsage(), diskFull: await receiver.store.space.problem() }).map((p) => p.code)).not.toContain('BEELDNET_ERR_DISK_FULL')

    const complete = nextEvent(sender.exchange, 'study-complete', (e) => e.transferId === record.transferId)
    await sender.exchange.queue.peerSeen(receiver.node.peerId)
    await complete
    expect(await sender.exchange.queue.get(record.transferId)).toMatchObject({ state: 'complete', attempts: 2 })
    expect(await instanceHashes(receiver.store, fresh.studyInstanceUID)).toEqual(await instanceHashes(sender.store, fresh.studyInstanceUID))
    expect(receiver.store.space.reservedBytes).toBe(0)
  })

  it('admits concurrent offers against the bytes already promised: never more than the disk has above its reserve', async () => {
    const studies = await Promise.all([911, 912, 913].map(async (seed) => generateStudy(await tempDir(`concurrent-${seed}`), smallStudy(seed))))
    const largest = Math.max(...await Promise.all(studies.map(bytesOf)))
    // Room above the 1 GiB reserve for one and a half studies: two at once would overbook it.
    const room = Math.floor(largest * 1.5)
    const { sender, receiver } = await pair(
      { queue: { concurrency: 3, perPeerConcurrency: 3, backoffInitialMs: 50, backoffMaxMs: 200 } },
      { store: { space: { minFreeBytes: GiB, statfs: fakeDisk(() => GiB + room) } } }
    )
    for (const s of studies) await store(sender.store, s)
    let refusals = 0
    receiver.store.space.on('refused', () => { refusals++ })
    let mostPromised = 0
    const reserve = receiver.store.space.reserve.bind(receiver.store.space)
    receiver.store.space.reserve = async (...args) => {
      const reservation = await reserve(...args)
      mostPromised = Math.max(mostPromised, receiver.store.space.reservedBytes)
      return reservation
    }
    // No instance leaves before the other two offers have been refused: the three are at the receiver together.
    const open = sender.store.openInstance.bind(sender.store)
    sender.store.openInstance = (record, options) => {
      const source = open(record, options)
      return (async function * () { await until(() => refusals >= 2, 'two offers refused'); yield * source })()
    }

    const records = await Promise.all(studies.map(async (s) => sendTo(sender, s.studyInstanceUID)))
    const done = records.map(async (r) => nextEvent(sender.exchange, 'study-complete', (e) => e.transferId === r.transferId))
    await Promise.all(done)
    expect(refusals).toBeGreaterThanOrEqual(2)
    expect(mostPromised).toBeGreaterThan(0)
    expect(mostPromised).toBeLessThanOrEqual(room)
    for (const r of records) expect((await sender.exchange.queue.get(r.transferId))?.state).toBe('complete')
    for (const s of studies) expect(await instanceHashes(receiver.store, s.studyInstanceUID)).toEqual(await instanceHashes(sender.store, s.studyInstanceUID))
  })

  it('ends a transfer whose write hits ENOSPC with BEELDNET_ERR_DISK_FULL, leaves no partial file and what it held intact, and resumes later', async () => {
    let failAfter = Infinity
    let written = 0
    const { sender, receiver } = await pair({ queue: LONG_BACKOFF }, {
      store: {
        // The disk fills up by something else: the next write past the mark fails as the file system would, once.
        beforeBlobWrite: (bytes) => {
          written += bytes
          if (written <= failAfter) return
          failAfter = Infinity
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' })
        }
      }
    })
    const held = await generateStudy(await tempDir('held'), smallStudy(921))
    const arriving = await generateStudy(await tempDir('arriving'), smallStudy(922, { series: [{ modality: 'CT', instances: 6, rows: 128, columns: 128 }] }))
    await store(receiver.store, held)
    await store(sender.store, arriving)
    const before = await instanceHashes(receiver.store, held.studyInstanceUID)
    failAfter = written + Math.floor((await bytesOf(arriving)) / 3)

    const failed = retryAfter(sender, arriving.studyInstanceUID, 'BEELDNET_ERR_DISK_FULL')
    const record = await sendTo(sender, arriving.studyInstanceUID)
    await failed
    expect((await sender.exchange.queue.get(record.transferId))?.lastError?.message).toMatch(/disk is full .*ENOSPC/)
    // Nothing partial is left; what arrived whole and verified waits for the resume; the store is as it was.
    expect(await readdir(join(receiver.dir, 'data', 'store', 'tmp'))).toEqual([])
    const incoming = await receiver.exchange.incoming.get(sender.node.peerId, record.transferId)
    expect(incoming).toMatchObject({ state: 'receiving', lastError: { code: 'BEELDNET_ERR_DISK_FULL' } })
    expect(await receiver.store.index.getStudy(arriving.studyInstanceUID)).toBeUndefined()
    expect(await instanceHashes(receiver.store, held.studyInstanceUID)).toEqual(before)
    expect(receiver.store.space.reservedBytes).toBe(0)

    const complete = nextEvent(sender.exchange, 'study-complete', (e) => e.transferId === record.transferId)
    await sender.exchange.queue.peerSeen(receiver.node.peerId)
    await complete
    expect(await sender.exchange.queue.get(record.transferId)).toMatchObject({ state: 'complete', attempts: 2 })
    expect(await instanceHashes(receiver.store, arriving.studyInstanceUID)).toEqual(await instanceHashes(sender.store, arriving.studyInstanceUID))
    expect(await instanceHashes(receiver.store, held.studyInstanceUID)).toEqual(before)
  })

  it('still sends its studies out while it refuses every offer', async () => {
    let free = 100 * GiB
    const { sender: full, receiver: other } = await pair({ store: { space: { statfs: fakeDisk(() => free) } } }, {})
    const study = await generateStudy(await tempDir('served-out'), smallStudy(931))
    await store(full.store, study)
    free = 10 * 1024 ** 2
    await expect(full.exchange.pull(SENDER_URA, { studyInstanceUID: '1.2.3', requester: { clinician: { name: 'dr. A. Jansen', uzi: '123456789', role: '01.015' }, purpose: 'treatment', department: 'RAD' }, deliverTo: 'RAD' }))
      .rejects.toMatchObject({ code: 'BEELDNET_ERR_DISK_FULL' })
    expect(await full.store.space.problem()).toMatchObject({ route: 'pull' })

    const record = await sendTo(full, study.studyInstanceUID)
    await nextEvent(full.exchange, 'study-complete', (e) => e.transferId === record.transferId)
    expect(await instanceHashes(other.store, study.studyInstanceUID)).toEqual(await instanceHashes(full.store, study.studyInstanceUID))
    expect(await full.store.space.problem()).toBeDefined()
  })
})
