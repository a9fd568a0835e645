import { createReadStream } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { request } from 'node:http'
import { Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { AuditLog, trailRecords, type AuditRecord } from '../../../node/audit/audit-log.ts'
import type { PlanAnswer } from '../../../node/api/import-sessions.ts'
import type { ImportSummary } from '../../../node/dicom/file-import.ts'
import { readInstanceHeader } from '../../../node/dicom/instance-header.ts'
import { nodePaths } from '../../../node/paths.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { generateStudy, writeMediaLayout } from '../../../simulations/generator/index.ts'
import { fetchAs, tokenFor } from '../../helpers/api-caller.ts'
import { until } from '../../helpers/patience.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

/*
 * /api/imports over real HTTP into a real store: a DVD's folder announced by its names, planned by
 * its DICOMDIR, sent file by file as streams, and answered with the per-file report of `node import`.
 */

const tempDir = useTempDirs()

async function namesUnder (root: string, dir = root): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...await namesUnder(root, path))
    else out.push(relative(root, path))
  }
  return out
}

/** A file's bytes as the request body, streamed from disk. */
function streamed (path: string): RequestInit {
  return { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: Readable.toWeb(createReadStream(path)) as ReadableStream, duplex: 'half' } as RequestInit
}

describe('the import API', () => {
  let dataDir: string
  let store: StudyStore
  let audit: AuditLog
  let app: FastifyInstance
  let url: string
  let it_: ReturnType<typeof fetchAs>
  let clinician: ReturnType<typeof fetchAs>
  let auditor: ReturnType<typeof fetchAs>

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'beeldnet-imports-'))
    store = new StudyStore({ dir: dataDir })
    await store.start()
    audit = new AuditLog(nodePaths(dataDir).auditTrail)
    await audit.start()
    app = createHttpServer({ store, logger: pino({ level: 'silent' }), audit, users: new UserStore(nodePaths(dataDir).users) }, { nodeName: 'test', peerId: 'test' })
    url = await listenOnLoopback(app)
    it_ = fetchAs({ dataDir }, 'it-admin')
    clinician = fetchAs({ dataDir }, 'clinician')
    auditor = fetchAs({ dataDir }, 'auditor')
  })

  afterAll(async () => {
    await app?.close()
    await audit?.stop()
    await store?.stop()
    await rm(dataDir, { recursive: true, force: true })
  })

  it('imports a DVD folder by its DICOMDIR: the viewer is never sent, a listed file that is missing is named, every file has its outcome', async () => {
    const dvd = await tempDir('dvd')
    const { studies } = await writeMediaLayout(dvd, [{ seed: 81, series: [{ modality: 'CT', instances: 3, rows: 32, columns: 32 }] }])
    await mkdir(join(dvd, 'VIEWER'))
    await writeFile(join(dvd, 'VIEWER', 'VIEWER.EXE'), Buffer.alloc(4096, 0x90))
    const gone = join('DICOM', 'PAT00001', 'STU00001', 'SER00001', 'IMG00003')
    await rm(join(dvd, gone))
    const names = await namesUnder(dvd)

    const begun = await it_(`${url}/api/imports`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ files: names }) })
    expect(begun.status).toBe(201)
    const { id, dicomdirs } = await begun.json() as { id: string, dicomdirs: string[] }
    expect(dicomdirs).toEqual(['DICOMDIR'])
    // Nothing but the DICOMDIR before the plan is known.
    const early = await it_(`${url}/api/imports/${id}/plan`)
    expect(early.status).toBe(409)
    expect(await early.json()).toMatchObject({ code: 'BEELDNET_ERR_IMPORT_STATE' })
    const listed = await it_(`${url}/api/imports/${id}/dicomdir?path=DICOMDIR`, streamed(join(dvd, 'DICOMDIR')))
    expect(await listed.json()).toMatchObject({ path: 'DICOMDIR', listed: 3 })
    const plan = await (await it_(`${url}/api/imports/${id}/plan`)).json() as { files: string[], missing: string[], warnings: string[] }
    expect(plan.files).toEqual(names.filter((n) => n.startsWith('DICOM/')).sort())
    expect(plan.missing).toEqual([gone])
    expect(plan.warnings.join('\n')).toMatch(/lists 1 file\(s\) that are not on the medium/)

    const viewer = await it_(`${url}/api/imports/${id}/files?path=VIEWER/VIEWER.EXE`, streamed(join(dvd, 'VIEWER', 'VIEWER.EXE')))
    expect(viewer.status).toBe(409)
    for (const [n, name] of plan.files.entries()) {
      const sent = await it_(`${url}/api/imports/${id}/files?path=${encodeURIComponent(name)}`, streamed(join(dvd, name)))
      expect(await sent.json()).toMatchObject({ outcome: { path: name, status: 'stored' }, received: n + 1 })
    }
    // Another caller does not see this import.
    expect((await clinician(`${url}/api/imports/${id}/commit`, { method: 'POST' })).status).toBe(404)
    const summary = await (await it_(`${url}/api/imports/${id}/commit`, { method: 'POST' })).json() as ImportSummary
    expect(summary).toMatchObject({ files: 2, stored: 2, duplicates: 0, rejected: [], missing: [gone], studies: [{ studyInstanceUID: studies[0]!.studyInstanceUID, stored: 2 }] })
    expect(summary.outcomes.map((o) => o.status)).toEqual(['stored', 'stored'])
    expect((await store.getStudy(studies[0]!.studyInstanceUID)).study.numberOfInstances).toBe(2)
    const trail: AuditRecord[] = []
    for await (const record of trailRecords(nodePaths(dataDir).auditTrail)) trail.push(record)
    expect(trail.filter((r) => r.event === 'store-received' && r.studyInstanceUID === studies[0]!.studyInstanceUID)).toMatchObject([{ outcome: 'import: 2 stored, 0 duplicate(s)', user: { system: expect.stringContaining('test it-admin') } }])
    // The session is over.
    expect((await it_(`${url}/api/imports/${id}/commit`, { method: 'POST' })).status).toBe(404)
  })

  it('says what is on the medium, and imports only the studies picked: a file of another study on it is refused in that import, whatever its name', async () => {
    const dvd = await tempDir('dvd')
    const { studies } = await writeMediaLayout(dvd, [
      { seed: 86, description: 'CT thorax', accession: 'ACC86', studyDate: '20240102', series: [{ modality: 'CT', instances: 2, rows: 32, columns: 32 }, { modality: 'CT', instances: 1, rows: 32, columns: 32 }] },
      { seed: 87, description: 'MR knie', accession: 'ACC87', series: [{ modality: 'MR', instances: 2, rows: 32, columns: 32 }] }
    ])
    const [kept, left] = [studies[0]!, studies[1]!]
    const json = { 'content-type': 'application/json' }
    const { id } = await (await clinician(`${url}/api/imports`, { method: 'POST', headers: json, body: JSON.stringify({ files: await namesUnder(dvd) }) })).json() as { id: string }
    await clinician(`${url}/api/imports/${id}/dicomdir?path=DICOMDIR`, streamed(join(dvd, 'DICOMDIR')))
    const plan = await (await clinician(`${url}/api/imports/${id}/plan`)).json() as PlanAnswer
    expect(plan.files).toHaveLength(5)
    expect(plan.overview).toEqual({
      unlisted: 0,
      patients: [
        { name: kept.patient.name, id: kept.patient.id, issuer: kept.patient.issuer, birthDate: kept.patient.birthDate, sex: expect.any(String) as string, studies: [{ studyInstanceUID: kept.studyInstanceUID, date: '20240102', time: expect.stringMatching(/^\d{6}/) as string, description: 'CT thorax', accessionNumber: 'ACC86', modalities: ['CT'], series: 2, instances: 3, files: 3 }] },
        { name: left.patient.name, id: left.patient.id, issuer: left.patient.issuer, birthDate: left.patient.birthDate, sex: expect.any(String) as string, studies: [expect.objectContaining({ studyInstanceUID: left.studyInstanceUID, description: 'MR knie', modalities: ['MR'], series: 1, instances: 2, files: 2 })] }
      ]
    })

    // A study the medium does not list cannot be picked; nor can nothing.
    const unknown = await clinician(`${url}/api/imports/${id}/pick`, { method: 'POST', headers: json, body: JSON.stringify({ studies: ['1.2.3.4'] }) })
    expect(unknown.status).toBe(400)
    expect((await clinician(`${url}/api/imports/${id}/pick`, { method: 'POST', headers: json, body: JSON.stringify({ studies: [] }) })).status).toBe(400)
    const picked = await (await clinician(`${url}/api/imports/${id}/pick`, { method: 'POST', headers: json, body: JSON.stringify({ studies: [kept.studyInstanceUID] }) })).json() as PlanAnswer
    expect(picked.picked).toEqual([kept.studyInstanceUID])
    expect(picked.files).toEqual(plan.files.filter((n) => n.startsWith('DICOM/PAT00001/')))
    expect((await (await clinician(`${url}/api/imports/${id}/plan`)).json() as PlanAnswer).files).toEqual(picked.files)

    // The unpicked study's file under its own name is not in the plan; under a picked file's name, its header gives it away.
    const leftFile = plan.files.find((n) => n.startsWith('DICOM/PAT00002/'))!
    const byName = await clinician(`${url}/api/imports/${id}/files?path=${encodeURIComponent(leftFile)}`, streamed(join(dvd, leftFile)))
    expect(byName.status).toBe(409)
    expect(await byName.json()).toMatchObject({ code: 'BEELDNET_ERR_IMPORT_STATE' })
    const disguised = await clinician(`${url}/api/imports/${id}/files?path=${encodeURIComponent(picked.files[0]!)}`, streamed(join(dvd, leftFile)))
    expect(await disguised.json()).toMatchObject({ outcome: { path: picked.files[0], status: 'rejected', code: 'BEELDNET_ERR_IMPORT_NOT_PICKED' } })
    expect(await readdir(join(dataDir, 'store', 'tmp')).catch(() => [])).toEqual([])
    // Picking again once files came is too late.
    expect((await clinician(`${url}/api/imports/${id}/pick`, { method: 'POST', headers: json, body: JSON.stringify({ studies: [left.studyInstanceUID] }) })).status).toBe(409)
    for (const name of picked.files) await clinician(`${url}/api/imports/${id}/files?path=${encodeURIComponent(name)}`, streamed(join(dvd, name)))
    const summary = await (await clinician(`${url}/api/imports/${id}/commit`, { method: 'POST' })).json() as ImportSummary
    expect(summary).toMatchObject({ files: 4, stored: 3, rejected: [{ code: 'BEELDNET_ERR_IMPORT_NOT_PICKED' }], studies: [{ studyInstanceUID: kept.studyInstanceUID, stored: 3 }] })
    expect((await store.getStudy(kept.studyInstanceUID)).study.numberOfInstances).toBe(3)
    await expect(store.getStudy(left.studyInstanceUID)).rejects.toMatchObject({ code: 'BEELDNET_ERR_STUDY_NOT_FOUND' })
  })

  it('picks only in an import that announced a folder', async () => {
    const { id } = await (await it_(`${url}/api/imports`, { method: 'POST' })).json() as { id: string }
    const refused = await it_(`${url}/api/imports/${id}/pick`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ studies: ['1.2.3'] }) })
    expect(refused.status).toBe(409)
    expect(await refused.json()).toMatchObject({ code: 'BEELDNET_ERR_IMPORT_STATE' })
    await it_(`${url}/api/imports/${id}`, { method: 'DELETE' })
  })

  it('names a file that is not DICOM with its code, and a repeat as a duplicate', async () => {
    const src = await tempDir('src')
    const study = await generateStudy(src, { seed: 82, series: [{ modality: 'MR', instances: 1, rows: 32, columns: 32 }] })
    const junk = join(src, 'notes.txt')
    await writeFile(junk, 'referral letter follows by post')
    const { id } = await (await clinician(`${url}/api/imports`, { method: 'POST' })).json() as { id: string }
    const image = study.instances[0]!.path
    for (const path of [image, junk, image]) await clinician(`${url}/api/imports/${id}/files?path=${encodeURIComponent(path)}`, streamed(path))
    const summary = await (await clinician(`${url}/api/imports/${id}/commit`, { method: 'POST' })).json() as ImportSummary
    expect(summary.outcomes).toMatchObject([{ path: image, status: 'stored' }, { path: junk, status: 'rejected', code: 'BEELDNET_ERR_NOT_DICOM' }, { path: image, status: 'duplicate' }])
    expect(summary.rejected).toMatchObject([{ path: junk, code: 'BEELDNET_ERR_NOT_DICOM' }])
  })

  it('is for IT and the CLI\'s token, not for an auditor; an abort drops what was staged', async () => {
    expect((await auditor(`${url}/api/imports`, { method: 'POST' })).status).toBe(403)
    const src = await tempDir('src')
    const study = await generateStudy(src, { seed: 83, series: [{ modality: 'CT', instances: 1, rows: 32, columns: 32 }] })
    const { id } = await (await it_(`${url}/api/imports`, { method: 'POST' })).json() as { id: string }
    await it_(`${url}/api/imports/${id}/files?path=a.dcm`, streamed(study.instances[0]!.path))
    expect((await it_(`${url}/api/imports/${id}`, { method: 'DELETE' })).status).toBe(200)
    await expect(store.getStudy(study.studyInstanceUID)).rejects.toMatchObject({ code: 'BEELDNET_ERR_STUDY_NOT_FOUND' })
    expect(await readdir(join(dataDir, 'store', 'tmp')).catch(() => [])).toEqual([])
  })

  it('drops a file whose upload is cut off: no outcome for it, nothing left in staging, the import goes on', async () => {
    const src = await tempDir('src')
    const study = await generateStudy(src, { seed: 84, series: [{ modality: 'CT', instances: 1, rows: 32, columns: 32 }] })
    const { id } = await (await it_(`${url}/api/imports`, { method: 'POST' })).json() as { id: string }
    const token = await tokenFor({ dataDir }, 'it-admin')
    // Announces a megabyte, sends a few bytes, and goes away.
    const cut = request(`${url}/api/imports/${id}/files?path=cut.dcm`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': String(1024 * 1024) } })
    cut.on('error', () => {})
    // A Part 10 opening (preamble, 'DICM', a File Meta element), so the node stages the bytes rather than refusing them.
    cut.write(Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), Buffer.from([0x02, 0x00, 0x00, 0x00, 0x55, 0x4C, 0x04, 0x00]), Buffer.alloc(64 * 1024 - 140)]))
    await until(async () => (await readdir(join(dataDir, 'store', 'tmp')).catch(() => [])).length > 0, 'the node to stage the first bytes')
    cut.destroy()
    await until(async () => (await readdir(join(dataDir, 'store', 'tmp')).catch(() => [])).length === 0, 'the node to drop what it staged of the cut-off file')
    const sent = await it_(`${url}/api/imports/${id}/files?path=whole.dcm`, streamed(study.instances[0]!.path))
    expect(await sent.json()).toMatchObject({ outcome: { path: 'whole.dcm', status: 'stored' }, received: 1 })
    const summary = await (await it_(`${url}/api/imports/${id}/commit`, { method: 'POST' })).json() as ImportSummary
    expect(summary).toMatchObject({ files: 1, stored: 1, rejected: [] })
  })

  it('refuses a large file that is not DICOM on its first bytes: staging never holds it, the file is named with the local import\'s code, a DICOM file after it imports', async () => {
    const src = await tempDir('src')
    const study = await generateStudy(src, { seed: 85, series: [{ modality: 'CT', instances: 1, rows: 32, columns: 32 }] })
    const staging = join(dataDir, 'store', 'tmp')
    const stagedBytes = async (): Promise<number> => {
      let bytes = 0
      for (const name of await readdir(staging).catch(() => [])) bytes += (await stat(join(staging, name)).catch(() => ({ size: 0 }))).size
      return bytes
    }
    // A 200 MB video from a patient's USB stick: an MP4 'ftyp' box, then random bytes made as they are sent.
    const videoBytes = 200 * 1024 * 1024
    let mostStaged = 0
    let sent = 0
    async function * video (): AsyncGenerator<Uint8Array> {
      const ftyp = Buffer.from('000000206674797069736f6d0000020069736f6d69736f32617663316d703431', 'hex')
      yield ftyp
      sent = ftyp.length
      while (sent < videoBytes) {
        const chunk = randomBytes(Math.min(1024 * 1024, videoBytes - sent))
        // What staging holds while the upload goes on: without the check, all the node has received so far.
        mostStaged = Math.max(mostStaged, await stagedBytes())
        yield chunk
        sent += chunk.length
      }
    }
    const { id } = await (await it_(`${url}/api/imports`, { method: 'POST' })).json() as { id: string }
    const refused = await it_(`${url}/api/imports/${id}/files?path=${encodeURIComponent('VIDEO/HOLIDAY.MP4')}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: Readable.toWeb(Readable.from(video())) as ReadableStream, duplex: 'half' } as RequestInit)
    expect(await refused.json()).toMatchObject({ outcome: { path: 'VIDEO/HOLIDAY.MP4', status: 'rejected', code: 'BEELDNET_ERR_NOT_DICOM' }, received: 1 })
    // All of it was sent and read (the rest dropped, so the client gets its answer), none of it staged.
    expect(sent).toBe(videoBytes)
    expect(mostStaged).toBeLessThan(64 * 1024)
    expect(await stagedBytes()).toBe(0)
    const token = await tokenFor({ dataDir }, 'it-admin')
    const sendsOn = request(`${url}/api/imports/${id}/files?path=VIDEO/CLIP.MP4`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' } })
    const answer = new Promise<string>((resolve, reject) => {
      sendsOn.on('response', (res) => { let text = ''; res.setEncoding('utf8').on('data', (c: string) => { text += c }).on('end', () => { resolve(text) }) })
      sendsOn.on('error', reject)
    })
    for (let n = 0; n < 32; n++) {
      if (!sendsOn.write(n === 0 ? Buffer.concat([Buffer.from('RIFF', 'latin1'), randomBytes(1024 * 1024 - 4)]) : randomBytes(1024 * 1024))) await new Promise((resolve) => sendsOn.once('drain', resolve))
      mostStaged = Math.max(mostStaged, await stagedBytes())
    }
    sendsOn.end()
    expect(JSON.parse(await answer)).toMatchObject({ outcome: { path: 'VIDEO/CLIP.MP4', status: 'rejected', code: 'BEELDNET_ERR_NOT_DICOM' }, received: 2 })
    expect(mostStaged).toBeLessThan(64 * 1024)
    // The code a local import gives a file with the same opening.
    const local = join(src, 'HOLIDAY.MP4')
    await writeFile(local, Buffer.concat([Buffer.from('000000206674797069736f6d0000020069736f6d69736f32617663316d703431', 'hex'), randomBytes(4096)]))
    expect(() => readInstanceHeader(local)).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_NOT_DICOM' }) as Error)

    const image = await it_(`${url}/api/imports/${id}/files?path=IMG00001`, streamed(study.instances[0]!.path))
    expect(await image.json()).toMatchObject({ outcome: { path: 'IMG00001', status: 'stored' }, received: 3 })
    const summary = await (await it_(`${url}/api/imports/${id}/commit`, { method: 'POST' })).json() as ImportSummary
    expect(summary).toMatchObject({ files: 3, stored: 1, rejected: [{ path: 'VIDEO/HOLIDAY.MP4', code: 'BEELDNET_ERR_NOT_DICOM' }, { path: 'VIDEO/CLIP.MP4', code: 'BEELDNET_ERR_NOT_DICOM' }] })
    expect((await store.getStudy(study.studyInstanceUID)).study.studyInstanceUID).toBe(study.studyInstanceUID)
  })
})
