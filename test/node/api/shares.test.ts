import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { AuditLog, type AuditRecord } from '../../../node/audit/audit-log.ts'
import { createShareStore, type ShareStore } from '../../../node/shares/share-store.ts'
import { createShares, type Shares } from '../../../node/shares/shares.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'

/*
 * A patient's share link over real HTTP: a clinician makes it (IT lists and revokes, never makes),
 * the patient opens it with the code into a session that reads the link's one study as the
 * clinician's routes give it, wrong codes are counted and lock the link, a token no link has is
 * answered the same way, revoking and expiry (an injected clock) end the access at once, and the
 * token is in no log line and no audit record.
 */

const CODE = /^[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}$/
const PUBLIC = 'https://beelden.ziekenhuis.example'

/** Each file of a ZIP by name, from its central directory: its size and CRC-32. */
function zipEntries (zip: Buffer): Map<string, { size: number, crc32: number }> {
  const entries = new Map<string, { size: number, crc32: number }>()
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]))
  let at = zip.readUInt32LE(end + 16)
  for (let n = zip.readUInt16LE(end + 10); n > 0; n--) {
    expect(zip.readUInt32LE(at)).toBe(0x02014b50)
    const nameLength = zip.readUInt16LE(at + 28)
    const name = zip.subarray(at + 46, at + 46 + nameLength).toString('utf8')
    entries.set(name, { size: zip.readUInt32LE(at + 24), crc32: zip.readUInt32LE(at + 16) })
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32)
  }
  return entries
}

interface Made { id: string, path: string, url: string, code: string, expiresAt: string, maxDownloads: number }

describe('share links for patients', () => {
  let work: string
  let store: StudyStore
  let audit: AuditLog
  let shareStore: ShareStore
  let shares: Shares
  let app: FastifyInstance
  let url: string
  let a: GeneratedStudy
  let b: GeneratedStudy
  let now = new Date('2026-03-02T09:00:00.000Z')
  const logLines: string[] = []
  const tokens: string[] = []
  const sessions = { clinician: { cookie: '', csrf: '' }, it: { cookie: '', csrf: '' } }
  let clinicianToken: string

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'beeldnet-shares-'))
    a = await generateStudy(join(work, 'a'), { seed: 171, series: [{ modality: 'CT', instances: 2, rows: 32, columns: 32 }], reports: { sr: true, pdf: true } })
    b = await generateStudy(join(work, 'b'), { seed: 172, series: [{ modality: 'MR', instances: 1, rows: 32, columns: 32 }] })
    store = new StudyStore({ dir: join(work, 'node') })
    await store.start()
    const session = store.beginImport()
    for (const i of [...a.instances, ...b.instances]) await session.add(i.path)
    await session.commit()
    audit = new AuditLog(join(work, 'node', 'audit', 'trail.jsonl'))
    await audit.start()
    const users = new UserStore(join(work, 'node', 'users.json'))
    await users.add({ username: 'arts', name: 'dr. A. Jansen', role: 'clinician', uzi: '123456789', roleCode: '01.015' }, 'clinician password')
    await users.add({ username: 'beheer', name: 'IT beheer', role: 'it-admin' }, 'it-admin password')
    clinicianToken = (await users.addToken('viewer', 'clinician')).token
    shareStore = createShareStore(join(work, 'node', 'shares'))
    await shareStore.start()
    shares = createShares({ store: shareStore, studyRecord: async (uid) => store.getStudyRecord(uid), audit }, { now: () => now })
    // The web app's built files, of our own (no build needed).
    const dist = join(work, 'dist')
    await mkdir(join(dist, 'assets'), { recursive: true })
    await writeFile(join(dist, 'index.html'), '<!doctype html><title>Beeldnet</title><script type="module" src="./assets/index-abc123.js"></script>')
    await writeFile(join(dist, 'assets', 'index-abc123.js'), 'console.log("app")')
    const logger = pino({ level: 'info' }, { write: (line: string) => { logLines.push(line) } })
    app = createHttpServer({ store, logger, audit, users, shares }, {
      nodeName: 'test', peerId: 'test', webAppDir: dist, shareOpensPerMinute: 1000,
      shares: { defaultDays: 14, maxDays: 90, defaultDownloads: 5, publicUrl: PUBLIC }
    })
    url = await listenOnLoopback(app)
    for (const [who, username, password] of [['clinician', 'arts', 'clinician password'], ['it', 'beheer', 'it-admin password']] as const) {
      const res = await fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) })
      sessions[who] = { cookie: res.headers.get('set-cookie')!.split(';')[0]!, csrf: (await res.json() as { csrfToken: string }).csrfToken }
    }
  })

  afterAll(async () => {
    await app?.close()
    await shareStore?.stop()
    await audit?.stop()
    await store?.stop()
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })

  const as = (who: 'clinician' | 'it', method = 'GET', body?: unknown): RequestInit => ({
    method,
    headers: { cookie: sessions[who].cookie, 'x-csrf-token': sessions[who].csrf, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const make = async (study = a.studyInstanceUID, body: unknown = {}): Promise<Made> => {
    const res = await fetch(`${url}/api/studies/${study}/shares`, as('clinician', 'POST', body))
    expect(res.status).toBe(201)
    const made = await res.json() as Made
    tokens.push(made.path.split('/')[2]!)
    return made
  }
  const open = async (path: string, code: string): Promise<{ status: number, body: Record<string, unknown>, cookie: string, setCookie: string, retryAfter: string | null }> => {
    const res = await fetch(`${url}${path}/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) })
    const setCookie = res.headers.get('set-cookie') ?? ''
    return { status: res.status, body: await res.json() as Record<string, unknown>, cookie: setCookie.split(';')[0]!, setCookie, retryAfter: res.headers.get('retry-after') }
  }
  const view = async (id: string): Promise<Record<string, unknown>> =>
    ((await (await fetch(`${url}/api/shares`, as('it'))).json()) as { shares: Array<Record<string, unknown>> }).shares.find((s) => s.id === id)!
  const trail = async (): Promise<AuditRecord[]> =>
    (await readFile(audit.path, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as AuditRecord)
  const later = (ms: number): void => { now = new Date(now.getTime() + ms) }

  it('is made by a clinician for a study that exists, within the limits, and keeps neither its token nor its code', async () => {
    const made = await make()
    expect(made).toEqual({ id: expect.any(String), path: expect.stringMatching(/^\/share\/[A-Za-z0-9_-]{43}$/), url: `${PUBLIC}${made.path}`, code: expect.stringMatching(CODE), expiresAt: new Date(now.getTime() + 14 * 86_400_000).toISOString(), maxDownloads: 5, handedOver: 'in-person' })
    const chosen = await make(a.studyInstanceUID, { days: 3, maxDownloads: 2 })
    expect(chosen).toMatchObject({ expiresAt: new Date(now.getTime() + 3 * 86_400_000).toISOString(), maxDownloads: 2 })

    for (const body of [{ days: 91 }, { days: 0 }, { maxDownloads: 21 }, { days: 1.5 }, { patient: 'x' }]) {
      const res = await fetch(`${url}/api/studies/${a.studyInstanceUID}/shares`, as('clinician', 'POST', body))
      expect(res.status, JSON.stringify(body)).toBe(400)
    }
    const missing = await fetch(`${url}/api/studies/1.2.3.4/shares`, as('clinician', 'POST', {}))
    expect(missing.status).toBe(404)
    expect((await missing.json() as { code: string }).code).toBe('BEELDNET_ERR_STUDY_NOT_FOUND')

    // Listed for the study and for IT, with no patient in it.
    const listed = (await (await fetch(`${url}/api/studies/${a.studyInstanceUID}/shares`, as('clinician'))).json() as { shares: Array<Record<string, unknown>> }).shares
    expect(listed.map((s) => s.id)).toEqual(expect.arrayContaining([made.id, chosen.id]))
    expect(listed.find((s) => s.id === made.id)).toEqual({ id: made.id, studyInstanceUID: a.studyInstanceUID, createdBy: 'dr. A. Jansen', createdAt: now.toISOString(), expiresAt: made.expiresAt, maxDownloads: 5, downloads: 0, opens: 0, failedAttempts: 0, state: 'active' })
    expect(JSON.stringify(await view(made.id))).not.toContain(a.patient.id)

    // Neither secret is in the records or anywhere in the database's files.
    const token = made.path.split('/')[2]!
    const record = (await shareStore.get(made.id))!
    expect(record.tokenHash).toBe(createHash('sha256').update(token).digest('hex'))
    expect(record.codeHash).toMatch(/^scrypt\$/)
    const dir = join(work, 'node', 'shares')
    for (const file of await readdir(dir)) {
      const bytes = await readFile(join(dir, file)).catch(() => Buffer.alloc(0))
      expect(bytes.includes(token), file).toBe(false)
      expect(bytes.includes(made.code.replace('-', '')), file).toBe(false)
    }

    const created = (await trail()).find((r) => r.event === 'share-created' && r.details?.shareId === made.id)
    expect(created).toMatchObject({ outcome: 'success', user: { name: 'dr. A. Jansen', uzi: '123456789' }, patient: { id: a.patient.id }, studyInstanceUID: a.studyInstanceUID })
  })

  it('lets IT list and revoke links but not make one; an auditor or nobody neither', async () => {
    const made = await make()
    const byIt = await fetch(`${url}/api/studies/${a.studyInstanceUID}/shares`, as('it', 'POST', {}))
    expect(byIt.status).toBe(403)
    expect((await fetch(`${url}/api/studies/${a.studyInstanceUID}/shares`, as('it'))).status).toBe(403)
    expect((await fetch(`${url}/api/shares`)).status).toBe(401)
    const revoked = await fetch(`${url}/api/shares/${made.id}`, as('it', 'DELETE'))
    expect(revoked.status).toBe(200)
    expect(await revoked.json()).toMatchObject({ id: made.id, state: 'revoked' })
    expect((await fetch(`${url}/api/shares/no-such-link`, as('it', 'DELETE'))).status).toBe(404)
    const record = (await trail()).find((r) => r.event === 'share-revoked' && r.details?.shareId === made.id)
    expect(record).toMatchObject({ user: { name: 'IT beheer' }, patient: { id: a.patient.id } })
  })

  it('serves the web app at the link and its files under /share/assets, and nothing else under /share', async () => {
    const made = await make()
    const page = await fetch(`${url}${made.path}`)
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('./assets/index-abc123.js')
    const script = await fetch(`${url}/share/assets/index-abc123.js`)
    expect(script.status).toBe(200)
    expect(script.headers.get('cache-control')).toContain('immutable')
    const other = await fetch(`${url}${made.path}/something`)
    expect(other.status).toBe(404)
    expect((await other.json() as { code: string }).code).toBe('BEELDNET_ERR_NOT_FOUND')
  })

  it('counts a wrong code on the link, locks it for 15 minutes after 5 in a row and for good after 10, and answers a token no link has alike', async () => {
    const made = await make()
    const unknown = `/share/${'A'.repeat(43)}`
    const seen: Array<{ link: unknown, nobody: unknown }> = []
    for (let i = 1; i <= 5; i++) {
      const link = await open(made.path, 'AAAA-BBBB')
      const nobody = await open(unknown, 'AAAA-BBBB')
      seen.push({ link: [link.status, link.body, link.retryAfter], nobody: [nobody.status, nobody.body, nobody.retryAfter] })
    }
    // Indistinguishable: the same statuses, counts, lock times and words.
    for (const { link, nobody } of seen) expect(nobody).toEqual(link)
    expect(seen.map(({ link }) => (link as [number, { code: string, attemptsLeft?: number }])[1])).toEqual([
      ...[4, 3, 2, 1].map((left) => ({ code: 'BEELDNET_ERR_SHARE_CODE', attemptsLeft: left, message: expect.any(String) })),
      { code: 'BEELDNET_ERR_SHARE_LOCKED', lockedUntil: new Date(now.getTime() + 15 * 60_000).toISOString(), message: expect.any(String) }
    ])
    expect(seen[4]!.link).toEqual([429, expect.anything(), '900'])
    expect(await view(made.id)).toMatchObject({ failedAttempts: 5, state: 'locked', lockedUntil: new Date(now.getTime() + 15 * 60_000).toISOString() })

    // Locked: the right code too is refused, until the 15 minutes are over.
    expect((await open(made.path, made.code)).status).toBe(429)
    later(15 * 60_000)
    const right = await open(made.path, made.code)
    expect(right.status).toBe(200)
    // Five more wrong codes make ten in all: locked for good, whatever the clock says.
    for (let i = 1; i <= 4; i++) expect((await open(made.path, 'CCCC-DDDD')).body).toMatchObject({ code: 'BEELDNET_ERR_SHARE_CODE', attemptsLeft: 5 - i })
    expect((await open(made.path, 'CCCC-DDDD')).body).toMatchObject({ code: 'BEELDNET_ERR_SHARE_LOCKED', lockedUntil: null })
    // A session opened before the lock goes on: its holder knew the code.
    expect((await fetch(`${url}${made.path}/api/study`, { headers: { cookie: right.cookie } })).status).toBe(200)
    later(24 * 60 * 60_000)
    expect((await open(made.path, made.code)).body).toMatchObject({ code: 'BEELDNET_ERR_SHARE_LOCKED', lockedUntil: null })
    expect(await view(made.id)).toMatchObject({ failedAttempts: 10, opens: 1, state: 'locked' })
    expect(await view(made.id)).not.toHaveProperty('lockedUntil')

    const records = await trail()
    const refused = records.filter((r) => r.event === 'share-code-refused' && r.details?.shareId === made.id)
    expect(refused.length).toBe(12)
    expect(refused[0]).toMatchObject({ outcome: 'refused: wrong code (1 of 10)', user: { system: expect.stringContaining(`share link ${made.id}`) }, patient: { id: a.patient.id } })
    expect(records.filter((r) => r.event === 'share-code-refused' && r.user.system?.includes('unknown share link')).length).toBe(5)
  })

  it('opens a session with the right code (any case, with or without the dash) that reads the link\'s study as the clinician\'s routes give it', async () => {
    const made = await make()
    expect((await fetch(`${url}${made.path}/api/study`)).status).toBe(401)
    const opened = await open(made.path, made.code.replace('-', '').toLowerCase())
    expect(opened.status).toBe(200)
    expect(opened.body).toEqual({ id: made.id, expiresAt: made.expiresAt, sessionExpiresAt: new Date(now.getTime() + 3_600_000).toISOString(), downloadsLeft: 5 })
    expect(opened.setCookie).toMatch(new RegExp(`^beeldnet_share=[A-Za-z0-9_-]{43}; Path=${made.path}; HttpOnly; SameSite=Strict; Max-Age=3600$`))
    const patient = { headers: { cookie: opened.cookie } }
    const clinician = { headers: { authorization: `Bearer ${clinicianToken}` } }
    const both = async (share: string, api: string): Promise<[Response, Response]> =>
      [await fetch(`${url}${made.path}${share}`, patient), await fetch(`${url}${api}`, clinician)]

    const [study, studyAsClinician] = await both('/api/study', `/api/studies/${a.studyInstanceUID}`)
    expect(study.status).toBe(200)
    expect(await study.json()).toEqual(await studyAsClinician.json())
    const [reports, reportsAsClinician] = await both('/api/reports', `/api/studies/${a.studyInstanceUID}/reports`)
    const list = await reports.json() as { reports: Array<{ sopInstanceUID: string, kind: string }> }
    expect(list).toEqual(await reportsAsClinician.json())
    const pdf = list.reports.find((r) => r.kind === 'pdf')!
    const [report, reportAsClinician] = await both(`/api/reports/${pdf.sopInstanceUID}`, `/api/studies/${a.studyInstanceUID}/reports/${pdf.sopInstanceUID}`)
    expect(report.headers.get('content-type')).toBe('application/pdf')
    expect(Buffer.from(await report.arrayBuffer()).equals(Buffer.from(await reportAsClinician.arrayBuffer()))).toBe(true)

    const entries = await store.getStudy(a.studyInstanceUID)
    const ct = entries.instances.find((i) => !i.isReport)!
    const thumbnail = await fetch(`${url}${made.path}/api/series/${ct.seriesInstanceUID}/thumbnail`, patient)
    expect(thumbnail.status).toBe(200)
    expect(thumbnail.headers.get('content-type')).toBe('image/png')

    const series = `/studies/${a.studyInstanceUID}/series/${ct.seriesInstanceUID}`
    const [metadata, metadataAsClinician] = await both(`/dicomweb${series}/metadata`, `/dicomweb${series}/metadata`)
    expect(metadata.headers.get('content-type')).toBe('application/dicom+json')
    // The same JSON, its bulk data URIs under the link's own DICOMweb.
    const shareBase = `${url}${made.path}/dicomweb`
    expect(await metadata.text()).toBe((await metadataAsClinician.text()).replaceAll(`${url}/dicomweb`, shareBase))
    const frames = `/dicomweb${series}/instances/${ct.sopInstanceUID}/frames/1`
    const [frame, frameAsClinician] = await both(frames, frames)
    expect(frame.status).toBe(200)
    const unbounded = async (res: Response): Promise<string> => {
      const boundary = /boundary=([^;]+)/.exec(res.headers.get('content-type')!)![1]!
      return Buffer.from(await res.arrayBuffer()).toString('latin1').replaceAll(boundary, 'BOUNDARY')
    }
    expect(await unbounded(frame)).toBe(await unbounded(frameAsClinician))

    // Another study held here is not found at this link, however it is asked for.
    const bEntries = await store.getStudy(b.studyInstanceUID)
    const mr = bEntries.instances[0]!
    for (const path of [`/dicomweb/studies/${b.studyInstanceUID}/series/${mr.seriesInstanceUID}/metadata`, `/dicomweb/studies/${b.studyInstanceUID}/series/${mr.seriesInstanceUID}/instances/${mr.sopInstanceUID}/frames/1`, `/api/series/${mr.seriesInstanceUID}/thumbnail`]) {
      const res = await fetch(`${url}${made.path}${path}`, patient)
      expect(res.status, path).toBe(404)
    }
    // The cookie opens this link only: sent by hand to another link's path, it is no session.
    const other = await make(b.studyInstanceUID)
    expect((await fetch(`${url}${other.path}/api/study`, patient)).status).toBe(401)

    // In the trail: the session opened, one view for all the images, and each report read, as the patient via the link.
    const records = (await trail()).filter((r) => r.details?.shareId === made.id || r.user.system === `patient via share link ${made.id}`)
    expect(records.filter((r) => r.event === 'share-opened')).toEqual([expect.objectContaining({ outcome: 'success', user: { system: `patient via share link ${made.id}` }, patient: expect.objectContaining({ id: a.patient.id }) })])
    const views = records.filter((r) => r.event === 'view')
    expect(views.map((r) => r.outcome)).toEqual(['study details', 'report list (2)', `report ${pdf.sopInstanceUID}`])
    for (const r of views) expect(r).toMatchObject({ user: { system: `patient via share link ${made.id}` }, studyInstanceUID: a.studyInstanceUID, details: { path: expect.stringMatching(/^\/share\/<redacted>\//) } })
    // A new session is seen again.
    const again = await open(made.path, made.code)
    await fetch(`${url}${made.path}${frames}`, { headers: { cookie: again.cookie } })
    expect((await trail()).filter((r) => r.event === 'view' && r.user.system === `patient via share link ${made.id}`).length).toBe(4)
    expect(await view(made.id)).toMatchObject({ opens: 2, failedAttempts: 0, state: 'active' })
  })

  it('ends every session of a link at once when it is revoked, and when it expires', async () => {
    const made = await make(a.studyInstanceUID, { days: 1 })
    const opened = await open(made.path, made.code)
    const patient = { headers: { cookie: opened.cookie } }
    expect((await fetch(`${url}${made.path}/api/study`, patient)).status).toBe(200)
    expect((await fetch(`${url}/api/shares/${made.id}`, as('clinician', 'DELETE'))).status).toBe(200)
    const ended = await fetch(`${url}${made.path}/api/study`, patient)
    expect(ended.status).toBe(410)
    expect(await ended.json()).toMatchObject({ code: 'BEELDNET_ERR_SHARE_ENDED', state: 'revoked' })
    expect(await open(made.path, made.code)).toMatchObject({ status: 410, body: { code: 'BEELDNET_ERR_SHARE_ENDED', state: 'revoked' } })

    // Expiry: a session never outlasts its link, and ends with it.
    const short = await make(a.studyInstanceUID, { days: 1 })
    later(86_400_000 - 30 * 60_000)
    const late = await open(short.path, short.code)
    expect(late.setCookie).toContain('Max-Age=1800')
    expect(late.body.sessionExpiresAt).toBe(short.expiresAt)
    expect((await fetch(`${url}${short.path}/api/study`, { headers: { cookie: late.cookie } })).status).toBe(200)
    later(30 * 60_000)
    expect(await (await fetch(`${url}${short.path}/api/study`, { headers: { cookie: late.cookie } })).json()).toMatchObject({ code: 'BEELDNET_ERR_SHARE_ENDED', state: 'expired' })
    expect(await open(short.path, short.code)).toMatchObject({ status: 410, body: { state: 'expired' } })
    expect(await view(short.id)).toMatchObject({ state: 'expired' })

    // A session lasts an hour at most.
    const long = await make()
    const hour = await open(long.path, long.code)
    later(59 * 60_000)
    expect((await fetch(`${url}${long.path}/api/study`, { headers: { cookie: hour.cookie } })).status).toBe(200)
    later(60_000)
    const gone = await fetch(`${url}${long.path}/api/study`, { headers: { cookie: hour.cookie } })
    expect(gone.status).toBe(401)
    expect((await gone.json() as { code: string }).code).toBe('BEELDNET_ERR_UNAUTHENTICATED')
  })

  it('gives the study as a PDI ZIP, counts each download and refuses one past the link\'s number; viewing goes on', async () => {
    const made = await make(a.studyInstanceUID, { maxDownloads: 2 })
    const opened = await open(made.path, made.code)
    const patient = { headers: { cookie: opened.cookie } }
    const asClinician = await fetch(`${url}/api/studies/${a.studyInstanceUID}/media.zip`, { headers: { authorization: `Bearer ${clinicianToken}` } })
    const clinicianEntries = zipEntries(Buffer.from(await asClinician.arrayBuffer()))
    for (let n = 1; n <= 2; n++) {
      const zip = await fetch(`${url}${made.path}/download/study.zip`, patient)
      expect(zip.status).toBe(200)
      expect(zip.headers.get('content-type')).toBe('application/zip')
      expect(zip.headers.get('content-disposition')).toBe(asClinician.headers.get('content-disposition'))
      const bytes = Buffer.from(await zip.arrayBuffer())
      expect(bytes.length).toBe(Number(zip.headers.get('content-length')))
      // the same medium as the clinician's: every file alike, but each DICOMDIR has its own SOP Instance UID (PS3.10),
      // whose length varies, so the DICOMDIR may differ in size by a byte or two
      const entries = zipEntries(bytes)
      expect([...entries.keys()]).toEqual([...clinicianEntries.keys()])
      for (const [name, entry] of entries) {
        if (name === 'DICOMDIR') expect(Math.abs(entry.size - clinicianEntries.get(name)!.size)).toBeLessThanOrEqual(4)
        else expect(entry, name).toEqual(clinicianEntries.get(name))
      }
      expect(bytes.subarray(0, 2).toString('latin1')).toBe('PK')
      expect(await view(made.id)).toMatchObject({ downloads: n })
    }
    const third = await fetch(`${url}${made.path}/download/study.zip`, patient)
    expect(third.status).toBe(410)
    expect(await third.json()).toMatchObject({ code: 'BEELDNET_ERR_SHARE_ENDED', state: 'used-up' })
    expect(await view(made.id)).toMatchObject({ downloads: 2, state: 'used-up' })
    // The session open goes on showing the study; no new one is opened.
    expect((await fetch(`${url}${made.path}/api/study`, patient)).status).toBe(200)
    expect(await open(made.path, made.code)).toMatchObject({ status: 410, body: { state: 'used-up' } })
    const exports = (await trail()).filter((r) => r.event === 'export' && r.user.system === `patient via share link ${made.id}`)
    expect(exports.map((r) => r.outcome)).toEqual([expect.stringMatching(/download 1 of 2$/), expect.stringMatching(/download 2 of 2$/)])
    expect(exports[0]).toMatchObject({ patient: { id: a.patient.id }, studyInstanceUID: a.studyInstanceUID, details: { path: expect.stringMatching(/^\/share\/<redacted>\/download\/study\.zip$/) } })
  })

  it('takes the code only as JSON', async () => {
    const made = await make()
    for (const [type, body] of [['text/plain', JSON.stringify({ code: made.code })], ['application/x-www-form-urlencoded', `code=${made.code}`]]) {
      const res = await fetch(`${url}${made.path}/session`, { method: 'POST', headers: { 'content-type': type! }, body })
      expect(res.status, type).toBe(415)
      expect((await res.json() as { code: string }).code).toBe('BEELDNET_ERR_MEDIA_TYPE')
    }
    expect(await view(made.id)).toMatchObject({ opens: 0, failedAttempts: 0 })
  })

  it('writes no token to the log or the audit trail', async () => {
    const made = await make()
    const token = made.path.split('/')[2]!
    // Percent-escaped, the router still finds the route: the log still hides the token.
    await fetch(`${url}/%73hare/${token}/api/study`)
    await fetch(`${url}${made.path}/no-such-page`)
    const logged = logLines.join('')
    expect(logged).toContain('/share/<redacted>/session')
    expect(logged).toContain('/share/<redacted>/no-such-page')
    const trailText = await readFile(audit.path, 'utf8')
    for (const t of tokens) {
      expect(logged).not.toContain(t)
      expect(trailText).not.toContain(t)
    }
  })

  // Last: the server keeps the store it was given, stopped here.
  it('keeps the links across a restart of their store', async () => {
    const before = await shares.list()
    await shareStore.stop()
    shareStore = createShareStore(join(work, 'node', 'shares'))
    await shareStore.start()
    shares = createShares({ store: shareStore, studyRecord: async (uid) => store.getStudyRecord(uid), audit }, { now: () => now })
    expect(await shares.list()).toEqual(before)
  })
})

describe('share link sessions per address', () => {
  it('are rate-limited like logins', async () => {
    const work = await mkdtemp(join(tmpdir(), 'beeldnet-shares-rate-'))
    const store = new StudyStore({ dir: join(work, 'node') })
    await store.start()
    const shareStore = createShareStore(join(work, 'shares'))
    await shareStore.start()
    const shares = createShares({ store: shareStore, studyRecord: async (uid) => store.getStudyRecord(uid) })
    const app = createHttpServer({ store, logger: pino({ level: 'silent' }), users: new UserStore(join(work, 'users.json')), shares }, { nodeName: 'test', peerId: 'test', shareOpensPerMinute: 3 })
    try {
      const url = await listenOnLoopback(app)
      const statuses: number[] = []
      for (let i = 0; i < 4; i++) {
        const res = await fetch(`${url}/share/${'B'.repeat(43)}/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: 'AAAA-AAAA' }) })
        statuses.push(res.status)
        if (i === 3) expect((await res.json() as { code: string }).code).toBe('BEELDNET_ERR_RATE_LIMITED')
      }
      expect(statuses).toEqual([401, 401, 401, 429])
    } finally {
      await app.close()
      await shareStore.stop()
      await store.stop()
      await rm(work, { recursive: true, force: true })
    }
  })
})
