import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { AuditLog, type AuditEvent, type AuditRecord } from '../../../node/audit/audit-log.ts'
import { createViewRecords } from '../../../node/audit/view-records.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'

/*
 * A study opened is one 'view' in the NEN 7513 trail, not one per request: on a real node with a
 * real trail, a clinician's viewer reading a study's metadata and 50 frames (and its rendered
 * images, thumbnails, bulk data and details) writes one record; another clinician, another study
 * and the same clinician 30 minutes after their last record each write their own. Searches and
 * report reads are recorded per request, as before.
 */

const MINUTE = 60_000
const SIZE = 16

describe('views of a study in the audit trail', () => {
  let work: string
  let store: StudyStore
  let audit: AuditLog
  let app: FastifyInstance
  let url: string
  let ct: GeneratedStudy
  let other: GeneratedStudy
  let clock = Date.parse('2025-03-01T09:00:00Z')
  const sessions = new Map<string, string>()

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'beeldnet-view-records-'))
    // 10 instances of 5 frames: 50 frames to scroll through, and a report to read.
    ct = await generateStudy(join(work, 'ct'), { seed: 7513, reports: { sr: true }, series: [{ modality: 'CT', instances: 10, rows: SIZE, columns: SIZE, frames: 5 }] })
    other = await generateStudy(join(work, 'other'), { seed: 7514, series: [{ modality: 'MR', instances: 2, rows: SIZE, columns: SIZE }] })
    const dir = join(work, 'node')
    store = new StudyStore({ dir })
    await store.start()
    const session = store.beginImport()
    for (const i of [...ct.instances, ...other.instances]) await session.add(i.path)
    await session.commit()
    audit = new AuditLog(join(dir, 'audit', 'trail.jsonl'))
    await audit.start()
    const users = new UserStore(join(dir, 'users.json'))
    await users.add({ username: 'arts', name: 'dr. A. Jansen', role: 'clinician', uzi: '123456789', roleCode: '01.015' }, 'clinician password')
    await users.add({ username: 'radioloog', name: 'dr. R. Bos', role: 'clinician', uzi: '111222333', roleCode: '01.025' }, 'clinician password')
    app = createHttpServer({ store, logger: pino({ level: 'silent' }), audit, users }, {
      nodeName: 'test', peerId: 'test', thumbnailCacheDir: join(work, 'thumbnails'), views: { now: () => new Date(clock) }
    })
    url = await listenOnLoopback(app)
    for (const username of ['arts', 'radioloog']) {
      const res = await fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: 'clinician password' }) })
      sessions.set(username, (res.headers.get('set-cookie') ?? '').split(';')[0]!)
    }
  })

  afterAll(async () => {
    await app.close()
    await audit.stop()
    await store.stop()
    await rm(work, { recursive: true, force: true })
  })

  /** GET as a logged-in clinician; the body is read, so the request is complete. */
  const get = async (username: string, path: string): Promise<void> => {
    const res = await fetch(`${url}${path}`, { headers: { cookie: sessions.get(username)! } })
    expect(res.status, path).toBe(200)
    await res.arrayBuffer()
  }
  const trail = async (): Promise<AuditRecord[]> => (await readFile(audit.path, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as AuditRecord)
  const views = async (study: GeneratedStudy, name?: string): Promise<AuditRecord[]> =>
    (await trail()).filter((r) => r.event === 'view' && r.studyInstanceUID === study.studyInstanceUID && (name === undefined || r.user.name === name))
  const instancePath = (i: GeneratedStudy['instances'][number]): string => `/dicomweb/studies/${i.studyInstanceUID}/series/${i.seriesInstanceUID}/instances/${i.sopInstanceUID}`
  const images = (study: GeneratedStudy): GeneratedStudy['instances'] => study.instances.filter((i) => !i.isReport)

  it('records a clinician\'s viewer reading the metadata and 50 frames of a study once', async () => {
    const first = `/dicomweb/studies/${ct.studyInstanceUID}/metadata`
    await get('arts', first)
    // A viewer asks for frames several at a time: requests for one pair wait on the record being written.
    const frames = images(ct).flatMap((i) => [1, 2, 3, 4, 5].map((f) => `${instancePath(i)}/frames/${f}`))
    expect(frames).toHaveLength(50)
    for (let k = 0; k < frames.length; k += 10) await Promise.all(frames.slice(k, k + 10).map(async (p) => get('arts', p)))
    const [one] = images(ct)
    await get('arts', `${instancePath(one!)}/bulkdata/7FE00010`)
    await get('arts', `${instancePath(one!)}/frames/2/rendered`)
    await get('arts', `/dicomweb/studies/${ct.studyInstanceUID}/thumbnail`)
    await get('arts', `/api/studies/${ct.studyInstanceUID}`)
    await get('arts', `/api/studies/${ct.studyInstanceUID}/series/${one!.seriesInstanceUID}/thumbnail`)

    const recorded = await views(ct)
    expect(recorded).toHaveLength(1)
    // The record is the one the first request wrote, as every view record was before.
    expect(recorded[0]).toMatchObject({
      event: 'view',
      outcome: `metadata of ${ct.instances.length} instances`,
      patient: { bsn: ct.patient.bsn, id: ct.patient.id, issuer: ct.patient.issuer },
      user: { name: 'dr. A. Jansen', uzi: '123456789', role: '01.015' },
      studyInstanceUID: ct.studyInstanceUID,
      details: { path: first }
    })
  })

  it('records another clinician\'s view of the same study, and another study, each in its own record', async () => {
    await get('radioloog', `${instancePath(images(ct)[3]!)}/frames/1`)
    await get('radioloog', `${instancePath(images(ct)[4]!)}/frames/1`)
    expect(await views(ct, 'dr. R. Bos')).toMatchObject([{ outcome: `frames 1 of ${images(ct)[3]!.sopInstanceUID}`, user: { uzi: '111222333' } }])
    await get('arts', `/dicomweb/studies/${other.studyInstanceUID}/metadata`)
    await get('arts', `${instancePath(images(other)[0]!)}/frames/1`)
    expect(await views(other, 'dr. A. Jansen')).toHaveLength(1)
    expect(await views(ct, 'dr. A. Jansen')).toHaveLength(1)
  })

  it('records the study again once 30 minutes have passed since its last record for that clinician', async () => {
    clock += 29 * MINUTE
    await get('arts', `${instancePath(images(ct)[0]!)}/frames/3`)
    expect(await views(ct, 'dr. A. Jansen')).toHaveLength(1)
    // 31 minutes after the record (the window runs from the last record written, not the last request).
    clock += 2 * MINUTE
    await get('arts', `${instancePath(images(ct)[0]!)}/frames/4`)
    await get('arts', `${instancePath(images(ct)[0]!)}/frames/5`)
    const again = await views(ct, 'dr. A. Jansen')
    expect(again).toHaveLength(2)
    expect(again[1]).toMatchObject({ outcome: `frames 4 of ${images(ct)[0]!.sopInstanceUID}` })
  })

  it('records searches and report reads per request, as before', async () => {
    const before = await trail()
    await get('arts', `/dicomweb/studies?StudyInstanceUID=${ct.studyInstanceUID}`)
    await get('arts', `/dicomweb/studies?StudyInstanceUID=${ct.studyInstanceUID}`)
    await get('arts', `/api/studies/${ct.studyInstanceUID}/reports`)
    await get('arts', `/api/studies/${ct.studyInstanceUID}/reports`)
    const report = ct.instances.find((i) => i.isReport)!
    await get('arts', `/api/studies/${ct.studyInstanceUID}/reports/${report.sopInstanceUID}`)
    const added = (await trail()).slice(before.length).map((r) => `${r.event}: ${r.outcome}`)
    expect(added).toEqual(['query: 1 results', 'query: 1 results', 'view: report list (1)', 'view: report list (1)', `view: report ${report.sopInstanceUID}`])
  })
})

describe('createViewRecords', () => {
  let written: AuditEvent[]
  /** A trail that takes a while to make a record durable, as an fsync does, and can be made to fail. */
  let failNext: boolean
  const sink = {
    record: async (event: AuditEvent): Promise<AuditRecord> => {
      await new Promise((resolve) => setTimeout(resolve, 5))
      if (failNext) { failNext = false; throw new Error('disk full') }
      written.push(event)
      return { ...event, seq: written.length, time: '', prev: '', hash: '' }
    }
  }
  const request = (name: string | undefined): Parameters<ReturnType<typeof createViewRecords>['viewed']>[0] =>
    ({ ip: '10.0.0.1', url: '/dicomweb/studies/1.2.3/metadata?x=1', ...(name === undefined ? {} : { caller: { kind: 'session', name, person: { name } } }) })
  const study = async (): Promise<{ patient: { id: string, issuer: string, name: string } }> => ({ patient: { id: 'P1', issuer: 'BEELDNET', name: 'Jansen^Piet' } })

  beforeEach(() => { written = []; failNext = false })

  it('writes one record for requests that arrive together, and none of them returns before it is written', async () => {
    const views = createViewRecords({ audit: sink })
    const done: number[] = []
    await Promise.all(Array.from({ length: 20 }, async (_, k) => { await views.viewed(request('arts'), 'DICOMweb', `frames ${k}`, '1.2.3', study); done.push(written.length) }))
    expect(written).toHaveLength(1)
    expect(done.every((n) => n === 1)).toBe(true)
    expect(written[0]).toMatchObject({ event: 'view', outcome: 'frames 0', studyInstanceUID: '1.2.3', user: { name: 'arts' }, details: { path: '/dicomweb/studies/1.2.3/metadata' } })
  })

  it('writes the record again when the write failed, and for a caller it cannot name every time', async () => {
    const views = createViewRecords({ audit: sink })
    failNext = true
    await expect(views.viewed(request('arts'), 'DICOMweb', 'frames 1', '1.2.3', study)).rejects.toThrow('disk full')
    await views.viewed(request('arts'), 'DICOMweb', 'frames 2', '1.2.3', study)
    await views.viewed(request('arts'), 'DICOMweb', 'frames 3', '1.2.3', study)
    expect(written.map((e) => e.outcome)).toEqual(['frames 2'])
    await views.viewed(request(undefined), 'DICOMweb', 'frames 4', '1.2.3', study)
    await views.viewed(request(undefined), 'DICOMweb', 'frames 5', '1.2.3', study)
    expect(written.map((e) => e.outcome)).toEqual(['frames 2', 'frames 4', 'frames 5'])
  })

  it('keeps at most maxPairs pairs: the oldest forgotten is recorded again', async () => {
    const views = createViewRecords({ audit: sink }, { maxPairs: 2 })
    for (const uid of ['1.1', '1.2', '1.3', '1.2', '1.3', '1.1']) await views.viewed(request('arts'), 'DICOMweb', uid, uid, study)
    // 1.1 was forgotten when 1.3 came; 1.2 and 1.3 were still remembered.
    expect(written.map((e) => e.outcome)).toEqual(['1.1', '1.2', '1.3', '1.1'])
  })

  it('records nothing without a trail', async () => {
    let read = false
    await createViewRecords({}).viewed(request('arts'), 'DICOMweb', 'frames 1', '1.2.3', async () => { read = true; return study() })
    expect(read).toBe(false)
  })
})
