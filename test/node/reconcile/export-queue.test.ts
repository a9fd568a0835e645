import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { AuditLog, trailRecords, type AuditRecord } from '../../../node/audit/audit-log.ts'
import { readHeader } from '../../../node/dicom/dataset-reader.ts'
import { Tags } from '../../../node/dicom/tags.ts'
import { exportHolder } from '../../../node/reconcile/export-queue.ts'
import { createExportStore, type ExportRecord } from '../../../node/reconcile/export-store.ts'
import { createPacsForwarding, type PacsForwarding } from '../../../node/reconcile/forwarding.ts'
import { classifySend, RECONCILIATION_HOLDER } from '../../../node/reconcile/pacs-export.ts'
import type { InstanceSent } from '../../../node/dimse/retrieve.ts'
import { noLookup } from '../../../node/reconcile/patient-lookup.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { freePort } from '../../../simulations/bench/processes.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { dcmtk, startStorescp, type Storescp } from '../../helpers/dcmtk.ts'
import { until } from '../../helpers/patience.ts'

/*
 * The export to the PACS as a queue, against dcmtk's storescp as the PACS: down (nothing listens on
 * its port), back, refusing some instances, gone from the config; across a restart of the queue.
 */

const silent = pino({ level: 'silent' })
const LOCAL = { patientId: 'ISA-1', issuer: 'ISALA' }

interface Setup {
  work: string
  store: StudyStore
  audit: AuditLog
  port: number
  study: GeneratedStudy
  /** a forwarding with its queue, started; `destinations` default: the PACS on `port` */
  forwarding: (options?: { maxAttempts?: number, backoffMs?: number, destinations?: string[] }) => Promise<PacsForwarding>
  pacs: (dir: string, options?: string[]) => Promise<Storescp>
  exportAudits: () => Promise<AuditRecord[]>
}

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function setup (series: Parameters<typeof generateStudy>[1]['series'] = [{ modality: 'CT', instances: 2, rows: 16, columns: 16 }]): Promise<Setup> {
  const work = await mkdtemp(join(tmpdir(), 'beeldnet-export-queue-'))
  cleanups.push(async () => { await rm(work, { recursive: true, force: true }) })
  const study = await generateStudy(join(work, 'study'), { seed: 141, patient: { id: 'AMC-1', issuer: 'AMC' }, series })
  const store = new StudyStore({ dir: join(work, 'node') })
  await store.start()
  cleanups.push(async () => { await store.stop() })
  const session = store.beginImport()
  for (const i of study.instances) await session.add(i.path)
  await session.commit()
  const audit = new AuditLog(join(work, 'trail.jsonl'))
  await audit.start()
  cleanups.push(async () => { await audit.stop() })
  // Nothing listens here until a test starts the PACS.
  const port = await freePort()
  return {
    work,
    store,
    audit,
    port,
    study,
    async forwarding (options = {}) {
      const forwarding = createPacsForwarding({ store, lookup: noLookup, logger: silent, audit, sourceOf: async () => 'Amsterdam UMC' }, {
        dimse: { enabled: false, host: '127.0.0.1', port: 0, aeTitle: 'BEELDNET', acceptCalling: [], idleSeconds: 60, destinations: (options.destinations ?? ['ISALA_PACS']).map((aeTitle) => ({ aeTitle, host: '127.0.0.1', port })) },
        pacs: { destination: 'ISALA_PACS', forward: 'confirm', mappingFile: '', exportMaxAttempts: 100, exportBackoffSeconds: 1, exportBackoffMaxSeconds: 1 },
        exportsDir: join(work, 'exports'),
        queue: { backoffInitialMs: options.backoffMs ?? 20, backoffMaxMs: options.backoffMs ?? 100, maxAttempts: options.maxAttempts ?? 1000 }
      })
      await forwarding.start()
      cleanups.push(async () => { await forwarding.stop() })
      return forwarding
    },
    async pacs (dir, options = []) {
      await mkdir(join(work, dir), { recursive: true })
      const pacs = await startStorescp('ISALA_PACS', join(work, dir), port, options)
      cleanups.push(async () => { await pacs.stop() })
      return pacs
    },
    async exportAudits () {
      const records: AuditRecord[] = []
      for await (const r of trailRecords(join(work, 'trail.jsonl'))) if (r.event === 'export-to-pacs') records.push(r)
      return records
    }
  }
}

async function queued (forwarding: PacsForwarding, studyInstanceUID: string): Promise<ExportRecord> {
  const answer = await forwarding.send(studyInstanceUID, { local: LOCAL })
  if (answer.status !== 'queued') throw new Error(`expected the export to be queued, it was ${answer.status}`)
  return answer.export
}

/** The record as the export store keeps it, read with no queue running. */
async function storedRecord (work: string, exportId: string): Promise<ExportRecord> {
  const exports = createExportStore(join(work, 'exports'))
  await exports.start()
  try {
    const record = await exports.get(exportId)
    if (record === undefined) throw new Error(`no export ${exportId}`)
    return record
  } finally {
    await exports.stop()
  }
}

async function stateOf (forwarding: PacsForwarding, exportId: string): Promise<ExportRecord> {
  const record = await forwarding.exports.get(exportId)
  if (record === undefined) throw new Error(`no export ${exportId}`)
  return record
}

describe('the export queue to the PACS', () => {
  it('retries while the PACS is down, sends once it is back, and audits it once', async () => {
    const s = await setup()
    const forwarding = await s.forwarding()
    const record = await queued(forwarding, s.study.studyInstanceUID)
    expect(record).toMatchObject({ state: 'queued', attempts: 0, totals: { instances: 2 }, done: { instances: 0 } })
    expect(await s.store.index.holdersOf(s.study.studyInstanceUID)).toContain(exportHolder(record.exportId))

    await until(async () => (await stateOf(forwarding, record.exportId)).attempts >= 3, 'three attempts while the PACS is down')
    const retrying = await stateOf(forwarding, record.exportId)
    expect(retrying.state === 'queued' || retrying.state === 'sending').toBe(true)
    expect((await forwarding.exports.get(record.exportId))?.lastError).toMatchObject({ code: 'BEELDNET_ERR_PACS_UNREACHABLE', message: expect.stringContaining('ISALA_PACS') })
    // Attempts are in the log, not the audit trail.
    expect(await s.exportAudits()).toEqual([])

    const pacs = await s.pacs('pacs')
    await until(async () => (await stateOf(forwarding, record.exportId)).state === 'complete', 'the export to complete once the PACS is back')
    expect(await stateOf(forwarding, record.exportId)).toMatchObject({ done: { instances: 2 }, completedAt: expect.any(String) })
    const files = await pacs.settled(2)
    expect(files).toHaveLength(2)
    for (const name of files) expect(readHeader(join(s.work, 'pacs', name)).dataset.get(Tags.PatientID)?.value?.toString('latin1').trim()).toBe('ISA-1')
    const audits = await s.exportAudits()
    expect(audits).toHaveLength(1)
    expect(audits[0]).toMatchObject({ outcome: 'sent to ISALA_PACS', studyInstanceUID: s.study.studyInstanceUID, details: { exportId: record.exportId, localPatientId: 'ISA-1', instances: '2' } })
    expect(await s.store.index.holdersOf(s.study.studyInstanceUID)).not.toContain(exportHolder(record.exportId))
  })

  it('keeps a queued export across a restart of the queue and completes it after', async () => {
    const s = await setup()
    const first = await s.forwarding()
    const record = await queued(first, s.study.studyInstanceUID)
    await until(async () => (await stateOf(first, record.exportId)).attempts >= 1 && (await stateOf(first, record.exportId)).state === 'queued', 'a failed first attempt')
    await first.stop()

    const again = await s.forwarding()
    const resumed = await stateOf(again, record.exportId)
    expect(resumed.lastError?.code).toBe('BEELDNET_ERR_PACS_UNREACHABLE')
    expect(resumed.state === 'queued' || resumed.state === 'sending').toBe(true)
    const pacs = await s.pacs('pacs')
    await until(async () => (await stateOf(again, record.exportId)).state === 'complete', 'the resumed export to complete')
    expect(await pacs.settled(2)).toHaveLength(2)
    expect(await s.exportAudits()).toHaveLength(1)
  })

  it('cancel stops an export for good; retry queues a failed one again', async () => {
    const s = await setup()
    // A queue whose next attempt is a minute away: the export waits, retrying, and is cancelled.
    const patient = await s.forwarding({ backoffMs: 60_000 })
    const cancelled = await queued(patient, s.study.studyInstanceUID)
    await until(async () => (await stateOf(patient, cancelled.exportId)).nextAttemptAt !== undefined, 'the export to wait for its next attempt')
    expect((await patient.exports.cancel(cancelled.exportId)).state).toBe('cancelled')
    await expect(patient.exports.cancel(cancelled.exportId)).rejects.toMatchObject({ code: 'BEELDNET_ERR_EXPORT_STATE' })
    await expect(patient.exports.retry('no-such-export')).rejects.toMatchObject({ code: 'BEELDNET_ERR_EXPORT_NOT_FOUND' })
    await patient.stop()

    const forwarding = await s.forwarding({ maxAttempts: 2 })
    const failing = await queued(forwarding, s.study.studyInstanceUID)

    // Two attempts, then failed for good: audited once as a failure (the cancel was audited once as that).
    await until(async () => (await stateOf(forwarding, failing.exportId)).state === 'failed', 'the export to fail after its attempts')
    expect(await stateOf(forwarding, failing.exportId)).toMatchObject({ attempts: 2, lastError: { code: 'BEELDNET_ERR_PACS_UNREACHABLE' } })
    expect(await s.exportAudits()).toEqual([
      expect.objectContaining({ outcome: 'cancelled', details: expect.objectContaining({ exportId: cancelled.exportId, instances: '0' }) }),
      expect.objectContaining({ outcome: 'failed: BEELDNET_ERR_PACS_UNREACHABLE', details: expect.objectContaining({ exportId: failing.exportId, attempts: '2' }) })
    ])
    expect(await s.store.index.holdersOf(s.study.studyInstanceUID)).toEqual([])

    const pacs = await s.pacs('pacs')
    expect(await forwarding.exports.retry(failing.exportId)).toMatchObject({ state: 'queued', attempts: 0 })
    await until(async () => (await stateOf(forwarding, failing.exportId)).state === 'complete', 'the export retried by hand to complete')
    expect(await pacs.settled(2)).toHaveLength(2)
    expect((await s.exportAudits()).map((a) => a.outcome)).toEqual(['cancelled', 'failed: BEELDNET_ERR_PACS_UNREACHABLE', 'sent to ISALA_PACS'])
    await expect(forwarding.exports.retry(failing.exportId)).rejects.toMatchObject({ code: 'BEELDNET_ERR_EXPORT_STATE' })
    // The cancelled one never went.
    expect(await stateOf(forwarding, cancelled.exportId)).toMatchObject({ state: 'cancelled', done: { instances: 0 } })
    expect((await forwarding.exports.list()).map((e) => e.exportId)).toEqual([failing.exportId, cancelled.exportId])
  })

  // A PACS that sleeps a second after each instance it stores (storescp --sleep-after): a study of
  // 30 instances takes it half a minute, so a cancel or a stop lands while the association runs.
  const SLOW_STUDY = [{ modality: 'CT' as const, instances: 30, rows: 16, columns: 16 }]

  it('a cancel ends the association being sent on: the export is cancelled, audited once with what got through, and a retry sends the rest', async () => {
    const s = await setup(SLOW_STUDY)
    const slow = await s.pacs('slow', ['--sleep-after', '1'])
    const forwarding = await s.forwarding()
    const record = await queued(forwarding, s.study.studyInstanceUID)
    // A second instance stored: the first was answered (storescp sleeps before its answer).
    await until(async () => (await slow.files()).length >= 2, 'the slow PACS to store a second instance')
    expect((await stateOf(forwarding, record.exportId)).state).toBe('sending')
    expect(await forwarding.exports.cancel(record.exportId, { system: 'IT desk' })).toMatchObject({ state: 'cancelled' })

    // The attempt ends (and audits the cancel) long before the slow PACS could have taken the study.
    await until(async () => (await s.exportAudits()).length === 1, 'the cancel in the audit trail once its association ended')
    const cancelled = await stateOf(forwarding, record.exportId)
    expect(cancelled).toMatchObject({ state: 'cancelled', attempts: 1 })
    expect(cancelled.done.instances).toBeGreaterThanOrEqual(1)
    expect(cancelled.done.instances).toBeLessThan(30)
    expect(cancelled.remaining).toHaveLength(30 - cancelled.done.instances)
    // At most the instance in flight at the A-ABORT reached the PACS unanswered.
    expect((await slow.files()).length).toBeLessThanOrEqual(cancelled.done.instances + 1)
    const audits = await s.exportAudits()
    expect(audits).toEqual([expect.objectContaining({ outcome: 'cancelled', user: { system: 'IT desk' }, details: expect.objectContaining({ exportId: record.exportId, instances: String(cancelled.done.instances) }) })])
    expect(await s.store.index.holdersOf(s.study.studyInstanceUID)).not.toContain(exportHolder(record.exportId))
    await slow.stop()

    // Queued again by hand: only what the PACS had not stored goes.
    const fast = await s.pacs('fast')
    await forwarding.exports.retry(record.exportId)
    await until(async () => (await stateOf(forwarding, record.exportId)).state === 'complete', 'the export queued again to complete')
    expect(await stateOf(forwarding, record.exportId)).toMatchObject({ done: { instances: 30 } })
    expect(await fast.settled(cancelled.remaining!.length)).toHaveLength(cancelled.remaining!.length)
    expect((await s.exportAudits()).map((a) => a.outcome)).toEqual(['cancelled', 'sent to ISALA_PACS'])
  })

  it('a stop ends the association being sent on; the export is queued, and sent after the restart, the rest only', async () => {
    const s = await setup(SLOW_STUDY)
    const slow = await s.pacs('slow', ['--sleep-after', '1'])
    const first = await s.forwarding()
    const record = await queued(first, s.study.studyInstanceUID)
    // A second instance stored: the first was answered (storescp sleeps before its answer).
    await until(async () => (await slow.files()).length >= 2, 'the slow PACS to store a second instance')
    // Stop waits for the attempt to end: it ends with its association, not with the study.
    await first.stop()
    const stopped = await storedRecord(s.work, record.exportId)
    expect(stopped).toMatchObject({ state: 'queued', attempts: 1 })
    expect(stopped.nextAttemptAt).toBeUndefined()
    expect(stopped.done.instances).toBeGreaterThanOrEqual(1)
    expect(stopped.done.instances).toBeLessThan(30)
    expect(stopped.remaining).toHaveLength(30 - stopped.done.instances)
    expect((await slow.files()).length).toBeLessThanOrEqual(stopped.done.instances + 1)
    // Interrupted is not ended: nothing audited yet.
    expect(await s.exportAudits()).toEqual([])
    await slow.stop()

    const fast = await s.pacs('fast')
    const again = await s.forwarding()
    await until(async () => (await stateOf(again, record.exportId)).state === 'complete', 'the export resumed after the restart to complete')
    expect(await stateOf(again, record.exportId)).toMatchObject({ attempts: 2, done: { instances: 30 } })
    expect(await fast.settled(stopped.remaining!.length)).toHaveLength(stopped.remaining!.length)
    expect(await s.exportAudits()).toEqual([expect.objectContaining({ outcome: 'sent to ISALA_PACS', details: expect.objectContaining({ exportId: record.exportId, instances: '30' }) })])
  })

  it('a destination no longer configured is final: not retried, audited once', async () => {
    const s = await setup()
    const first = await s.forwarding({ destinations: ['ISALA_PACS'] })
    await expect(first.send(s.study.studyInstanceUID, { local: LOCAL, destination: 'NOWHERE' })).rejects.toMatchObject({ code: 'BEELDNET_ERR_UNKNOWN_DESTINATION' })
    const record = await queued(first, s.study.studyInstanceUID)
    await first.stop()
    // The PACS was taken out of the config before the next start.
    const again = await s.forwarding({ destinations: ['OTHER_PACS'] })
    // Failed on its first attempt after the restart, though the queue allows 1000: not retried.
    await until(async () => (await stateOf(again, record.exportId)).state === 'failed', 'the export to fail at once')
    expect(await stateOf(again, record.exportId)).toMatchObject({ lastError: { code: 'BEELDNET_ERR_UNKNOWN_DESTINATION' } })
    expect(await s.exportAudits()).toEqual([expect.objectContaining({ outcome: 'failed: BEELDNET_ERR_UNKNOWN_DESTINATION' })])
  })

  it('a study gone before its export is final', async () => {
    const s = await setup()
    const forwarding = await s.forwarding()
    const record = await queued(forwarding, s.study.studyInstanceUID)
    await forwarding.exports.cancel(record.exportId)
    await s.store.deleteStudy(s.study.studyInstanceUID)
    await forwarding.exports.retry(record.exportId)
    await until(async () => (await stateOf(forwarding, record.exportId)).state === 'failed', 'the export of a deleted study to fail')
    expect(await stateOf(forwarding, record.exportId)).toMatchObject({ attempts: 1, lastError: { code: 'BEELDNET_ERR_STUDY_NOT_FOUND' } })
    // The cancel is audited too, by cancel() or by the attempt it ended, whichever it met.
    await until(async () => (await s.exportAudits()).length === 2, 'the cancel and the failure in the audit trail')
    expect((await s.exportAudits()).map((a) => a.outcome).sort()).toEqual(['cancelled', 'failed: BEELDNET_ERR_STUDY_NOT_FOUND'])
  })

  it('after a partial refusal sends again only the instances that failed', async () => {
    const s = await setup([{ modality: 'CT', instances: 2, rows: 16, columns: 16 }, { modality: 'CT', instances: 1, rows: 16, columns: 16, transferSyntax: 'jpeg-ls' }])
    const jls = s.study.instances.find((i) => i.transferSyntaxUID === '1.2.840.10008.1.2.4.80')!
    expect(jls).toBeDefined()
    // storescp by default takes uncompressed syntaxes only, and the generator's JPEG-LS is a stand-in
    // codestream no decoder reads: that instance can be neither sent as stored nor decoded, for good.
    const strict = await s.pacs('strict')
    const forwarding = await s.forwarding()
    const record = await queued(forwarding, s.study.studyInstanceUID)
    await until(async () => (await stateOf(forwarding, record.exportId)).state === 'failed', 'the export to fail on the refused instance')
    expect(await stateOf(forwarding, record.exportId)).toMatchObject({ attempts: 1, done: { instances: 2 }, remaining: [jls.sopInstanceUID], lastError: { code: 'BEELDNET_ERR_PACS_REFUSED' } })
    expect(await strict.settled(2)).toHaveLength(2)
    await strict.stop()

    const lenient = await s.pacs('lenient', ['+xa'])
    await forwarding.exports.retry(record.exportId)
    await until(async () => (await stateOf(forwarding, record.exportId)).state === 'complete', 'the retried export to complete')
    expect(await stateOf(forwarding, record.exportId)).toMatchObject({ done: { instances: 3 } })
    const files = await lenient.settled(1)
    expect(files).toHaveLength(1)
    expect(readHeader(join(s.work, 'lenient', files[0]!)).dataset.get(Tags.SOPInstanceUID)?.value?.toString('latin1').replace(/\0/g, '')).toBe(jls.sopInstanceUID)
    expect((await s.exportAudits()).map((a) => a.outcome)).toEqual(['failed: BEELDNET_ERR_PACS_REFUSED', 'sent to ISALA_PACS'])
  })

  it('does not send a deflated instance it cannot reconcile: the others go, the export fails at once naming it', async () => {
    const s = await setup()
    // The store takes a second copy of one instance, deflated by dcmtk, as a study of its own would carry it.
    const deflatedStudy = await generateStudy(join(s.work, 'deflated'), { seed: 142, patient: { id: 'AMC-2', issuer: 'AMC' }, series: [{ modality: 'CT', instances: 2, rows: 16, columns: 16 }] })
    const plain = deflatedStudy.instances[0]!
    const deflate = deflatedStudy.instances[1]!
    const converted = await dcmtk('dcmconv', ['+td', deflate.path, join(s.work, 'deflated.dcm')])
    expect(converted.code, converted.stderr).toBe(0)
    const session = s.store.beginImport()
    await session.add(plain.path)
    await session.add(join(s.work, 'deflated.dcm'))
    await session.commit()
    const pacs = await s.pacs('pacs')
    const forwarding = await s.forwarding()
    const record = await queued(forwarding, deflatedStudy.studyInstanceUID)
    await until(async () => (await stateOf(forwarding, record.exportId)).state === 'failed', 'the export to fail on the deflated instance')
    expect(await stateOf(forwarding, record.exportId)).toMatchObject({ attempts: 1, done: { instances: 1 }, remaining: [deflate.sopInstanceUID], lastError: { code: 'BEELDNET_ERR_PACS_REFUSED', message: expect.stringContaining('deflated') } })
    expect(await pacs.settled(1)).toHaveLength(1)
  })

  it('keeps the reconciliation hold until the study reached the PACS', async () => {
    const s = await setup()
    const forwarding = await s.forwarding()
    expect(await forwarding.send(s.study.studyInstanceUID)).toMatchObject({ status: 'held' })
    expect(await s.store.index.holdersOf(s.study.studyInstanceUID)).toContain(RECONCILIATION_HOLDER)
    const record = await queued(forwarding, s.study.studyInstanceUID)
    await until(async () => (await stateOf(forwarding, record.exportId)).attempts >= 1, 'a first attempt')
    expect(await s.store.index.holdersOf(s.study.studyInstanceUID)).toContain(RECONCILIATION_HOLDER)
    await s.pacs('pacs')
    await until(async () => (await stateOf(forwarding, record.exportId)).state === 'complete', 'the export to complete')
    expect(await s.store.index.holdersOf(s.study.studyInstanceUID)).toEqual([])
  })

  it('classifies each instance from the sender\'s result per instance, not from its reasons in words', () => {
    const sops = ['1.2.1', '1.2.2', '1.2.3', '1.2.4', '1.2.5']
    const sent: InstanceSent[] = [
      { sopInstanceUID: '1.2.1', outcome: 'stored', status: 0xB000, reason: 'coerced' },
      { sopInstanceUID: '1.2.2', outcome: 'failed', status: 0xA700, reason: 'out of resources' },
      { sopInstanceUID: '1.2.3', outcome: 'failed', status: 0xC000, reason: 'cannot understand' },
      { sopInstanceUID: '1.2.4', outcome: 'not-sent', status: 0x0122, reason: 'no decoder', code: 'BEELDNET_ERR_TRANSCODE_UNSUPPORTED' }
    ]
    // Reasons are for the log: none here names an instance, and 1.2.5 has no result at all (sent again).
    expect(classifySend(sops, sent, ['something went wrong']))
      .toMatchObject({ total: 5, completed: 1, retryable: ['1.2.2', '1.2.5'], refused: ['1.2.3', '1.2.4'], cancelled: [], unreachable: false })
    const lost = sops.map((sop): InstanceSent => ({ sopInstanceUID: sop, outcome: 'lost', status: 0xA700, reason: 'connect ECONNREFUSED' }))
    expect(classifySend(sops, lost, ['ISALA_PACS at 127.0.0.1:1: connect ECONNREFUSED']))
      .toMatchObject({ completed: 0, retryable: sops, refused: [], unreachable: true })
    const aborted: InstanceSent[] = [sent[0]!, ...sops.slice(1).map((sop): InstanceSent => ({ sopInstanceUID: sop, outcome: 'cancelled', status: 0xFE00, reason: 'the export was cancelled' }))]
    expect(classifySend(sops, aborted, [])).toMatchObject({ completed: 1, retryable: [], refused: [], cancelled: sops.slice(1), unreachable: false })
  })
})
