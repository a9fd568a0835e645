import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inflateRawSync } from 'node:zlib'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { AuditLog } from '../../../node/audit/audit-log.ts'
import { createDimseService, type DimseService } from '../../../node/dimse/dimse-service.ts'
import { readHeader } from '../../../node/dicom/dataset-reader.ts'
import { nodePaths } from '../../../node/paths.ts'
import type { StudyEntries } from '../../../node/store/study-index.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { fetchAs } from '../../helpers/api-caller.ts'
import { dcmtk } from '../../helpers/dcmtk.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'

/*
 * Deflated Explicit VR Little Endian by every route in: import, C-STORE (storescu -xd) and STOW-RS,
 * each indexed as its uncompressed original is, stored as received, and served back as stored
 * (WADO-RS, C-GET) in a form dcmtk reads.
 */

const DEFLATED = '1.2.840.10008.1.2.1.99'
const logger = pino({ level: 'silent' })

/** What the index says of a study, without what differs by encoding (sizes, hashes, syntax) or time. */
function indexed (entries: StudyEntries): unknown {
  const { size: _s, receivedAt: _r, updatedAt: _u, ...study } = entries.study
  return {
    study,
    series: entries.series.map(({ size: _z, ...s }) => s),
    instances: entries.instances.map(({ sha256: _h, size: _z, transferSyntaxUID: _t, part10: _p, ...i }) => i).sort((a, b) => a.sopInstanceUID.localeCompare(b.sopInstanceUID))
  }
}

/** Everything after the File Meta: the deflate stream itself. */
function datasetOf (file: Buffer): Buffer {
  return file.subarray(144 + file.readUInt32LE(140))
}

describe('deflated instances through the node', () => {
  let work: string
  let store: StudyStore
  let reference: StudyStore
  let audit: AuditLog
  let app: FastifyInstance
  let url: string
  let dimse: DimseService
  const studies: Record<'imported' | 'stored' | 'stowed', { study: GeneratedStudy, deflated: string[] }> = {} as never

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'beeldnet-deflated-'))
    let seed = 140
    for (const route of ['imported', 'stored', 'stowed'] as const) {
      const study = await generateStudy(join(work, route), {
        seed: seed++,
        patient: { name: 'de Vries^Anna', id: `P${seed}`, issuer: 'HOSP', birthDate: '19710203', sex: 'F' },
        accession: `ACC${seed}`,
        description: 'CT abdomen',
        reports: { sr: true, pdf: true },
        series: [{ modality: 'CT', instances: 2, rows: 96, columns: 96 }]
      })
      const deflated: string[] = []
      for (const instance of study.instances) {
        const out = `${instance.path}.deflated`
        expect((await dcmtk('dcmconv', ['+td', instance.path, out])).code).toBe(0)
        deflated.push(out)
      }
      studies[route] = { study, deflated }
    }
    // The uncompressed originals, indexed by a store of their own: what the deflated ones must index as.
    reference = new StudyStore({ dir: join(work, 'reference') })
    await reference.start()
    const session = reference.beginImport()
    for (const { study } of Object.values(studies)) for (const i of study.instances) await session.add(i.path)
    await session.commit()

    const dir = join(work, 'node')
    store = new StudyStore({ dir })
    await store.start()
    audit = new AuditLog(join(dir, 'audit', 'trail.jsonl'))
    await audit.start()
    app = createHttpServer({ store, logger, audit, users: new UserStore(nodePaths(dir).users) }, { nodeName: 'test', peerId: 'test' })
    url = await listenOnLoopback(app)
    dimse = createDimseService({ store, logger, audit }, {
      enabled: true, host: '127.0.0.1', port: 0, aeTitle: 'BEELDNET', acceptCalling: ['MODALITY'], destinations: []
    })
    await dimse.start()
  })

  afterAll(async () => {
    await dimse?.stop()
    await app?.close()
    await audit?.stop()
    await store?.stop()
    await reference?.stop()
    await rm(work, { recursive: true, force: true })
  })

  async function expectIndexedAsOriginal (study: GeneratedStudy): Promise<StudyEntries> {
    const entries = await store.getStudy(study.studyInstanceUID)
    expect(entries.instances.map((i) => i.transferSyntaxUID)).toEqual(study.instances.map(() => DEFLATED))
    expect(indexed(entries)).toEqual(indexed(await reference.getStudy(study.studyInstanceUID)))
    return entries
  }

  it('imports deflated files, indexed as the originals and stored byte for byte', async () => {
    const { study, deflated } = studies.imported
    const session = store.beginImport()
    for (const path of deflated) await session.add(path)
    const [result] = await session.commit()
    expect(result?.rejected ?? []).toEqual([])
    const entries = await expectIndexedAsOriginal(study)
    for (const path of deflated) {
      const sop = readHeader(path).dataset
      const record = entries.instances.find((i) => (sop.get(0x00080018)?.value?.toString('latin1') ?? '').startsWith(i.sopInstanceUID))!
      expect((await readFile(store.blobs.pathOf(record.sha256))).equals(await readFile(path))).toBe(true)
    }
  })

  it('takes deflated instances by C-STORE in deflate (storescu -xd) and stores the deflate stream as sent', async () => {
    const { study, deflated } = studies.stored
    const sent = await dcmtk('storescu', ['-xd', '-aet', 'MODALITY', '-aec', 'BEELDNET', '127.0.0.1', String(dimse.port), ...deflated])
    expect(sent.code, sent.stderr).toBe(0)
    const entries = await expectIndexedAsOriginal(study)
    for (const record of entries.instances) {
      const stored = await readFile(store.blobs.pathOf(record.sha256))
      expect(readHeader(store.blobs.pathOf(record.sha256)).deflated).toBe(true)
      const source = deflated[study.instances.findIndex((i) => i.sopInstanceUID === record.sopInstanceUID)]!
      // storescu deflates again as it sends, with its own settings: the stream stored is the one sent,
      // which inflates to what dcmconv deflated
      expect(inflateRawSync(datasetOf(stored)).equals(inflateRawSync(datasetOf(await readFile(source))))).toBe(true)
    }
  })

  it('takes deflated instances by STOW-RS and serves them back by WADO-RS as stored, readable by dcmdump', async () => {
    const { study, deflated } = studies.stowed
    const boundary = 'deflated-boundary'
    const parts: Buffer[] = []
    for (const path of deflated) parts.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), await readFile(path), Buffer.from('\r\n'))
    parts.push(Buffer.from(`--${boundary}--\r\n`))
    const fetcher = fetchAs({ dataDir: join(work, 'node') })
    const res = await fetcher(`${url}/dicomweb/studies`, {
      method: 'POST',
      headers: { 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, accept: 'application/dicom+json' },
      body: Buffer.concat(parts)
    })
    expect(res.status).toBe(200)
    const entries = await expectIndexedAsOriginal(study)

    const out = join(work, 'wado')
    await mkdir(out)
    for (const [n, record] of entries.instances.entries()) {
      const source = deflated[study.instances.findIndex((i) => i.sopInstanceUID === record.sopInstanceUID)]!
      const wado = await fetcher(`${url}/dicomweb/studies/${record.studyInstanceUID}/series/${record.seriesInstanceUID}/instances/${record.sopInstanceUID}`, {
        headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' }
      })
      expect(wado.status).toBe(200)
      const body = Buffer.from(await wado.arrayBuffer())
      const file = await readFile(source)
      const at = body.indexOf(file.subarray(0, 132 + 64))
      expect(at).toBeGreaterThan(-1)
      expect(body.subarray(at, at + file.length).equals(file)).toBe(true)
      const served = join(out, `${n}.dcm`)
      await writeFile(served, body.subarray(at, at + file.length))
      const dump = await dcmtk('dcmdump', [served])
      expect(dump.code, dump.stderr).toBe(0)
      expect(dump.stdout).toContain('=DeflatedLittleEndianExplicit')
      expect(dump.stdout).toContain('[de Vries^Anna]')
    }
  })

  it('serves the metadata, the pixel data and the frames of a deflated instance inflated', async () => {
    const { study } = studies.stowed
    const fetcher = fetchAs({ dataDir: join(work, 'node') })
    const image = study.instances.find((i) => !i.isReport)!
    const base = `${url}/dicomweb/studies/${study.studyInstanceUID}/series/${image.seriesInstanceUID}/instances/${image.sopInstanceUID}`
    const metadata = await (await fetcher(`${base}/metadata`, { headers: { accept: 'application/dicom+json' } })).json() as Array<Record<string, { Value?: unknown[], BulkDataURI?: string }>>
    expect(metadata[0]?.['00100010']?.Value?.[0]).toEqual({ Alphabetic: 'de Vries^Anna' })
    const original = readHeader(image.path)
    const pixels = (await readFile(image.path)).subarray(original.pixelDataOffset!, original.pixelDataOffset! + original.pixelDataLength!)
    const bulk = await fetcher(metadata[0]!['7FE00010']!.BulkDataURI!, { headers: { accept: 'multipart/related; type="application/octet-stream"' } })
    expect(bulk.status).toBe(200)
    const bulkBody = Buffer.from(await bulk.arrayBuffer())
    expect(bulkBody.indexOf(pixels)).toBeGreaterThan(-1)
    const frame = await fetcher(`${base}/frames/1`, { headers: { accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=*' } })
    expect(frame.status).toBe(200)
    expect(Buffer.from(await frame.arrayBuffer()).indexOf(pixels)).toBeGreaterThan(-1)
  })

  it('finds deflated studies by QIDO-RS and C-FIND on their inflated header', async () => {
    const fetcher = fetchAs({ dataDir: join(work, 'node') })
    const qido = await (await fetcher(`${url}/dicomweb/studies?PatientName=de%20Vries*`, { headers: { accept: 'application/dicom+json' } })).json() as Array<Record<string, { Value?: unknown[] }>>
    const found = new Set(qido.map((s) => s['0020000D']?.Value?.[0]))
    for (const { study } of Object.values(studies)) expect(found.has(study.studyInstanceUID)).toBe(true)
    const cfind = await dcmtk('findscu', ['-S', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-k', 'QueryRetrieveLevel=STUDY', '-k', `AccessionNumber=${studies.stored.study.accession}`,
      '-k', 'StudyInstanceUID', '127.0.0.1', String(dimse.port)])
    expect(cfind.code).toBe(0)
    expect(cfind.stderr + cfind.stdout).toContain(studies.stored.study.studyInstanceUID)
  })

  it('sends deflated instances back by C-GET in deflate to a caller that accepts it', async () => {
    const { study, deflated } = studies.imported
    const out = join(work, 'get')
    await mkdir(out)
    const got = await dcmtk('getscu', ['-v', '+xd', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-od', out, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study.studyInstanceUID}`,
      '127.0.0.1', String(dimse.port)])
    expect(got.code, got.stderr).toBe(0)
    const files = await readdir(out)
    expect(files.length).toBe(deflated.length)
    for (const name of files) {
      const parsed = readHeader(join(out, name))
      expect(parsed.transferSyntaxUID).toBe(DEFLATED)
      expect((await dcmtk('dcmdump', [join(out, name)])).code).toBe(0)
    }
  })
})
