import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { readHeader, type Dataset } from '../../../node/dicom/dataset-reader.ts'
import { Tags, tag } from '../../../node/dicom/tags.ts'
import { PacsExporter, RECONCILIATION_HOLDER } from '../../../node/reconcile/pacs-export.ts'
import { MappingTableLookup } from '../../../node/reconcile/patient-lookup.ts'
import { createPacsForwarding } from '../../../node/reconcile/forwarding.ts'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { nodePaths } from '../../../node/paths.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { fetchAs } from '../../helpers/api-caller.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { createPrng, generateBsn, generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { startStorescp, type Storescp } from '../../helpers/dcmtk.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'
import { until } from '../../helpers/patience.ts'
import type { PacsForwardingInit } from '../../../node/reconcile/forwarding.ts'

const text = (ds: Dataset | undefined, t: number): string | undefined => ds?.get(t)?.value?.toString('latin1').replace(/[\0 ]+$/, '')
const OriginalAttributes = tag(0x0400, 0x0561)
const ModifiedAttributes = tag(0x0400, 0x0550)

describe('sending a received study to the local PACS, reconciled (IHE IRWF)', () => {
  let work: string
  let store: StudyStore
  let pacs: Storescp
  let exporter: PacsExporter
  let known: GeneratedStudy
  let unknown: GeneratedStudy

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'beeldnet-reconcile-'))
    known = await generateStudy(join(work, 'known'), { seed: 91, patient: { id: 'AMC-5501', issuer: 'AMC', bsn: generateBsn(createPrng(91)) }, accession: 'AMC77', series: [{ modality: 'CT', instances: 2, rows: 32, columns: 32 }], reports: { sr: true } })
    unknown = await generateStudy(join(work, 'unknown'), { seed: 92, patient: { id: 'AMC-5502', issuer: 'AMC', bsn: generateBsn(createPrng(92)) }, series: [{ modality: 'CR', instances: 1, rows: 32, columns: 32 }] })
    store = new StudyStore({ dir: join(work, 'node') })
    await store.start()
    const session = store.beginImport()
    for (const i of [...known.instances, ...unknown.instances]) await session.add(i.path)
    await session.commit()
    await writeFile(join(work, 'patients.csv'), `bsn,patientId,issuer,accessionNumber\n${known.patient.bsn},ISA-0042,ISALA,ISA900\n`)
    await mkdir(join(work, 'pacs'))
    pacs = await startStorescp('ISALA_PACS', join(work, 'pacs'))
    exporter = new PacsExporter({ store, lookup: new MappingTableLookup(join(work, 'patients.csv')), logger: pino({ level: 'silent' }) },
      { aeTitle: 'BEELDNET', destinations: [{ aeTitle: 'ISALA_PACS', host: '127.0.0.1', port: pacs.port }] })
  })

  const forwardingConfig = (name: string): PacsForwardingInit => ({
    dimse: { enabled: false, host: '127.0.0.1', port: 0, aeTitle: 'BEELDNET', acceptCalling: [], destinations: [{ aeTitle: 'ISALA_PACS', host: '127.0.0.1', port: pacs.port }], idleSeconds: 60 },
    pacs: { destination: 'ISALA_PACS', forward: 'confirm', mappingFile: 'patients.csv', exportMaxAttempts: 3, exportBackoffSeconds: 1, exportBackoffMaxSeconds: 1 },
    exportsDir: join(work, `exports-${name}`)
  })

  afterAll(async () => {
    await pacs.stop()
    await store.stop()
    await rm(work, { recursive: true, force: true })
  })

  it('replaces patient id, issuer and accession with the local ones, keeps the originals and every UID', async () => {
    const outcome = await exporter.export({ studyInstanceUID: known.studyInstanceUID, destination: 'ISALA_PACS', source: 'Amsterdam UMC' })
    expect(outcome).toMatchObject({ status: 'sent', completed: known.instances.length, failed: 0 })
    const files = await readdir(join(work, 'pacs'))
    expect(files).toHaveLength(known.instances.length)
    for (const name of files) {
      const path = join(work, 'pacs', name)
      const { dataset, pixelDataOffset } = readHeader(path)
      const sop = text(dataset, Tags.SOPInstanceUID)!
      const original = known.instances.find((i) => i.sopInstanceUID === sop)!
      expect(original).toBeDefined()
      expect(text(dataset, Tags.StudyInstanceUID)).toBe(known.studyInstanceUID)
      expect(text(dataset, Tags.SeriesInstanceUID)).toBe(original.seriesInstanceUID)
      expect(text(dataset, Tags.PatientID)).toBe('ISA-0042')
      expect(text(dataset, Tags.IssuerOfPatientID)).toBe('ISALA')
      expect(text(dataset, Tags.AccessionNumber)).toBe('ISA900')
      const others = dataset.get(Tags.OtherPatientIDsSequence)!.items!
      expect(others.some((item) => text(item, Tags.PatientID) === 'AMC-5501' && text(item, Tags.IssuerOfPatientID) === 'AMC')).toBe(true)
      // The BSN item the sender had stays too.
      expect(others.some((item) => text(item, Tags.PatientID) === known.patient.bsn)).toBe(true)
      const originalAttributes = dataset.get(OriginalAttributes)!.items![0]!
      const modified = originalAttributes.get(ModifiedAttributes)!.items![0]!
      expect(text(modified, Tags.PatientID)).toBe('AMC-5501')
      expect(text(modified, Tags.IssuerOfPatientID)).toBe('AMC')
      expect(text(modified, Tags.AccessionNumber)).toBe('AMC77')
      expect(text(originalAttributes, tag(0x0400, 0x0564))).toBe('Amsterdam UMC')
      expect(text(originalAttributes, tag(0x0400, 0x0565))).toBe('COERCE')
      if (pixelDataOffset !== undefined) {
        // Everything from pixel data on is the sender's, untouched.
        const sent = await readFile(path)
        const source = await readFile(original.path)
        const sourceOffset = readHeader(original.path).pixelDataOffset!
        expect(sent.subarray(pixelDataOffset).equals(source.subarray(sourceOffset))).toBe(true)
      }
    }
    expect(await store.index.holdersOf(known.studyInstanceUID)).not.toContain(RECONCILIATION_HOLDER)
  })

  it('holds a study whose patient it cannot find, sends nothing, and sends it once a person gives the local id', async () => {
    const before = (await readdir(join(work, 'pacs'))).length
    const held = await exporter.export({ studyInstanceUID: unknown.studyInstanceUID, destination: 'ISALA_PACS', source: 'Amsterdam UMC' })
    expect(held).toMatchObject({ status: 'held', reason: expect.stringContaining(unknown.patient.bsn!) })
    expect(await readdir(join(work, 'pacs'))).toHaveLength(before)
    expect(await store.index.holdersOf(unknown.studyInstanceUID)).toContain(RECONCILIATION_HOLDER)

    const sent = await exporter.export({ studyInstanceUID: unknown.studyInstanceUID, destination: 'ISALA_PACS', source: 'Amsterdam UMC', local: { patientId: 'ISA-0077', issuer: 'ISALA' } })
    expect(sent).toMatchObject({ status: 'sent', completed: 1 })
    expect(await readdir(join(work, 'pacs'))).toHaveLength(before + 1)
    expect(await store.index.holdersOf(unknown.studyInstanceUID)).not.toContain(RECONCILIATION_HOLDER)
  })

  it('lists the studies waiting for a person, with why, until they are sent', async () => {
    const held = await generateStudy(join(work, 'held'), { seed: 93, patient: { id: 'AMC-5503', issuer: 'AMC', bsn: generateBsn(createPrng(93)) }, series: [{ modality: 'DX', instances: 1, rows: 32, columns: 32 }] })
    const session = store.beginImport()
    await session.add(held.instances[0]!.path)
    await session.commit()
    const forwarding = createPacsForwarding({ store, lookup: new MappingTableLookup(join(work, 'patients.csv')), logger: pino({ level: 'silent' }), sourceOf: async () => 'Amsterdam UMC' },
      forwardingConfig('held'))
    await forwarding.start()
    onTestFinished(async () => { await forwarding.stop() })
    expect(await forwarding.send(held.studyInstanceUID)).toMatchObject({ status: 'held' })
    const list = await forwarding.held()
    expect(list).toContainEqual(expect.objectContaining({ studyInstanceUID: held.studyInstanceUID, reason: expect.stringContaining(held.patient.bsn!), patient: expect.objectContaining({ id: 'AMC-5503' }) }))
    const queued = await forwarding.send(held.studyInstanceUID, { local: { patientId: 'ISA-0099', issuer: 'ISALA' } })
    expect(queued).toMatchObject({ status: 'queued', export: { state: 'queued', local: { patientId: 'ISA-0099' } } })
    const exportId = queued.status === 'queued' ? queued.export.exportId : ''
    await until(async () => (await forwarding.exports.get(exportId))?.state === 'complete', 'the export to complete')
    expect(await forwarding.exports.get(exportId)).toMatchObject({ done: { instances: 1 }, totals: { instances: 1 }, attempts: 1 })
    expect((await forwarding.held()).map((h) => h.studyInstanceUID)).not.toContain(held.studyInstanceUID)
  })

  it('is offered on the node API: send to our PACS, held with why, then sent with the id a person enters', async () => {
    const study = await generateStudy(join(work, 'api'), { seed: 94, patient: { id: 'AMC-5504', issuer: 'AMC', bsn: generateBsn(createPrng(94)) }, series: [{ modality: 'DX', instances: 1, rows: 32, columns: 32 }] })
    const session = store.beginImport()
    await session.add(study.instances[0]!.path)
    await session.commit()
    const forwarding = createPacsForwarding({ store, lookup: new MappingTableLookup(join(work, 'patients.csv')), logger: pino({ level: 'silent' }), sourceOf: async () => 'Amsterdam UMC' },
      forwardingConfig('api'))
    await forwarding.start()
    onTestFinished(async () => { await forwarding.stop() })
    const app = createHttpServer({ store, logger: pino({ level: 'silent' }), pacs: forwarding, users: new UserStore(nodePaths(join(work, 'node')).users) }, { nodeName: 'test', peerId: 'test' })
    const url = await listenOnLoopback(app)
    const send = async (body: unknown): Promise<{ status: number, body: Record<string, unknown> }> => {
      const res = await fetchAs({ dataDir: join(work, 'node') })(`${url}/api/studies/${study.studyInstanceUID}/pacs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      return { status: res.status, body: await res.json() as Record<string, unknown> }
    }
    try {
      expect(await send({})).toMatchObject({ status: 202, body: { status: 'held', reason: expect.stringContaining(study.patient.bsn!) } })
      const held = await (await fetchAs({ dataDir: join(work, 'node') })(`${url}/api/pacs/held`)).json() as { held: Array<{ studyInstanceUID: string }> }
      expect(held.held.map((h) => h.studyInstanceUID)).toContain(study.studyInstanceUID)
      expect((await send({ issuer: 'ISALA' })).status).toBe(400)
      const queued = await send({ patientId: 'ISA-0100', issuer: 'ISALA' })
      expect(queued).toMatchObject({ status: 202, body: { status: 'queued', exportId: expect.any(String), local: { patientId: 'ISA-0100' }, export: { state: 'queued', destination: 'ISALA_PACS' } } })
      expect(queued.body.export).not.toHaveProperty('local')
      const exportUrl = `${url}/api/pacs/exports/${queued.body.exportId as string}`
      // IT follows it without a clinician's role.
      const asIt = fetchAs({ dataDir: join(work, 'node') }, 'it-admin')
      await until(async () => (await (await asIt(exportUrl)).json() as { state: string }).state === 'complete', 'the export to complete, as the API says')
      const list = await (await asIt(`${url}/api/pacs/exports`)).json() as { exports: Array<{ exportId: string, state: string }> }
      expect(list.exports).toContainEqual(expect.objectContaining({ exportId: queued.body.exportId, state: 'complete' }))
      expect(await (await asIt(`${url}/api/pacs/exports/nope`)).json()).toMatchObject({ code: 'BEELDNET_ERR_EXPORT_NOT_FOUND' })
      expect((await asIt(`${exportUrl}/cancel`, { method: 'POST' })).status).toBe(409)
      expect(await send({ destination: 'NOWHERE', patientId: 'ISA-0100' })).toMatchObject({ status: 400, body: { code: 'BEELDNET_ERR_UNKNOWN_DESTINATION' } })
    } finally {
      await app.close()
    }
  })

  it('refuses a destination that is not configured', async () => {
    await expect(exporter.export({ studyInstanceUID: known.studyInstanceUID, destination: 'NOWHERE', source: 'x' })).rejects.toMatchObject({ code: 'BEELDNET_ERR_UNKNOWN_DESTINATION' })
  })
})
