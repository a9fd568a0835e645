import { copyFile, readFile, readdir, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import type { NodeIdentity } from '../../../protocol/identity.ts'
import { manifestHash, signManifest, type ManifestInstance, type SignedManifest } from '../../../protocol/exchange/manifest.ts'
import { verifyReceipt } from '../../../protocol/exchange/receipt.ts'
import { importFiles } from '../../../node/dicom/file-import.ts'
import type { StudyStore } from '../../../node/store/study-store.ts'
import type { TransferEvents } from '../../../node/transfers/events.ts'
import { createIncomingTransfers, type IncomingTransfers, type ReceiveSession } from '../../../node/transfers/receive/incoming.ts'
import { buildSignedManifest } from '../../../node/transfers/manifest.ts'
import { createTransferStore, type TransferStore } from '../../../node/transfers/transfer-store.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { dcmtk } from '../../helpers/dcmtk.ts'
import { fakeClock, instanceHashes, makeIdentity, openStore, readableOf, RECEIVER_URA, SENDER_URA, smallStudy, storeWithStudy, useCleanup, type FakeClock } from './helpers.ts'

const tempDir = useTempDirs()
const onStop = useCleanup()

interface Receiver {
  dir: string
  store: StudyStore
  transfers: TransferStore
  incoming: IncomingTransfers
  events: { [K in keyof TransferEvents]: Array<TransferEvents[K][0]> }
  stop: () => Promise<void>
}

async function openReceiver (dir: string, identity: NodeIdentity, clock?: FakeClock): Promise<Receiver> {
  const store = await openStore(dir, onStop)
  const transfers = createTransferStore({ dir: join(dir, 'transfers') })
  await transfers.start()
  const incoming = createIncomingTransfers({ store, transfers, identity, clock }, { ura: RECEIVER_URA })
  await incoming.start()
  const events: Receiver['events'] = { state: [], progress: [], 'report-arrived': [], 'study-complete': [], 'transfer-failed': [] }
  for (const name of Object.keys(events) as Array<keyof TransferEvents>) {
    incoming.on(name, ((e: unknown) => { (events[name] as unknown[]).push(e) }) as never)
  }
  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    await incoming.stop()
    await transfers.stop()
    await store.stop()
  }
  onStop(stop)
  return { dir, store, transfers, incoming, events, stop }
}

interface Setup {
  sender: NodeIdentity
  receiverId: NodeIdentity
  senderStore: StudyStore
  study: GeneratedStudy
  signed: SignedManifest
  receiver: Receiver
}

async function setup (seed: number, options: { senderFiles?: string[], clock?: FakeClock } = {}): Promise<Setup> {
  const sender = await makeIdentity()
  const receiverId = await makeIdentity()
  const senderStore = await openStore(await tempDir('sender'), onStop)
  const study = await storeWithStudy(senderStore, await tempDir('src'), smallStudy(seed))
  if (options.senderFiles !== undefined) {
    // The sender holds these files instead of the generated ones (a test of conflicting copies).
    await senderStore.deleteStudy(study.studyInstanceUID)
    await importFiles(options.senderFiles, { store: senderStore })
  }
  const signed = await buildSignedManifest({ store: senderStore, signer: sender.privateKey }, study.studyInstanceUID, {
    sender: { ura: SENDER_URA, peerId: sender.peerId },
    destination: { ura: RECEIVER_URA, department: 'RAD' },
    reason: 'verwijzing',
    note: 'graag beoordelen'
  })
  const receiver = await openReceiver(await tempDir('receiver'), receiverId, options.clock)
  return { sender, receiverId, senderStore, study, signed, receiver }
}

async function send (s: Setup, session: ReceiveSession, entry: ManifestInstance): Promise<void> {
  await session.receiveInstance(entry.sopInstanceUID, s.senderStore.blobs.readVerified(entry.sha256))
}

async function senderBytes (s: Setup, entry: ManifestInstance): Promise<Buffer> {
  return readFile(s.senderStore.blobs.pathOf(entry.sha256))
}

async function filesUnder (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name))
}

/** Nothing of a refused instance may stay: no blob, no temp file, no file waiting for commit, no record. */
async function expectNothingKept (s: Setup, session: ReceiveSession, verifiedBefore = 0): Promise<void> {
  const blobs: string[] = []
  for await (const sha of s.receiver.store.blobs.list()) blobs.push(sha)
  expect(blobs).toEqual([])
  expect(await filesUnder(join(s.receiver.dir, 'store', 'tmp'))).toEqual([])
  expect(await filesUnder(join(s.receiver.dir, 'store', 'incoming'))).toHaveLength(verifiedBefore)
  expect((await s.receiver.transfers.verifiedOf(s.sender.peerId, session.transferId)).size).toBe(verifiedBefore)
  expect(await s.receiver.store.findStudies()).toEqual([])
}

async function expectCode (promise: Promise<unknown>, code: string): Promise<void> {
  await expect(promise).rejects.toMatchObject({ code })
}

describe('receiving a pushed study', () => {
  it('asks for reports first, keeps the study invisible until commit, then shows it whole; the receipt verifies', async () => {
    const s = await setup(1)
    const { receiver } = s
    const session = await receiver.incoming.open(s.signed, { peerId: s.sender.peerId })
    const missing = await session.missing()
    expect(missing).toHaveLength(7)
    expect(missing.map((i) => i.report)).toEqual([true, true, false, false, false, false, false])

    for (const [n, entry] of missing.entries()) {
      await send(s, session, entry)
      // Raised once, as soon as both reports are in.
      expect(receiver.events['report-arrived']).toHaveLength(n >= 1 ? 1 : 0)
    }
    expect(receiver.events['report-arrived'][0]!.reports).toHaveLength(2)
    await expectCode(receiver.store.getStudy(s.study.studyInstanceUID), 'BEELDNET_ERR_STUDY_NOT_FOUND')
    expect(await receiver.store.findStudies()).toEqual([])

    const receipt = await session.commit()
    expect(() => verifyReceipt(receipt, { peerId: s.receiverId.peerId, manifest: s.signed.signed, manifestHash: manifestHash(s.signed) })).not.toThrow()
    const entries = await receiver.store.getStudy(s.study.studyInstanceUID)
    expect(entries.study).toMatchObject({ numberOfInstances: 7, numberOfReports: 2, patient: { id: 'P1', bsn: '123456782' } })
    const sent = (await s.senderStore.getStudy(s.study.studyInstanceUID)).instances.map((i) => i.sha256).sort()
    expect(entries.instances.map((i) => i.sha256).sort()).toEqual(sent)
    for (const sha of sent) expect(await receiver.store.blobs.check(sha)).toBe('ok')

    expect(await filesUnder(join(receiver.dir, 'store', 'incoming'))).toEqual([])
    expect(await receiver.store.index.holdersOf(s.study.studyInstanceUID)).toEqual([])
    expect(await receiver.incoming.get(s.sender.peerId, s.signed.signed.transferId)).toMatchObject({
      state: 'complete', receipt, done: { instances: 7 }
    })
    expect(receiver.events['study-complete']).toHaveLength(1)
    expect(receiver.events.progress.at(-1)).toMatchObject({ instancesDone: 7, instancesTotal: 7, etaSeconds: 0 })
    await expectCode(session.receiveInstance(missing[0]!.sha256, readableOf(Buffer.alloc(1))), 'BEELDNET_ERR_TRANSFER_STATE')
  })

  it('makes instances arriving together durable together: one directory fsync and one synced write per group', async () => {
    const s = await setup(11)
    const session = await s.receiver.incoming.open(s.signed, { peerId: s.sender.peerId })
    const missing = await session.missing()
    await Promise.all(missing.map(async (entry) => send(s, session, entry)))
    const durability = s.receiver.incoming.durability()
    expect(durability.items).toBe(missing.length)
    expect(durability.groups).toBeLessThan(missing.length)
    expect(durability.largestGroup).toBeGreaterThan(1)
    // Each is verified and durable: a restarted receiver would ask for none of them.
    expect((await s.receiver.transfers.verifiedOf(s.sender.peerId, session.transferId)).size).toBe(missing.length)
    expect(await filesUnder(join(s.receiver.dir, 'store', 'incoming'))).toHaveLength(missing.length)
    await session.commit()
    expect(await instanceHashes(s.receiver.store, s.study.studyInstanceUID)).toEqual(await instanceHashes(s.senderStore, s.study.studyInstanceUID))
  })

  it('refuses a wrong hash, a short instance, an overrun and an instance not in the manifest, keeping nothing of them', async () => {
    const s = await setup(2)
    const session = await s.receiver.incoming.open(s.signed, { peerId: s.sender.peerId })
    const entry = (await session.missing()).find((i) => !i.report)!
    const bytes = await senderBytes(s, entry)

    const flipped = Buffer.from(bytes)
    flipped[flipped.length - 1]! ^= 0xff
    await expectCode(session.receiveInstance(entry.sopInstanceUID, readableOf(flipped)), 'BEELDNET_ERR_INSTANCE_HASH')
    await expectNothingKept(s, session)

    await expectCode(session.receiveInstance(entry.sha256, readableOf(bytes.subarray(0, bytes.length - 10))), 'BEELDNET_ERR_INSTANCE_TRUNCATED')
    await expectNothingKept(s, session)

    // A source that never ends: reading must stop as soon as the declared size is passed.
    let pulled = 0
    let finished = false
    const endless = Readable.from((function * () {
      try {
        yield bytes
        for (;;) {
          pulled++
          yield Buffer.alloc(16 * 1024)
        }
      } finally {
        finished = true
      }
    })(), { objectMode: false })
    await expectCode(session.receiveInstance(entry.sopInstanceUID, endless), 'BEELDNET_ERR_INSTANCE_OVERRUN')
    expect(pulled).toBeLessThan(64)
    expect(endless.destroyed).toBe(true)
    expect(finished).toBe(true)
    await expectNothingKept(s, session)

    await expectCode(session.receiveInstance('1.2.3.999', readableOf(bytes)), 'BEELDNET_ERR_INSTANCE_NOT_IN_MANIFEST')
    await expectCode(session.receiveInstance('0'.repeat(64), readableOf(bytes)), 'BEELDNET_ERR_INSTANCE_NOT_IN_MANIFEST')
    await expectNothingKept(s, session)
    expect((await s.receiver.incoming.get(s.sender.peerId, session.transferId))!.lastError).toMatchObject({ code: 'BEELDNET_ERR_INSTANCE_NOT_IN_MANIFEST' })

    // The session goes on: the right bytes are taken, and not a second time.
    await session.receiveInstance(entry.sopInstanceUID, readableOf(bytes))
    await expectCode(session.receiveInstance(entry.sopInstanceUID, readableOf(bytes)), 'BEELDNET_ERR_INSTANCE_NOT_REQUESTED')
    expect((await session.missing()).map((i) => i.sha256)).not.toContain(entry.sha256)
    await expectCode(session.commit(), 'BEELDNET_ERR_TRANSFER_INCOMPLETE')
    expect(await s.receiver.store.findStudies()).toEqual([])
  })

  it('refuses an instance whose header names other UIDs or another patient than its manifest entry', async () => {
    const s = await setup(3)
    const image = s.signed.signed.instances.find((i) => !i.report)!
    const bytes = await senderBytes(s, image)
    const resign = async (change: (m: SignedManifest['signed']) => void): Promise<SignedManifest> => {
      const m = structuredClone(s.signed.signed)
      m.transferId = `${m.transferId.slice(0, 20)}x${Math.floor(Math.random() * 1e6)}`
      change(m)
      return signManifest(m, s.sender.privateKey)
    }
    const wrongSeries = await resign((m) => { m.instances.find((i) => i.sha256 === image.sha256)!.seriesInstanceUID = '1.2.3.4.5.6' })
    const session = await s.receiver.incoming.open(wrongSeries, { peerId: s.sender.peerId })
    await expectCode(session.receiveInstance(image.sha256, readableOf(bytes)), 'BEELDNET_ERR_INSTANCE_HEADER_MISMATCH')
    await expectNothingKept(s, session)

    const otherPatient = await resign((m) => { m.study.patient.id = 'SOMEONE-ELSE' })
    const session2 = await s.receiver.incoming.open(otherPatient, { peerId: s.sender.peerId })
    await expectCode(session2.receiveInstance(image.sha256, readableOf(bytes)), 'BEELDNET_ERR_INSTANCE_HEADER_MISMATCH')
    await expectNothingKept(s, session2)
  })

  it('resumes after a restart of the receiver: asks only for what is missing, even after fsck --repair and a retention sweep', async () => {
    const s = await setup(4)
    let session = await s.receiver.incoming.open(s.signed, { peerId: s.sender.peerId })
    const all = await session.missing()
    for (const entry of all.slice(0, 3)) await send(s, session, entry)
    // The connection breaks mid-instance: what was in flight is dropped, what was verified stays.
    const stalled = new Readable({ read () {} })
    stalled.push((await senderBytes(s, all[3]!)).subarray(0, 100))
    const inFlight = session.receiveInstance(all[3]!.sopInstanceUID, stalled)
    await new Promise((resolve) => setImmediate(resolve))
    await session.abort(new Error('connection lost'))
    await expect(inFlight).rejects.toBeDefined()
    // A step that still arrives on the dying connection is told to retry, not that the transfer is over.
    await expectCode(session.receiveInstance(all[4]!.sopInstanceUID, readableOf(Buffer.alloc(1))), 'BEELDNET_ERR_SESSION_CLOSED')
    expect(await filesUnder(join(s.receiver.dir, 'store', 'tmp'))).toEqual([])
    expect(await filesUnder(join(s.receiver.dir, 'store', 'incoming'))).toHaveLength(3)
    await s.receiver.stop()

    // A new process on the same directories; fsck and retention run while the transfer is unfinished.
    const receiver = await openReceiver(s.receiver.dir, s.receiverId)
    const report = await receiver.store.fsck({ repair: true })
    expect(report.orphans).toEqual([])
    await receiver.store.purgeExpired(0, new Date(Date.now() + 86_400_000))
    expect(await filesUnder(join(receiver.dir, 'store', 'tmp'))).toEqual([])

    session = await receiver.incoming.open(s.signed, { peerId: s.sender.peerId })
    const rest = await session.missing()
    expect(rest.map((i) => i.sopInstanceUID)).toEqual(all.slice(3).map((i) => i.sopInstanceUID))
    expect((await session.accept()).have.sort()).toEqual(all.slice(0, 3).map((i) => i.sha256).sort())
    await expectCode(session.receiveInstance(all[0]!.sopInstanceUID, s.senderStore.blobs.readVerified(all[0]!.sha256)), 'BEELDNET_ERR_INSTANCE_NOT_REQUESTED')
    for (const entry of rest) await send(s, session, entry)
    const receipt = await session.commit()
    expect(() => verifyReceipt(receipt, { peerId: s.receiverId.peerId, manifest: s.signed.signed, manifestHash: manifestHash(s.signed) })).not.toThrow()
    expect((await receiver.store.getStudy(s.study.studyInstanceUID)).study.numberOfInstances).toBe(7)
  })

  it('does not ask for instances the store already holds, and holds the study against retention until commit', async () => {
    const s = await setup(5)
    const have = s.study.instances.filter((i) => i.isReport || i.sopInstanceUID === s.signed.signed.instances.find((e) => !e.report)!.sopInstanceUID)
    await importFiles(have.map((i) => i.path), { store: s.receiver.store })
    const session = await s.receiver.incoming.open(s.signed, { peerId: s.sender.peerId })
    const missing = await session.missing()
    expect(missing).toHaveLength(4)
    expect(missing.every((i) => !have.some((h) => h.sopInstanceUID === i.sopInstanceUID))).toBe(true)
    expect((await session.accept()).have).toHaveLength(3)

    expect(await s.receiver.store.index.holdersOf(s.study.studyInstanceUID)).toHaveLength(1)
    const sweep = await s.receiver.store.purgeExpired(0, new Date(Date.now() + 86_400_000))
    expect(sweep.keptHeld).toEqual([s.study.studyInstanceUID])

    for (const entry of missing) await send(s, session, entry)
    await session.commit()
    expect((await s.receiver.store.getStudy(s.study.studyInstanceUID)).study.numberOfInstances).toBe(7)
    expect(await s.receiver.store.index.holdersOf(s.study.studyInstanceUID)).toEqual([])
  })

  it('answers a completed transfer offered again with the same receipt, asking for nothing', async () => {
    const s = await setup(6)
    const session = await s.receiver.incoming.open(s.signed, { peerId: s.sender.peerId })
    for (const entry of await session.missing()) await send(s, session, entry)
    const receipt = await session.commit()
    const again = await s.receiver.incoming.open(s.signed, { peerId: s.sender.peerId })
    expect(await again.missing()).toEqual([])
    expect((await again.accept()).have).toHaveLength(7)
    const entry = s.signed.signed.instances[0]!
    await expectCode(again.receiveInstance(entry.sha256, readableOf(await senderBytes(s, entry))), 'BEELDNET_ERR_TRANSFER_STATE')
    expect(await again.commit()).toEqual(receipt)
  })

  it('cancel drops what arrived and the transfer cannot be resumed; an abandoned one expires', async () => {
    const clock = fakeClock(Date.now())
    const s = await setup(7, { clock })
    const session = await s.receiver.incoming.open(s.signed, { peerId: s.sender.peerId })
    const missing = await session.missing()
    await send(s, session, missing[0]!)
    await session.cancel()
    await expectNothingKept(s, session)
    expect(await s.receiver.incoming.get(s.sender.peerId, session.transferId)).toMatchObject({ state: 'cancelled' })
    await expectCode(s.receiver.incoming.open(s.signed, { peerId: s.sender.peerId }), 'BEELDNET_ERR_TRANSFER_STATE')

    const second = await signManifest({ ...s.signed.signed, transferId: 'second-transfer-id-0001' }, s.sender.privateKey)
    const abandoned = await s.receiver.incoming.open(second, { peerId: s.sender.peerId })
    await send(s, abandoned, missing[0]!)
    await abandoned.abort()
    expect(await s.receiver.incoming.expire(3_600_000)).toEqual([])
    clock.advance(2 * 3_600_000)
    const expired = await s.receiver.incoming.expire(3_600_000)
    expect(expired.map((r) => [r.transferId, r.state, r.lastError?.code])).toEqual([['second-transfer-id-0001', 'failed', 'BEELDNET_ERR_TRANSFER_EXPIRED']])
    expect(s.receiver.events['transfer-failed'].map((e) => e.error.code)).toEqual(['BEELDNET_ERR_TRANSFER_EXPIRED'])
    await expectNothingKept(s, abandoned)
  })

  it('refuses forged offers, offers for another institution, another manifest under a known id, and a second session', async () => {
    const s = await setup(8)
    const stranger = await makeIdentity()
    const { incoming } = s.receiver
    const tampered = structuredClone(s.signed)
    tampered.signed.note = 'changed'
    await expectCode(incoming.open(tampered, { peerId: s.sender.peerId }), 'BEELDNET_ERR_MANIFEST_FORGED')
    await expectCode(incoming.open(s.signed, { peerId: stranger.peerId }), 'BEELDNET_ERR_SIGNER_MISMATCH')
    await expectCode(incoming.open({ nonsense: true }, { peerId: s.sender.peerId }), 'BEELDNET_ERR_SCHEMA')
    const elsewhere = await signManifest({ ...s.signed.signed, destination: { ura: '33333333', department: 'RAD' } }, s.sender.privateKey)
    await expectCode(incoming.open(elsewhere, { peerId: s.sender.peerId }), 'BEELDNET_ERR_WRONG_DESTINATION')

    const session = await incoming.open(s.signed, { peerId: s.sender.peerId })
    await expectCode(incoming.open(s.signed, { peerId: s.sender.peerId }), 'BEELDNET_ERR_TRANSFER_BUSY')
    await session.abort()
    const changed = await signManifest({ ...s.signed.signed, note: 'another manifest, same id' }, s.sender.privateKey)
    await expectCode(incoming.open(changed, { peerId: s.sender.peerId }), 'BEELDNET_ERR_TRANSFER_CONFLICT')
    // The same transfer id from another sender is another transfer.
    const fromStranger = await signManifest({ ...s.signed.signed, sender: { ura: SENDER_URA, peerId: stranger.peerId } }, stranger.privateKey)
    const other = await incoming.open(fromStranger, { peerId: stranger.peerId })
    expect(await other.missing()).toHaveLength(7)
  })

  it('commits all or nothing: an instance contradicting what is stored fails the transfer and nothing of it shows', async () => {
    // The receiver holds one image; the sender's copy of that image has other bytes under the same UID.
    const src = await tempDir('src')
    const generated = await generateStudy(src, smallStudy(9))
    const target = generated.instances.find((i) => !i.isReport)!
    const altered = await tempDir('altered')
    const senderFiles: string[] = []
    for (const i of generated.instances) {
      const path = join(altered, `${basename(i.path)}-${senderFiles.length}`)
      if (i === target) {
        // Other rows under the same SOP Instance UID: another image, not another encoding of it.
        const bytes = await readFile(i.path)
        const at = bytes.indexOf(Buffer.from([0x28, 0x00, 0x10, 0x00, 0x55, 0x53, 0x02, 0x00]))
        expect(at).toBeGreaterThan(0)
        bytes.writeUInt16LE(bytes.readUInt16LE(at + 8) + 1, at + 8)
        await writeFile(path, bytes)
      } else {
        await copyFile(i.path, path)
      }
      senderFiles.push(path)
    }
    const s = await setup(9, { senderFiles })
    await importFiles([target.path], { store: s.receiver.store })
    const before = await s.receiver.store.getStudy(generated.studyInstanceUID)

    const session = await s.receiver.incoming.open(s.signed, { peerId: s.sender.peerId })
    const missing = await session.missing()
    expect(missing).toHaveLength(7)
    for (const entry of missing) await send(s, session, entry)
    await expectCode(session.commit(), 'BEELDNET_ERR_INSTANCE_CONFLICT')
    expect(await s.receiver.store.getStudy(generated.studyInstanceUID)).toEqual(before)
    expect(await s.receiver.incoming.get(s.sender.peerId, session.transferId)).toMatchObject({ state: 'failed', lastError: { code: 'BEELDNET_ERR_INSTANCE_CONFLICT' } })
    expect(await filesUnder(join(s.receiver.dir, 'store', 'incoming'))).toEqual([])
    const blobs: string[] = []
    for await (const sha of s.receiver.store.blobs.list()) blobs.push(sha)
    expect(blobs).toEqual(before.instances.map((i) => i.sha256))
    expect(s.receiver.events['transfer-failed'].map((e) => e.error.code)).toEqual(['BEELDNET_ERR_INSTANCE_CONFLICT'])
  })

  it('a pushed instance the receiver holds in another transfer syntax is a duplicate: the transfer commits and the held copy stays', async () => {
    const s = await setup(12)
    const target = s.signed.signed.instances.find((i) => !i.report)!
    // The receiver holds that image as Implicit VR Little Endian (what a PACS may have sent it).
    const implicit = join(await tempDir('implicit'), 'implicit.dcm')
    const original = join(await tempDir('original'), 'original.dcm')
    await writeFile(original, await readFile(s.senderStore.blobs.pathOf(target.sha256)))
    const converted = await dcmtk('dcmconv', ['+ti', original, implicit])
    expect(converted.code, converted.stderr).toBe(0)
    await importFiles([implicit], { store: s.receiver.store })
    const held = (await s.receiver.store.getStudy(s.study.studyInstanceUID)).instances[0]!
    expect(held).toMatchObject({ sopInstanceUID: target.sopInstanceUID, transferSyntaxUID: '1.2.840.10008.1.2' })

    const session = await s.receiver.incoming.open(s.signed, { peerId: s.sender.peerId })
    const missing = await session.missing()
    expect(missing.map((i) => i.sha256)).toContain(target.sha256)
    for (const entry of missing) await send(s, session, entry)
    await session.commit()
    const entries = await s.receiver.store.getStudy(s.study.studyInstanceUID)
    expect(entries.study.numberOfInstances).toBe(7)
    expect(entries.instances.find((i) => i.sopInstanceUID === target.sopInstanceUID)).toEqual(held)
    const blobs: string[] = []
    for await (const sha of s.receiver.store.blobs.list()) blobs.push(sha)
    expect(blobs.sort()).toEqual(entries.instances.map((i) => i.sha256).sort())
    expect(await filesUnder(join(s.receiver.dir, 'store', 'incoming'))).toEqual([])
  })
})
