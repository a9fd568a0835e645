import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { nodePaths } from '../../../node/paths.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { fetchAs } from '../../helpers/api-caller.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { dcmtk } from '../../helpers/dcmtk.ts'
import { samplePdf } from '../../helpers/sample-pdf.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'

describe('reports on the node API', () => {
  let work: string
  let store: StudyStore
  let app: FastifyInstance
  let url: string
  let study: GeneratedStudy

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'beeldnet-reports-'))
    study = await generateStudy(join(work, 'src'), { seed: 121, series: [{ modality: 'CT', instances: 2, rows: 32, columns: 32 }], reports: { sr: true, pdf: true } })
    store = new StudyStore({ dir: join(work, 'node') })
    await store.start()
    const session = store.beginImport()
    for (const i of study.instances) await session.add(i.path)
    await session.commit()
    app = createHttpServer({ store, logger: pino({ level: 'silent' }), users: new UserStore(nodePaths(join(work, 'node')).users) }, { nodeName: 'test', peerId: 'test' })
    url = await listenOnLoopback(app)
  })

  afterAll(async () => {
    await app.close()
    await store.stop()
    await rm(work, { recursive: true, force: true })
  })

  const reports = async (): Promise<Array<{ sopInstanceUID: string, kind: string, title?: string }>> =>
    ((await (await fetchAs({ dataDir: join(work, 'node') })(`${url}/api/studies/${study.studyInstanceUID}/reports`)).json()) as { reports: Array<{ sopInstanceUID: string, kind: string, title?: string }> }).reports

  it('lists the reports and renders an SR as readable text', async () => {
    const list = await reports()
    expect(list.map((r) => r.kind).sort()).toEqual(['pdf', 'sr'])
    const sr = list.find((r) => r.kind === 'sr')!
    const res = await fetchAs({ dataDir: join(work, 'node') })(`${url}/api/studies/${study.studyInstanceUID}/reports/${sr.sopInstanceUID}`)
    expect(res.headers.get('content-type')).toContain('text/plain')
    const text = await res.text()
    expect(text).toMatch(/complete, verified/)
    expect(text).toMatch(/^History: \S/m)
    expect(text).toMatch(/^Finding: \S/m)
    expect(text).toMatch(/^Conclusion: \S/m)
  })

  it('serves a PDF report as the document dcmtk extracts from the same instance', async () => {
    const pdf = (await reports()).find((r) => r.kind === 'pdf')!
    const res = await fetchAs({ dataDir: join(work, 'node') })(`${url}/api/studies/${study.studyInstanceUID}/reports/${pdf.sopInstanceUID}`)
    expect(res.headers.get('content-type')).toBe('application/pdf')
    const served = Buffer.from(await res.arrayBuffer())
    const file = study.instances.find((i) => i.sopInstanceUID === pdf.sopInstanceUID)!.path
    expect((await dcmtk('dcm2pdf', [file, join(work, 'extracted.pdf')])).code).toBe(0)
    expect(served.equals(await readFile(join(work, 'extracted.pdf')))).toBe(true)
  })

  it('wraps an attached PDF as an instance of the study that DICOM tools read back unchanged', async () => {
    const pdf = samplePdf('Conclusie: geen afwijkingen')
    const res = await fetchAs({ dataDir: join(work, 'node') })(`${url}/api/studies/${study.studyInstanceUID}/reports?title=Verslag%20CT`, { method: 'POST', headers: { 'content-type': 'application/pdf' }, body: pdf })
    expect(res.status).toBe(201)
    const attached = await res.json() as { sopInstanceUID: string, kind: string, title: string }
    expect(attached).toMatchObject({ kind: 'pdf', title: 'Verslag CT' })
    expect((await reports()).map((r) => r.sopInstanceUID)).toContain(attached.sopInstanceUID)
    const entries = await store.getStudy(study.studyInstanceUID)
    expect(entries.study.numberOfReports).toBe(3)
    const instance = entries.instances.find((i) => i.sopInstanceUID === attached.sopInstanceUID)!
    expect(instance.studyInstanceUID).toBe(study.studyInstanceUID)
    // dcmtk reads the instance: the patient is the study's, the document is the PDF, byte for byte.
    const dump = await dcmtk('dcmdump', [store.blobs.pathOf(instance.sha256)])
    expect(dump.stdout).toContain(`[${entries.study.patient.id}]`)
    expect(dump.stdout).toContain('=EncapsulatedPDFStorage')
    expect((await dcmtk('dcm2pdf', [store.blobs.pathOf(instance.sha256), join(work, 'attached.pdf')])).code).toBe(0)
    expect((await readFile(join(work, 'attached.pdf'))).equals(pdf)).toBe(true)
    const served = Buffer.from(await (await fetchAs({ dataDir: join(work, 'node') })(`${url}/api/studies/${study.studyInstanceUID}/reports/${attached.sopInstanceUID}`)).arrayBuffer())
    expect(served.equals(pdf)).toBe(true)
  })

  it('refuses an attachment that is not a PDF, and a report the study does not have', async () => {
    const notPdf = await fetchAs({ dataDir: join(work, 'node') })(`${url}/api/studies/${study.studyInstanceUID}/reports`, { method: 'POST', headers: { 'content-type': 'application/pdf' }, body: 'hello' })
    expect(notPdf.status).toBe(415)
    expect((await notPdf.json() as { code: string }).code).toBe('BEELDNET_ERR_MEDIA_TYPE')
    const missing = await fetchAs({ dataDir: join(work, 'node') })(`${url}/api/studies/${study.studyInstanceUID}/reports/1.2.3`)
    expect(missing.status).toBe(404)
  })
})
