import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readHeader } from '../../../node/dicom/dataset-reader.ts'
import { createDimseService, type DimseService } from '../../../node/dimse/dimse-service.ts'
import { AuditLog } from '../../../node/audit/audit-log.ts'
import { verifyTrail } from '../../../node/audit/verify.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { dcmtk, startStorescp, type Storescp } from '../../helpers/dcmtk.ts'
import { element, part10 } from '../../helpers/dicom-bytes.ts'

/** The dataset of a Part 10 file: what DIMSE carries, whoever wrote the File Meta around it. */
function datasetOf (file: Buffer): Buffer {
  return file.toString('latin1', 128, 132) === 'DICM' ? file.subarray(144 + file.readUInt32LE(140)) : file
}

describe('the DIMSE service, driven by dcmtk', () => {
  let work: string
  let store: StudyStore
  let service: DimseService
  let pacs: Storescp
  let study: GeneratedStudy
  let audit: AuditLog
  const logs: Array<Record<string, unknown>> = []
  const port = (): string => String(service.port)

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'beeldnet-dimse-'))
    study = await generateStudy(join(work, 'src'), {
      seed: 81,
      patient: { name: 'Jansen^Piet', id: '8100001' },
      studyDate: '20260412',
      series: [{ modality: 'CT', instances: 3, rows: 64, columns: 64 }],
      reports: { sr: true }
    })
    await mkdir(join(work, 'pacs'))
    pacs = await startStorescp('PACS_STORE', join(work, 'pacs'))
    store = new StudyStore({ dir: join(work, 'node') })
    await store.start()
    const sink = new Writable({ write (chunk: Buffer, _e, cb) { logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>); cb() } })
    audit = new AuditLog(join(work, 'node', 'audit', 'trail.jsonl'))
    await audit.start()
    service = createDimseService({ store, logger: pino({ level: 'info' }, sink), audit }, {
      enabled: true,
      host: '127.0.0.1',
      port: 0,
      aeTitle: 'BEELDNET',
      acceptCalling: ['MODALITY'],
      destinations: [{ aeTitle: 'PACS_STORE', host: '127.0.0.1', port: pacs.port }]
    })
    await service.start()
  })

  afterAll(async () => {
    await service.stop()
    await audit.stop()
    await store.stop()
    await pacs.stop()
    await rm(work, { recursive: true, force: true })
  })

  it('answers C-ECHO from a configured caller and refuses unknown callers and called AE titles, saying why', async () => {
    expect((await dcmtk('echoscu', ['-aet', 'MODALITY', '-aec', 'BEELDNET', '127.0.0.1', port()])).code).toBe(0)
    const stranger = await dcmtk('echoscu', ['-aet', 'STRANGER', '-aec', 'BEELDNET', '127.0.0.1', port()])
    expect(stranger.code).not.toBe(0)
    expect(stranger.stderr).toContain('Calling AE Title Not Recognized')
    expect(logs.some((l) => l.calling === 'STRANGER' && String(l.msg).includes('not in dimse.acceptCalling'))).toBe(true)
    const wrongCalled = await dcmtk('echoscu', ['-aet', 'MODALITY', '-aec', 'SOMEONE', '127.0.0.1', port()])
    expect(wrongCalled.stderr).toContain('Called AE Title Not Recognized')
  })

  it('stores what storescu sends: the same datasets, indexed as one study', async () => {
    const files = study.instances.map((i) => i.path)
    const sent = await dcmtk('storescu', ['-aet', 'MODALITY', '-aec', 'BEELDNET', '127.0.0.1', port(), ...files])
    expect(sent.code).toBe(0)
    // storescu re-encodes sequences with explicit lengths as it sends; what it sends is what a
    // bit-preserving storescp writes, so that is what the node must have stored.
    await mkdir(join(work, 'reference'))
    const reference = await startStorescp('REFERENCE', join(work, 'reference'))
    expect((await dcmtk('storescu', ['-aec', 'REFERENCE', '127.0.0.1', String(reference.port), ...files])).code).toBe(0)
    await reference.stop()
    const entries = await store.getStudy(study.studyInstanceUID)
    expect(entries.study.numberOfInstances).toBe(study.instances.length)
    expect(entries.study.patient.name).toBe('Jansen^Piet')
    for (const instance of study.instances) {
      const stored = entries.instances.find((i) => i.sopInstanceUID === instance.sopInstanceUID)!
      const bytes = await readFile(store.blobs.pathOf(stored.sha256))
      const sentBytes = await readFile(join(work, 'reference', (await readdir(join(work, 'reference'))).find((n) => n.endsWith(instance.sopInstanceUID))!))
      expect(datasetOf(bytes).equals(datasetOf(sentBytes))).toBe(true)
      expect(readHeader(store.blobs.pathOf(stored.sha256)).meta).toBeDefined()
    }
  })

  it('refuses an instance it cannot index with a failure status and a reason, and keeps what it had', async () => {
    // A dataset with SOP Class and Instance UIDs (storescu needs them) but no Study Instance UID.
    const broken = part10('1.2.840.10008.1.2.1', Buffer.concat([
      element(0x0008, 0x0016, 'UI', '1.2.840.10008.5.1.4.1.1.7'),
      element(0x0008, 0x0018, 'UI', '1.2.826.0.1.3680043.99.1'),
      element(0x0010, 0x0020, 'LO', 'X1')
    ]))
    const file = join(work, 'broken.dcm')
    await writeFile(file, broken)
    const before = await store.diskUsage()
    const sent = await dcmtk('storescu', ['-v', '-aet', 'MODALITY', '-aec', 'BEELDNET', '127.0.0.1', port(), file])
    expect(`${sent.stdout}${sent.stderr}`).toMatch(/Error: CannotUnderstand|0xc000/i)
    expect(logs.some((l) => l.msg === 'C-STORE refused' && String(l.reason).includes('BEELDNET_ERR_DICOM_MISSING_UID'))).toBe(true)
    expect((await store.diskUsage()).instances).toBe(before.instances)
  })

  it('answers C-FIND at study, series and image level with exactly the keys asked for', async () => {
    const out = join(work, 'find')
    await mkdir(out)
    const found = await dcmtk('findscu', ['-S', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-X', '-od', out,
      '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientName=jansen*', '-k', 'StudyInstanceUID', '-k', 'NumberOfStudyRelatedInstances', '-k', 'StudyDate',
      '127.0.0.1', port()])
    expect(found.code).toBe(0)
    const dump = await dcmtk('dcmdump', [join(out, 'rsp0001.dcm')])
    expect(dump.stdout).toContain(`[${study.studyInstanceUID}]`)
    expect(dump.stdout).toContain('[Jansen^Piet]')
    expect(dump.stdout).toMatch(/NumberOfStudyRelatedInstances.*|\[4\]/)
    expect(dump.stdout).toContain('[20260412]')
    expect(dump.stdout).not.toContain('PatientBirthDate')

    const images = join(work, 'find-images')
    await mkdir(images)
    await dcmtk('findscu', ['-S', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-X', '-od', images,
      '-k', 'QueryRetrieveLevel=IMAGE', '-k', `StudyInstanceUID=${study.studyInstanceUID}`, '-k', 'SeriesInstanceUID', '-k', 'SOPInstanceUID', '127.0.0.1', port()])
    expect(await readdir(images)).toHaveLength(study.instances.length)

    // Patient Root at PATIENT level: one answer per patient, with the keys asked for.
    const patients = join(work, 'find-patients')
    await mkdir(patients)
    await dcmtk('findscu', ['-P', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-X', '-od', patients,
      '-k', 'QueryRetrieveLevel=PATIENT', '-k', 'PatientName=jansen*', '-k', 'PatientID', '127.0.0.1', port()])
    const patientAnswers = await readdir(patients)
    expect(patientAnswers).toHaveLength(1)
    const patientDump = await dcmtk('dcmdump', [join(patients, patientAnswers[0]!)])
    expect(patientDump.stdout).toContain('[8100001]')
    expect(patientDump.stdout).toContain('[PATIENT]')
    expect(patientDump.stdout).not.toContain('StudyInstanceUID')

    const none = join(work, 'find-none')
    await mkdir(none)
    await dcmtk('findscu', ['-S', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-X', '-od', none, '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientName=nobody', '127.0.0.1', port()])
    expect(await readdir(none)).toHaveLength(0)
  })

  it('refuses a C-FIND with a malformed key with a failure status and a logged reason', async () => {
    const bad = await dcmtk('findscu', ['-v', '-S', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'StudyDate=2026', '127.0.0.1', port()])
    expect(`${bad.stdout}${bad.stderr}`).toContain('DataSetDoesNotMatchSOPClass')
    expect(logs.some((l) => l.msg === 'C-FIND refused' && String(l.reason).includes('BEELDNET_ERR_QUERY_KEY'))).toBe(true)
  })

  it('C-MOVE sends the study to a configured destination, C-GET back on the same association, byte for byte', async () => {
    const moved = await dcmtk('movescu', ['-S', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-aem', 'PACS_STORE',
      '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study.studyInstanceUID}`, '127.0.0.1', port()])
    expect(moved.code).toBe(0)
    const received = await pacs.files()
    expect(received).toHaveLength(study.instances.length)
    // What the node sends is what it stored, byte for byte.
    const entries = await store.getStudy(study.studyInstanceUID)
    const originals = new Set(await Promise.all(entries.instances.map(async (i) => datasetOf(await readFile(store.blobs.pathOf(i.sha256))).toString('base64'))))
    for (const name of received) expect(originals.has(datasetOf(await readFile(join(work, 'pacs', name))).toString('base64'))).toBe(true)

    const got = join(work, 'got')
    await mkdir(got)
    const fetched = await dcmtk('getscu', ['+B', '-S', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-od', got,
      '-k', 'QueryRetrieveLevel=SERIES', '-k', `StudyInstanceUID=${study.studyInstanceUID}`, '-k', `SeriesInstanceUID=${study.instances[0]!.seriesInstanceUID}`, '127.0.0.1', port()])
    expect(fetched.code).toBe(0)
    const gotFiles = await readdir(got)
    expect(gotFiles).toHaveLength(study.instances.filter((i) => i.seriesInstanceUID === study.instances[0]!.seriesInstanceUID).length)
    for (const name of gotFiles) expect(originals.has(datasetOf(await readFile(join(got, name))).toString('base64'))).toBe(true)
  })

  it('never lets a damaged stored file reach the destination whole: the association is aborted', async () => {
    const entries = await store.getStudy(study.studyInstanceUID)
    const victim = entries.instances.find((i) => !i.isReport)!
    const path = store.blobs.pathOf(victim.sha256)
    const original = await readFile(path)
    const damaged = Buffer.from(original)
    damaged[damaged.length - 10] = damaged[damaged.length - 10]! ^ 0xFF
    await writeFile(path, damaged)
    try {
      await mkdir(join(work, 'damaged'))
      const destination = await startStorescp('PACS_STORE', join(work, 'damaged'))
      // The destination is the configured PACS_STORE's AE title on another port: a second service for this test.
      const second = createDimseService({ store, logger: pino({ level: 'silent' }) }, {
        enabled: true, host: '127.0.0.1', port: 0, aeTitle: 'BEELDNET', acceptCalling: ['MODALITY'], destinations: [{ aeTitle: 'PACS_STORE', host: '127.0.0.1', port: destination.port }]
      })
      await second.start()
      try {
        const moved = await dcmtk('movescu', ['-S', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-aem', 'PACS_STORE',
          '-k', 'QueryRetrieveLevel=IMAGE', '-k', `StudyInstanceUID=${study.studyInstanceUID}`, '-k', `SeriesInstanceUID=${victim.seriesInstanceUID}`, '-k', `SOPInstanceUID=${victim.sopInstanceUID}`,
          '127.0.0.1', String(second.port)])
        expect(`${moved.stdout}${moved.stderr}`).toMatch(/Failed|Error/i)
        const received = await destination.settled(0, 2000)
        for (const name of received) expect((await readFile(join(work, 'damaged', name))).length).toBeLessThan(original.length)
      } finally {
        await second.stop()
        await destination.stop()
      }
    } finally {
      await writeFile(path, original)
    }
  })

  it('puts what callers stored, found and retrieved in the audit trail, per patient, naming the caller', async () => {
    const records = (await readFile(audit.path, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { event: string, outcome: string, studyInstanceUID?: string, user: { system?: string } })
    const ours = records.filter((r) => r.studyInstanceUID === study.studyInstanceUID)
    expect(ours.find((r) => r.event === 'store-received')).toMatchObject({ outcome: 'stored by MODALITY to BEELDNET', user: { system: expect.stringContaining('DIMSE caller MODALITY') } })
    expect(ours.some((r) => r.event === 'query' && r.outcome.startsWith('C-FIND'))).toBe(true)
    expect(ours.some((r) => r.event === 'export' && r.outcome === 'C-MOVE to PACS_STORE')).toBe(true)
    expect(ours.some((r) => r.event === 'export' && r.outcome === 'C-GET by MODALITY')).toBe(true)
    expect(await verifyTrail(audit.path)).toMatchObject({ ok: true })
  })

  it('refuses a C-MOVE to a destination that is not configured', async () => {
    const moved = await dcmtk('movescu', ['-S', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-aem', 'ELSEWHERE',
      '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study.studyInstanceUID}`, '127.0.0.1', port()])
    expect(`${moved.stdout}${moved.stderr}`).toContain('MoveDestinationUnknown')
  })
})
