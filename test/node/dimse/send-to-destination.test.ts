import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { sendToDestination, type RetrieveProgress } from '../../../node/dimse/retrieve.ts'
import { storeInstances, type StoreResult } from '../../../node/dimse/store-scu.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { generateStudy } from '../../../simulations/generator/index.ts'
import { startStorescp } from '../../helpers/dcmtk.ts'
import { until } from '../../helpers/patience.ts'

/*
 * sendToDestination, the C-STORE to a destination of C-MOVE and of the export to the PACS, against
 * dcmtk's storescp: what became of each instance comes back per instance (not only in words), and
 * an AbortSignal ends the association while it runs.
 */

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function storeWith (series: Parameters<typeof generateStudy>[1]['series']): Promise<{ work: string, store: StudyStore, studyInstanceUID: string }> {
  const work = await mkdtemp(join(tmpdir(), 'beeldnet-send-to-destination-'))
  cleanups.push(async () => { await rm(work, { recursive: true, force: true }) })
  const study = await generateStudy(join(work, 'study'), { seed: 151, patient: { id: 'AMC-3', issuer: 'AMC' }, series })
  const store = new StudyStore({ dir: join(work, 'node') })
  await store.start()
  cleanups.push(async () => { await store.stop() })
  const session = store.beginImport()
  for (const i of study.instances) await session.add(i.path)
  await session.commit()
  return { work, store, studyInstanceUID: study.studyInstanceUID }
}

describe('sendToDestination', () => {
  it('says per instance what became of it: stored, or not sent with the status that stands for it', async () => {
    const { work, store, studyInstanceUID } = await storeWith([{ modality: 'CT', instances: 2, rows: 16, columns: 16 }, { modality: 'CT', instances: 1, rows: 16, columns: 16, transferSyntax: 'jpeg-ls' }])
    await mkdir(join(work, 'pacs'))
    // Uncompressed only, and the generator's JPEG-LS is a stand-in no decoder reads: that one cannot go.
    const pacs = await startStorescp('PACS', join(work, 'pacs'))
    cleanups.push(async () => { await pacs.stop() })
    const instances = (await store.getStudy(studyInstanceUID)).instances
    const jls = instances.find((i) => i.transferSyntaxUID === '1.2.840.10008.1.2.4.80')!
    const done = await sendToDestination(store, instances, { aeTitle: 'PACS', host: '127.0.0.1', port: pacs.port }, 'BEELDNET', () => {})
    expect(done).toMatchObject({ remaining: 0, completed: 2, failed: 1, failedSopInstanceUIDs: [jls.sopInstanceUID] })
    expect(done.instances).toHaveLength(3)
    expect(done.instances!.filter((i) => i.outcome === 'stored').map((i) => i.status)).toEqual([0, 0])
    expect(done.instances!.find((i) => i.sopInstanceUID === jls.sopInstanceUID)).toMatchObject({ outcome: 'not-sent', status: 0x0122, code: expect.stringMatching(/^BEELDNET_ERR_/) })
    // The words stay for the log.
    expect(done.reasons).toEqual([expect.stringMatching(new RegExp(`^${jls.sopInstanceUID.replace(/\./g, '\\.')}: status 0x0122 `))])
  })

  it('an aborted signal ends the association at once: what was not answered is cancelled and still remaining, not failed', async () => {
    const { work, store, studyInstanceUID } = await storeWith([{ modality: 'CT', instances: 20, rows: 16, columns: 16 }])
    await mkdir(join(work, 'pacs'))
    // Sleeps a second after each instance: the whole study would take 20 s.
    const pacs = await startStorescp('PACS', join(work, 'pacs'), undefined, ['--sleep-after', '1'])
    cleanups.push(async () => { await pacs.stop() })
    const instances = (await store.getStudy(studyInstanceUID)).instances
    const controller = new AbortController()
    const progress: RetrieveProgress[] = []
    const sending = sendToDestination(store, instances, { aeTitle: 'PACS', host: '127.0.0.1', port: pacs.port }, 'BEELDNET', (p) => { progress.push(p) }, { signal: controller.signal })
    await until(() => progress.length >= 1, 'a first instance answered')
    controller.abort(new Error('cancelled by IT'))
    const done = await sending
    expect(done.failed).toBe(0)
    expect(done.completed).toBeGreaterThanOrEqual(1)
    expect(done.completed).toBeLessThan(20)
    expect(done.remaining).toBe(20 - done.completed)
    const cancelled = done.instances!.filter((i) => i.outcome === 'cancelled')
    expect(cancelled).toHaveLength(done.remaining)
    expect(cancelled[0]).toMatchObject({ status: 0xFE00, reason: 'cancelled by IT' })
    expect(done.reasons).toEqual([expect.stringContaining('aborted: cancelled by IT')])
    // At most the instance in flight at the A-ABORT reached the PACS unanswered.
    expect((await pacs.files()).length).toBeLessThanOrEqual(done.completed + 1)
    // Aborted before it starts, nothing is sent at all.
    const none = await sendToDestination(store, instances, { aeTitle: 'PACS', host: '127.0.0.1', port: pacs.port }, 'BEELDNET', () => {}, { signal: controller.signal })
    expect(none).toMatchObject({ remaining: 20, completed: 0, failed: 0 })
    expect(none.instances!.every((i) => i.outcome === 'cancelled')).toBe(true)
  })

  it('an abort ends a sending that waits for a destination that does not read (a large instance mid-PDU stream)', async () => {
    const work = await mkdtemp(join(tmpdir(), 'beeldnet-send-to-destination-'))
    cleanups.push(async () => { await rm(work, { recursive: true, force: true }) })
    // storescp sleeps a minute as an instance begins: it reads nothing, and 64 MB fill every buffer on the way.
    const pacs = await startStorescp('PACS', work, undefined, ['--ignore', '--sleep-during', '60'])
    cleanups.push(async () => { await pacs.stop() })
    let yielded = 0
    async function * large (): AsyncGenerator<Uint8Array> {
      const chunk = Buffer.alloc(64 * 1024)
      for (let i = 0; i < 1024; i++) {
        yielded += chunk.length
        yield chunk
      }
    }
    const controller = new AbortController()
    const results: StoreResult[] = []
    const sending = storeInstances({ aeTitle: 'PACS', host: '127.0.0.1', port: pacs.port }, 'BEELDNET',
      [{ sopClassUID: '1.2.840.10008.5.1.4.1.1.7', sopInstanceUID: '1.2.826.0.1.3680043.2.1143.77.1', transferSyntaxUID: '1.2.840.10008.1.2.1', dataset: large }],
      (result) => { results.push(result) }, { signal: controller.signal })
    await until(() => yielded >= 1024 * 1024, 'the dataset to be under way')
    controller.abort(new Error('the export queue is stopping'))
    // Ends with the abort, not when the destination wakes up and reads on.
    expect(await sending).toEqual({ reasons: [expect.stringContaining('aborted: the export queue is stopping')] })
    expect(results).toEqual([expect.objectContaining({ outcome: 'aborted', status: 0xFE00 })])
    expect(yielded).toBeLessThan(64 * 1024 * 1024)
  })
})
