import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { nodePaths } from '../../../node/paths.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { fetchAs, tokenFor } from '../../helpers/api-caller.ts'
import { readHeader } from '../../../node/dicom/dataset-reader.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { AuditLog } from '../../../node/audit/audit-log.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'

// dicomweb-client is the browser library OHIF viewers use; in Node it needs an XMLHttpRequest.
const require = createRequire(import.meta.url)
;(globalThis as { XMLHttpRequest?: unknown }).XMLHttpRequest ??= require('xhr2')
const { api } = require('dicomweb-client') as { api: { DICOMwebClient: new (options: { url: string, headers?: Record<string, string> }) => DicomwebClient } }

interface DicomwebClient {
  searchForStudies (options?: { queryParams?: Record<string, string> }): Promise<Array<Record<string, { vr: string, Value?: unknown[] }>>>
  searchForSeries (options: { studyInstanceUID: string }): Promise<Array<Record<string, { vr: string, Value?: unknown[] }>>>
  retrieveStudy (options: { studyInstanceUID: string }): Promise<ArrayBuffer[]>
  retrieveInstance (options: { studyInstanceUID: string, seriesInstanceUID: string, sopInstanceUID: string }): Promise<ArrayBuffer>
  retrieveStudyMetadata (options: { studyInstanceUID: string }): Promise<Array<Record<string, { vr: string, Value?: unknown[], BulkDataURI?: string }>>>
  retrieveBulkData (options: { BulkDataURI: string }): Promise<ArrayBuffer[]>
  retrieveInstanceFrames (options: { studyInstanceUID: string, seriesInstanceUID: string, sopInstanceUID: string, frameNumbers: number[] }): Promise<ArrayBuffer[]>
  storeInstances (options: { datasets: ArrayBuffer[], studyInstanceUID?: string }): Promise<unknown>
}

const logger = pino({ level: 'silent' })
// Directories for the whole file (the studies and nodes live across tests), removed at the end.
const made: string[] = []
async function tempDir (label: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `beeldnet-${label}-`))
  made.push(dir)
  return dir
}
afterAll(async () => { for (const dir of made) await rm(dir, { recursive: true, force: true }) })

interface Served { store: StudyStore, app: FastifyInstance, url: string, client: DicomwebClient, audit: AuditLog, dataDir: string }

async function serve (dir: string): Promise<Served> {
  const store = new StudyStore({ dir })
  await store.start()
  const audit = new AuditLog(join(dir, 'audit', 'trail.jsonl'))
  await audit.start()
  const app = createHttpServer({ store, logger, audit, users: new UserStore(nodePaths(dir).users) }, { nodeName: 'test', peerId: 'test' })
  const url = await listenOnLoopback(app)
  // A viewer or PACS calls with an API token, as any integration does.
  const client = new api.DICOMwebClient({ url: `${url}/dicomweb`, headers: { authorization: `Bearer ${await tokenFor({ dataDir: dir })}` } })
  const node = { store, app, url, audit, client, dataDir: dir }
  served.set(url, node)
  return node
}

const served = new Map<string, Served>()

/** fetch with a clinician's token of the served node the URL points at. */
async function call (url: string, init?: RequestInit): Promise<Response> {
  const node = [...served.values()].find((s) => url.startsWith(`${s.url}/`))
  if (node === undefined) throw new Error(`no served node at ${url}`)
  return fetchAs(node)(url, init)
}

async function stop (s: Served | undefined): Promise<void> {
  await s?.app.close()
  await s?.audit.stop()
  await s?.store.stop()
}

async function importStudy (store: StudyStore, study: GeneratedStudy): Promise<void> {
  const session = store.beginImport()
  for (const instance of study.instances) await session.add(instance.path)
  await session.commit()
}

const bytesOf = (b: ArrayBuffer | Uint8Array): Buffer => Buffer.from(b instanceof Uint8Array ? b : new Uint8Array(b))
const value = (attrs: Record<string, { Value?: unknown[] }>, tag: string): unknown => attrs[tag]?.Value?.[0]

/** A multipart/related body of the given parts (raw HTTP, to send what no client library would). */
function multipart (boundary: string, parts: Array<{ type: string, body: Buffer }>, close = true): Buffer {
  const chunks: Buffer[] = []
  for (const p of parts) chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${p.type}\r\n\r\n`), p.body, Buffer.from('\r\n'))
  if (close) chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return Buffer.concat(chunks)
}

async function stow (url: string, body: Buffer, contentType: string, path = '/dicomweb/studies'): Promise<{ status: number, json: Record<string, { Value?: Array<Record<string, { Value?: unknown[] }>> }>, warning: string | null }> {
  const res = await call(`${url}${path}`, { method: 'POST', headers: { 'content-type': contentType, accept: 'application/dicom+json' }, body })
  return { status: res.status, json: await res.json() as never, warning: res.headers.get('warning') }
}

describe('DICOMweb on the node', () => {
  let source: Served | undefined
  let ct: GeneratedStudy
  let mr: GeneratedStudy

  beforeAll(async () => {
    const dir = await tempDir('dicomweb')
    ct = await generateStudy(join(dir, 'ct'), {
      seed: 71,
      patient: { name: 'Jansen^Piet', id: '7000001' },
      studyDate: '20260310',
      accession: 'ACC71',
      series: [
        { modality: 'CT', instances: 3, rows: 64, columns: 64 },
        { modality: 'CT', instances: 1, rows: 32, columns: 32, frames: 4 }
      ],
      reports: { sr: true, pdf: true }
    })
    // An old modality's bare dataset (no preamble, no File Meta): it must still leave as a Part 10 file.
    mr = await generateStudy(join(dir, 'mr'), {
      seed: 72,
      patient: { name: 'de Vries^Anna', id: '7000002' },
      studyDate: '20250105',
      series: [{ modality: 'MR', instances: 2, rows: 32, columns: 32, part10: false }]
    })
    source = await serve(join(dir, 'node'))
    await importStudy(source.store, ct)
    await importStudy(source.store, mr)
  })

  afterAll(async () => { await stop(source) })

  describe('QIDO-RS', () => {
    it('finds studies with DICOM matching: wildcards on names, date ranges, modalities, UID lists', async () => {
      const client = source!.client
      const all = await client.searchForStudies()
      expect(all.map((s) => value(s, '0020000D')).sort()).toEqual([ct.studyInstanceUID, mr.studyInstanceUID].sort())

      const jansen = await client.searchForStudies({ queryParams: { PatientName: 'jansen*' } })
      expect(jansen).toHaveLength(1)
      expect(value(jansen[0]!, '00100010')).toEqual({ Alphabetic: 'Jansen^Piet' })
      expect(value(jansen[0]!, '00100020')).toBe('7000001')
      expect(value(jansen[0]!, '00080050')).toBe('ACC71')
      expect(value(jansen[0]!, '00201208')).toBe(ct.instances.length)
      expect(value(jansen[0]!, '00081190')).toBe(`${source!.url}/dicomweb/studies/${ct.studyInstanceUID}`)

      expect((await client.searchForStudies({ queryParams: { StudyDate: '20260101-20261231' } })).map((s) => value(s, '0020000D'))).toEqual([ct.studyInstanceUID])
      expect((await client.searchForStudies({ queryParams: { StudyDate: '-20251231' } })).map((s) => value(s, '0020000D'))).toEqual([mr.studyInstanceUID])
      expect((await client.searchForStudies({ queryParams: { ModalitiesInStudy: 'MR' } })).map((s) => value(s, '0020000D'))).toEqual([mr.studyInstanceUID])
      expect(await client.searchForStudies({ queryParams: { '00100020': '7000002' } })).toHaveLength(1)
      expect(await client.searchForStudies({ queryParams: { StudyInstanceUID: `${ct.studyInstanceUID},${mr.studyInstanceUID}` } })).toHaveLength(2)
      expect(await client.searchForStudies({ queryParams: { PatientName: 'Jansen' } })).toHaveLength(0)
      expect(await client.searchForStudies({ queryParams: { PatientName: 'J?nsen^Piet' } })).toHaveLength(1)
    })

    it('pages with limit and offset', async () => {
      const first = await source!.client.searchForStudies({ queryParams: { limit: '1' } })
      const second = await source!.client.searchForStudies({ queryParams: { limit: '1', offset: '1' } })
      expect(first).toHaveLength(1)
      expect(second).toHaveLength(1)
      expect(value(first[0]!, '0020000D')).not.toBe(value(second[0]!, '0020000D'))
      const res = await call(`${source!.url}/dicomweb/studies?offset=2`)
      expect(res.status).toBe(200)
      expect(await res.json()).toEqual([])
    })

    it('lists series and instances of a study, and instances across studies by UID', async () => {
      const series = await source!.client.searchForSeries({ studyInstanceUID: ct.studyInstanceUID })
      const modalities = series.map((s) => value(s, '00080060')).sort()
      expect(modalities).toEqual(['CT', 'CT', 'DOC', 'SR'])
      const sop = ct.instances[0]!.sopInstanceUID
      const res = await call(`${source!.url}/dicomweb/instances?SOPInstanceUID=${sop}`)
      const found = await res.json() as Array<Record<string, { Value?: unknown[] }>>
      expect(found).toHaveLength(1)
      expect(value(found[0]!, '00080018')).toBe(sop)
      expect(value(found[0]!, '0020000D')).toBe(ct.studyInstanceUID)
      const mrInstances = await (await call(`${source!.url}/dicomweb/studies/${mr.studyInstanceUID}/instances`)).json() as unknown[]
      expect(mrInstances).toHaveLength(2)
    })

    it('refuses unknown keys and malformed values with a reason; ignores unindexed attributes with a warning', async () => {
      const unknown = await call(`${source!.url}/dicomweb/studies?PatientNmae=x`)
      expect(unknown.status).toBe(400)
      expect(await unknown.json()).toMatchObject({ code: 'BEELDNET_ERR_QUERY_KEY', message: expect.stringContaining('PatientNmae') })
      const badDate = await call(`${source!.url}/dicomweb/studies?StudyDate=2026`)
      expect(badDate.status).toBe(400)
      expect((await badDate.json() as { code: string }).code).toBe('BEELDNET_ERR_QUERY_KEY')
      const unindexed = await call(`${source!.url}/dicomweb/studies?InstitutionName=Isala`)
      expect(unindexed.status).toBe(200)
      expect(unindexed.headers.get('warning')).toContain('InstitutionName')
      expect(await unindexed.json()).toHaveLength(2)
      const include = await call(`${source!.url}/dicomweb/studies?includefield=StudyDescription,00081030&includefield=OperatorsName`)
      expect(include.status).toBe(200)
      expect(include.headers.get('warning')).toMatch(/not study-level.*OperatorsName/)
      expect(include.headers.get('warning')).not.toContain('StudyDescription')
      const badInclude = await call(`${source!.url}/dicomweb/studies?includefield=NoSuchThing`)
      expect(badInclude.status).toBe(400)
    })
  })

  describe('WADO-RS', () => {
    it('returns every instance of a study byte for byte, reports included', async () => {
      const parts = await source!.client.retrieveStudy({ studyInstanceUID: ct.studyInstanceUID })
      expect(parts).toHaveLength(ct.instances.length)
      const originals = new Set(await Promise.all(ct.instances.map(async (i) => (await readFile(i.path)).toString('base64'))))
      for (const part of parts) expect(originals.has(bytesOf(part).toString('base64'))).toBe(true)
    })

    it('frames the answer as multipart/related: a boundary, a Content-Type per part, a closing delimiter', async () => {
      const instance = ct.instances[0]!
      const res = await call(`${source!.url}/dicomweb/studies/${ct.studyInstanceUID}/series/${instance.seriesInstanceUID}/instances/${instance.sopInstanceUID}`)
      const type = res.headers.get('content-type')!
      expect(type).toMatch(/^multipart\/related; type="application\/dicom"; boundary=\S+$/)
      const boundary = /boundary=(\S+)/.exec(type)![1]!
      const body = Buffer.from(await res.arrayBuffer())
      const file = await readFile(instance.path)
      const head = `--${boundary}\r\nContent-Type: application/dicom; transfer-syntax=${instance.transferSyntaxUID}\r\nContent-Length: ${file.length}\r\n`
      expect(body.subarray(0, head.length).toString('latin1')).toBe(head)
      const start = body.indexOf('\r\n\r\n') + 4
      expect(body.subarray(start, start + file.length).equals(file)).toBe(true)
      expect(body.subarray(start + file.length).toString('latin1')).toBe(`\r\n--${boundary}--\r\n`)
    })

    it('sends an instance stored without File Meta as a Part 10 file: around the same dataset as stored (transfer-syntax=*), in Explicit VR Little Endian by default', async () => {
      const original = mr.instances[0]!
      const path = `${source!.url}/dicomweb/studies/${mr.studyInstanceUID}/series/${original.seriesInstanceUID}/instances/${original.sopInstanceUID}`
      const res = await call(path, { headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } })
      expect(res.status).toBe(200)
      const body = Buffer.from(await res.arrayBuffer())
      const dataset = await readFile(original.path)
      const end = body.indexOf(dataset) + dataset.length
      const part = body.subarray(body.indexOf('DICM') - 128, end)
      expect(end).toBeGreaterThan(dataset.length)
      expect(part.subarray(part.length - dataset.length).equals(dataset)).toBe(true)
      const file = join(await tempDir('wado'), 'mr.dcm')
      await writeFile(file, part)
      const header = readHeader(file)
      expect(header.transferSyntaxUID).toBe(original.transferSyntaxUID)
      expect(header.meta?.get(0x00020003)?.value?.toString('latin1').replace(/\0$/, '')).toBe(original.sopInstanceUID)

      // dicomweb-client names no transfer-syntax: PS3.18's default, re-encoded where the stored one differs
      const byDefault = join(await tempDir('wado'), 'mr-default.dcm')
      await writeFile(byDefault, bytesOf(await source!.client.retrieveInstance({ studyInstanceUID: mr.studyInstanceUID, seriesInstanceUID: original.seriesInstanceUID, sopInstanceUID: original.sopInstanceUID })))
      const reencoded = readHeader(byDefault)
      expect(reencoded.transferSyntaxUID).toBe('1.2.840.10008.1.2.1')
      expect(reencoded.meta?.get(0x00020003)?.value?.toString('latin1').replace(/\0$/, '')).toBe(original.sopInstanceUID)
    })

    it('gives metadata as DICOM JSON with pixel data as bulk data, and the bulk data and frames as stored', async () => {
      const client = source!.client
      const metadata = await client.retrieveStudyMetadata({ studyInstanceUID: ct.studyInstanceUID })
      expect(metadata).toHaveLength(ct.instances.length)
      const multiFrame = metadata.find((m) => value(m, '00280008') === 4)!
      expect(value(multiFrame, '00100010')).toEqual({ Alphabetic: 'Jansen^Piet' })
      expect(value(multiFrame, '00280010')).toBe(32)
      const uri = multiFrame['7FE00010']!.BulkDataURI!
      expect(uri).toMatch(/\/bulkdata\/7FE00010$/)

      const sop = value(multiFrame, '00080018') as string
      const file = ct.instances.find((i) => i.sopInstanceUID === sop)!
      const parsed = readHeader(file.path)
      const bytes = await readFile(file.path)
      const pixels = bytes.subarray(parsed.pixelDataOffset!, parsed.pixelDataOffset! + parsed.pixelDataLength!)
      const [bulk] = await client.retrieveBulkData({ BulkDataURI: uri })
      expect(bytesOf(bulk!).equals(pixels)).toBe(true)

      const frameBytes = pixels.length / 4
      const frames = await client.retrieveInstanceFrames({ studyInstanceUID: ct.studyInstanceUID, seriesInstanceUID: file.seriesInstanceUID, sopInstanceUID: sop, frameNumbers: [2, 4] })
      expect(frames.map((f) => bytesOf(f))).toEqual([pixels.subarray(frameBytes, 2 * frameBytes), pixels.subarray(3 * frameBytes)].map((b) => Buffer.from(b)))
      // Pixel data handed out is a view of the patient's images. A viewer reads a study request by
      // request, and the trail records the study opened (once per caller per study per 30 minutes,
      // view-records.ts), not each read: the metadata's record stands for the bulk data and frames after it.
      const trail = (await readFile(source!.audit.path, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { event: string, outcome: string, studyInstanceUID?: string })
      const views = trail.filter((r) => r.event === 'view' && r.studyInstanceUID === ct.studyInstanceUID).map((r) => r.outcome)
      expect(views.filter((o) => !/^\d+ instances$/.test(o))).toEqual([`metadata of ${ct.instances.length} instances`])
      expect(trail.at(-1)).toMatchObject({ event: 'view', outcome: `metadata of ${ct.instances.length} instances` })
    })

    it('answers 404, 406 and 400 with a code for what it does not hold or cannot send', async () => {
      const base = `${source!.url}/dicomweb`
      const missing = await call(`${base}/studies/1.2.3.999`)
      expect(missing.status).toBe(404)
      expect((await missing.json() as { code: string }).code).toBe('BEELDNET_ERR_NOT_FOUND')
      const transcode = await call(`${base}/studies/${ct.studyInstanceUID}`, { headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50' } })
      expect(transcode.status).toBe(406)
      expect((await transcode.json() as { code: string }).code).toBe('BEELDNET_ERR_NOT_ACCEPTABLE')
      const badUid = await call(`${base}/studies/not-a-uid/metadata`)
      expect(badUid.status).toBe(400)
      const noFrame = await call(`${base}/studies/${ct.studyInstanceUID}/series/${ct.instances[0]!.seriesInstanceUID}/instances/${ct.instances[0]!.sopInstanceUID}/frames/9`)
      expect(noFrame.status).toBe(404)
    })
  })

  describe('STOW-RS', () => {
    let target: Served | undefined
    beforeAll(async () => { target = await serve(await tempDir('stow-node')) })
    afterAll(async () => { await stop(target) })

    it('stores a study sent by dicomweb-client, and gives the same bytes back', async () => {
      const datasets = await Promise.all(ct.instances.map(async (i) => { const b = await readFile(i.path); return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) }))
      await target!.client.storeInstances({ datasets })
      const [study] = await target!.client.searchForStudies({ queryParams: { StudyInstanceUID: ct.studyInstanceUID } })
      expect(value(study!, '00201208')).toBe(ct.instances.length)
      const back = await target!.client.retrieveStudy({ studyInstanceUID: ct.studyInstanceUID })
      const sent = new Set(datasets.map((d) => bytesOf(d).toString('base64')))
      expect(back.every((b) => sent.has(bytesOf(b).toString('base64')))).toBe(true)
      // Storing, searching and retrieving are accesses to the patient's data: each is in the trail.
      const trail = (await readFile(target!.audit.path, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { event: string, studyInstanceUID?: string, user: { system?: string } })
      const events = trail.filter((r) => r.studyInstanceUID === ct.studyInstanceUID).map((r) => r.event)
      expect(events).toEqual(['store-received', 'query', 'view'])
      expect(trail[0]!.user.system).toMatch(/^API token [0-9a-f]{12} \(test clinician\)$/)
    })

    it('answers per instance: a non-DICOM part and an unreadable one fail with reasons, the good one is stored', async () => {
      const good = await readFile(mr.instances[0]!.path)
      const body = multipart('b1', [
        { type: 'application/dicom', body: good },
        { type: 'text/plain', body: Buffer.from('not an image') },
        { type: 'application/dicom', body: Buffer.from('DICM but not really'.repeat(20)) }
      ])
      const res = await stow(target!.url, body, 'multipart/related; type="application/dicom"; boundary=b1')
      expect(res.status).toBe(202)
      const failed = res.json['00081198']!.Value!
      expect(failed.map((f) => f['00081197']!.Value![0])).toEqual([0xC000, 0xC000])
      const stored = res.json['00081199']!.Value!
      expect(stored.map((s) => s['00081155']!.Value![0])).toEqual([mr.instances[0]!.sopInstanceUID])
      expect(res.warning).toContain('BEELDNET_ERR_NOT_DICOM')
    })

    it('refuses an instance of another study than the URL names, and another image under a stored SOP Instance UID', async () => {
      const other = await readFile(mr.instances[1]!.path)
      const mismatch = await stow(target!.url, multipart('b2', [{ type: 'application/dicom', body: other }]), 'multipart/related; type="application/dicom"; boundary=b2', `/dicomweb/studies/${ct.studyInstanceUID}`)
      expect(mismatch.status).toBe(409)
      expect(mismatch.json['00081198']!.Value![0]!['00081197']!.Value![0]).toBe(0xA900)

      // Same SOP Instance UID as a stored CT instance, other rows: another image, refused (store.duplicates: keep).
      const original = await readFile(ct.instances[0]!.path)
      const changed = Buffer.from(original)
      const rows = changed.indexOf(Buffer.from([0x28, 0x00, 0x10, 0x00, 0x55, 0x53, 0x02, 0x00]))
      changed.writeUInt16LE(changed.readUInt16LE(rows + 8) + 1, rows + 8)
      const conflict = await stow(target!.url, multipart('b3', [{ type: 'application/dicom', body: changed }]), 'multipart/related; type="application/dicom"; boundary=b3')
      expect(conflict.status).toBe(409)
      expect(conflict.json['00081198']!.Value![0]!['00081197']!.Value![0]).toBe(0xC000)
      expect(conflict.warning).toContain('BEELDNET_ERR_INSTANCE_CONFLICT')
      const kept = await target!.client.retrieveInstance({ studyInstanceUID: ct.studyInstanceUID, seriesInstanceUID: ct.instances[0]!.seriesInstanceUID, sopInstanceUID: ct.instances[0]!.sopInstanceUID })
      expect(bytesOf(kept).equals(original)).toBe(true)
    })

    it('commits nothing from a body that breaks off or is not multipart, and says why', async () => {
      const before = await target!.store.diskUsage()
      const fresh = await readFile(mr.instances[1]!.path)
      const truncated = multipart('b4', [{ type: 'application/dicom', body: fresh }], false)
      const broken = await stow(target!.url, truncated, 'multipart/related; type="application/dicom"; boundary=b4')
      expect(broken.status).toBe(400)
      expect(broken.json).toMatchObject({ code: 'BEELDNET_ERR_MULTIPART' })
      const noBoundary = await stow(target!.url, fresh, 'multipart/related; type="application/dicom"')
      expect(noBoundary.status).toBe(400)
      expect(noBoundary.json).toMatchObject({ code: 'BEELDNET_ERR_MULTIPART' })
      const notMultipart = await stow(target!.url, fresh, 'application/dicom')
      expect(notMultipart.status).toBe(415)
      expect(notMultipart.json).toMatchObject({ code: 'BEELDNET_ERR_MEDIA_TYPE' })
      const after = await target!.store.diskUsage()
      expect(after.instances).toBe(before.instances)
      const res = await call(`${target!.url}/dicomweb/instances?SOPInstanceUID=${mr.instances[1]!.sopInstanceUID}`)
      expect(await res.json()).toEqual([])
    })
  })
})
