import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { mediumFileName } from '../../../node/api/media-routes.ts'
import { AuditLog, trailRecords, type AuditRecord } from '../../../node/audit/audit-log.ts'
import { importFiles } from '../../../node/dicom/file-import.ts'
import { nodePaths } from '../../../node/paths.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { fetchAs } from '../../helpers/api-caller.ts'
import { dcmtk } from '../../helpers/dcmtk.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'
import { dcmmkdirUpdate, dumpDicomdir, importMedium, leaves } from '../../helpers/pdi-medium.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

/*
 * GET /api/studies/:uid/media.zip over real HTTP from a real store: a clinician's download of a
 * study as a PDI medium, unzipped and read back by dcmtk and the node's own import; IT may not; the
 * trail has the export.
 */

const tempDir = useTempDirs()

describe('the PDI medium download', () => {
  let dataDir: string
  let store: StudyStore
  let audit: AuditLog
  let app: FastifyInstance
  let url: string
  let study: GeneratedStudy

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'beeldnet-media-'))
    store = new StudyStore({ dir: dataDir })
    await store.start()
    audit = new AuditLog(nodePaths(dataDir).auditTrail)
    await audit.start()
    app = createHttpServer({ store, logger: pino({ level: 'silent' }), audit, users: new UserStore(nodePaths(dataDir).users) }, { nodeName: 'test', peerId: 'test' })
    url = await listenOnLoopback(app)
    study = await generateStudy(join(dataDir, 'generated'), {
      seed: 311, accession: 'ACC/2026 "7"',
      series: [{ modality: 'CT', instances: 2, rows: 16, columns: 16 }, { modality: 'CT', instances: 1, rows: 16, columns: 16 }],
      reports: { sr: true, pdf: true }
    })
    expect((await importFiles([join(dataDir, 'generated')], { store })).rejected).toEqual([])
  })

  afterAll(async () => {
    await app?.close()
    await audit?.stop()
    await store?.stop()
    await rm(dataDir, { recursive: true, force: true })
  })

  it('gives a clinician the study as a PDI medium in a ZIP, audited as an export', async () => {
    const res = await fetchAs({ dataDir }, 'clinician')(`${url}/api/studies/${study.studyInstanceUID}/media.zip`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/zip')
    const body = Buffer.from(await res.arrayBuffer())
    expect(Number(res.headers.get('content-length'))).toBe(body.length)
    const disposition = res.headers.get('content-disposition')!
    expect(disposition).toMatch(/^attachment; filename="PDI-[0-9]{8}-ACC20267\.zip"$/)

    const dir = await tempDir('media-zip')
    await writeFile(join(dir, 'medium.zip'), body)
    const unzipped = await dcmtk('unzip', ['-q', join(dir, 'medium.zip'), '-d', join(dir, 'medium')])
    expect(unzipped.code, unzipped.stderr).toBe(0)
    const dumped = await dumpDicomdir(join(dir, 'medium', 'DICOMDIR'))
    expect(leaves(dumped.tree).map((l) => l.replace(/ DICOM\\.*$/, ''))).toEqual([
      'PATIENT/STUDY/SERIES/IMAGE', 'PATIENT/STUDY/SERIES/IMAGE', 'PATIENT/STUDY/SERIES/IMAGE',
      'PATIENT/STUDY/SERIES/SR DOCUMENT', 'PATIENT/STUDY/SERIES/ENCAP DOC'
    ])
    expect((await dcmmkdirUpdate(join(dir, 'medium'))).complaints).toEqual([])
    const { summary, sha256 } = await importMedium(join(dir, 'medium'))
    expect(summary).toMatchObject({ stored: 5, rejected: [], warnings: [] })
    expect(Object.fromEntries(sha256)).toEqual(Object.fromEntries((await store.getStudy(study.studyInstanceUID)).instances.map((i) => [i.sopInstanceUID, i.sha256])))

    const exports: AuditRecord[] = []
    for await (const r of trailRecords(nodePaths(dataDir).auditTrail)) if (r.event === 'export') exports.push(r)
    expect(exports).toEqual([expect.objectContaining({
      studyInstanceUID: study.studyInstanceUID,
      outcome: 'PDI medium (ZIP) of 5 instance(s)',
      patient: expect.objectContaining({ id: study.patient.id }),
      user: { system: expect.stringMatching(/^API token/) },
      details: { path: `/api/studies/${study.studyInstanceUID}/media.zip` }
    })])
  })

  it('refuses IT (403), an unknown study (404) and a UID that is not one (400)', async () => {
    const it_ = await fetchAs({ dataDir }, 'it-admin')(`${url}/api/studies/${study.studyInstanceUID}/media.zip`)
    expect(it_.status).toBe(403)
    expect(await it_.json()).toMatchObject({ code: 'BEELDNET_ERR_FORBIDDEN' })
    const clinician = fetchAs({ dataDir }, 'clinician')
    const unknown = await clinician(`${url}/api/studies/1.2.3.4.5/media.zip`)
    expect(unknown.status).toBe(404)
    expect(await unknown.json()).toMatchObject({ code: 'BEELDNET_ERR_STUDY_NOT_FOUND' })
    const bad = await clinician(`${url}/api/studies/abc/media.zip`)
    expect(bad.status).toBe(400)
    expect((await fetch(`${url}/api/studies/${study.studyInstanceUID}/media.zip`)).status).toBe(401)
  })

  it('names the download by date and accession number, with nothing a header or file system could choke on', () => {
    expect(mediumFileName({ date: '20260301', accessionNumber: 'ÄB\r\n"; x=1', studyInstanceUID: '1.2.3' })).toBe('PDI-20260301-Bx1.zip')
    expect(mediumFileName({ date: '', accessionNumber: '', studyInstanceUID: '2.25.1234567890123456789' })).toBe('PDI-4567890123456789.zip')
  })
})
