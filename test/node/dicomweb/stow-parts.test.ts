import { request } from 'node:http'
import { createRequire } from 'node:module'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { AuditLog } from '../../../node/audit/audit-log.ts'
import { nodePaths } from '../../../node/paths.ts'
import { StudyStore, type StudyStoreInit } from '../../../node/store/study-store.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { tokenFor } from '../../helpers/api-caller.ts'
import { dcmtk } from '../../helpers/dcmtk.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

/*
 * STOW-RS answers per part, whatever a part holds: hostile bytes never reach a header, a repeat of
 * one SOP instance in two encodings never fails its first copy, and a failure after parts were
 * committed never turns into a 5xx.
 */

const require = createRequire(import.meta.url)
// dicomweb-client is the browser library OHIF viewers use; in Node it needs an XMLHttpRequest.
;(globalThis as { XMLHttpRequest?: unknown }).XMLHttpRequest ??= require('xhr2')
interface DicomwebClient { storeInstances: (o: { datasets: ArrayBuffer[] }) => Promise<unknown> }
const { api } = require('dicomweb-client') as { api: { DICOMwebClient: new (options: { url: string, headers?: Record<string, string> }) => DicomwebClient } }

const tempDir = useTempDirs()
const logger = pino({ level: 'silent' })
const running: Array<{ app: FastifyInstance, store: StudyStore, audit: AuditLog }> = []

afterEach(async () => {
  for (const r of running.splice(0)) {
    await r.app.close()
    await r.audit.stop()
    await r.store.stop()
  }
})

interface Node { store: StudyStore, url: string, token: string, client: DicomwebClient }

async function serve (options: { failingAudit?: boolean, store?: Omit<StudyStoreInit, 'dir'> } = {}): Promise<Node> {
  const dir = await tempDir('node')
  const store = new StudyStore({ dir, ...options.store })
  await store.start()
  const audit = new AuditLog(join(dir, 'audit', 'trail.jsonl'))
  await audit.start()
  if (options.failingAudit === true) {
    audit.record = async () => { throw new Error('the trail\'s disk is full') }
    audit.recordAll = async () => { throw new Error('the trail\'s disk is full') }
  }
  const app = createHttpServer({ store, logger, audit, users: new UserStore(nodePaths(dir).users) }, { nodeName: 'test', peerId: 'test' })
  const url = await listenOnLoopback(app)
  running.push({ app, store, audit })
  const token = await tokenFor({ dataDir: dir })
  return { store, url, token, client: new api.DICOMwebClient({ url: `${url}/dicomweb`, headers: { authorization: `Bearer ${token}` } }) }
}

function multipart (boundary: string, parts: Array<{ type: string, body: Buffer }>): Buffer {
  const chunks: Buffer[] = []
  for (const p of parts) chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${p.type}\r\n\r\n`, 'utf8'), p.body, Buffer.from('\r\n'))
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return Buffer.concat(chunks)
}

interface RawAnswer { status: number, rawHeaders: string[], json: Record<string, { Value?: Array<Record<string, { Value?: unknown[] }>> }> }

/** A POST over node:http, so the answer's header bytes are seen as sent. */
async function rawStow (node: Node, body: Buffer, boundary: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(`${node.url}/dicomweb/studies`, {
      method: 'POST',
      headers: { 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, accept: 'application/dicom+json', authorization: `Bearer ${node.token}`, 'content-length': body.length }
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode!, rawHeaders: res.rawHeaders, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as RawAnswer['json'] }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

const uidsOf = (answer: RawAnswer['json'], tag: string): unknown[] => (answer[tag]?.Value ?? []).map((item) => item['00081155']?.Value?.[0])
const reasonsOf = (answer: RawAnswer['json']): unknown[] => (answer['00081198']?.Value ?? []).map((item) => item['00081197']?.Value?.[0])

async function study (seed: number): Promise<GeneratedStudy> {
  return generateStudy(await tempDir('src'), {
    seed,
    patient: { id: `S${seed}`, issuer: 'HOSP-A', name: 'Bakker^Jan' },
    series: [{ modality: 'CT', instances: 2, rows: 32, columns: 32 }]
  })
}

const toArrayBuffer = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer

describe('STOW-RS answers per part', () => {
  it('a part whose reason quotes raw bytes of the file gets a per-part answer and a printable ASCII Warning; the good part is stored', async () => {
    const node = await serve()
    const ct = await study(81)
    const good = await readFile(ct.instances[0]!.path)
    // The Rows element's VR becomes 0xFF 0x7F: the reader's reason quotes those bytes.
    const hostile = Buffer.from(await readFile(ct.instances[1]!.path))
    const rows = hostile.indexOf(Buffer.from([0x28, 0x00, 0x10, 0x00, 0x55, 0x53]))
    hostile[rows + 4] = 0xFF
    hostile[rows + 5] = 0x7F
    const answer = await rawStow(node, multipart('h1', [
      { type: 'application/dicom', body: good },
      { type: 'application/dicom', body: hostile },
      // A part type with UTF-8 and a control character lands in its reason too.
      { type: 'application/dicom-€\u0007', body: Buffer.from('x') }
    ]), 'h1')
    expect(answer.status).toBe(202)
    expect(uidsOf(answer.json, '00081199')).toEqual([ct.instances[0]!.sopInstanceUID])
    expect(reasonsOf(answer.json)).toEqual([0xC000, 0xC000])
    const warning = answer.rawHeaders[answer.rawHeaders.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === 'warning') + 1]!
    expect(warning).toMatch(/^[\x20-\x7e]+$/)
    expect(warning).toContain('\\xff\\x7f')
    expect(warning).toContain('dicom-\\xe2\\x82\\xac\\x07')
    expect(warning.length).toBeLessThan(4096)
    expect((await node.store.getStudy(ct.studyInstanceUID)).instances.map((i) => i.sopInstanceUID)).toEqual([ct.instances[0]!.sopInstanceUID])
  })

  it('a Warning for many failed parts stays bounded', async () => {
    const node = await serve()
    const parts = Array.from({ length: 40 }, () => ({ type: 'application/dicom', body: Buffer.from(`DICM ${'\u00ff'.repeat(500)}`, 'latin1') }))
    const answer = await rawStow(node, multipart('h2', parts), 'h2')
    expect(answer.status).toBe(409)
    expect(reasonsOf(answer.json)).toHaveLength(40)
    const warning = answer.rawHeaders[answer.rawHeaders.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === 'warning') + 1]!
    expect(warning).toMatch(/^[\x20-\x7e]+$/)
    expect(warning.length).toBeLessThan(4096)
    expect(warning).toContain('and 30 more failed parts')
  })

  it('one request carrying one SOP instance twice, in two encodings (dicomweb-client): both parts succeed, one copy is stored; a re-send succeeds too', async () => {
    const node = await serve()
    const ct = await study(82)
    const original = ct.instances[0]!.path
    const implicit = join(await tempDir('implicit'), 'implicit.dcm')
    const converted = await dcmtk('dcmconv', ['+ti', original, implicit])
    expect(converted.code, converted.stderr).toBe(0)
    const datasets = [toArrayBuffer(await readFile(original)), toArrayBuffer(await readFile(implicit))]
    await node.client.storeInstances({ datasets })
    const entries = await node.store.getStudy(ct.studyInstanceUID)
    expect(entries.instances).toMatchObject([{ sopInstanceUID: ct.instances[0]!.sopInstanceUID, transferSyntaxUID: '1.2.840.10008.1.2.1' }])
    // The same again, per part: each is answered as stored (the held copy stays).
    const answer = await rawStow(node, multipart('h3', [
      { type: 'application/dicom', body: await readFile(implicit) },
      { type: 'application/dicom', body: await readFile(original) }
    ]), 'h3')
    expect(answer.status).toBe(200)
    expect(uidsOf(answer.json, '00081199')).toEqual([ct.instances[0]!.sopInstanceUID, ct.instances[0]!.sopInstanceUID])
    expect((await node.store.getStudy(ct.studyInstanceUID)).instances).toEqual(entries.instances)
  })

  it('never answers 5xx once parts are stored: an audit trail that fails is logged, and a study whose commit fails fails only its parts', async () => {
    const a = await study(83)
    const b = await study(84)
    const node = await serve({
      failingAudit: true,
      store: { beforeIndexCommit: (uid) => { if (uid === b.studyInstanceUID) throw new Error('the index is gone') } }
    })
    const answer = await rawStow(node, multipart('h4', [
      { type: 'application/dicom', body: await readFile(a.instances[0]!.path) },
      { type: 'application/dicom', body: await readFile(b.instances[0]!.path) }
    ]), 'h4')
    expect(answer.status).toBe(202)
    expect(uidsOf(answer.json, '00081199')).toEqual([a.instances[0]!.sopInstanceUID])
    expect(uidsOf(answer.json, '00081198')).toEqual([b.instances[0]!.sopInstanceUID])
    expect(reasonsOf(answer.json)).toEqual([0x0110])
    expect((await node.store.getStudy(a.studyInstanceUID)).instances).toHaveLength(1)
    expect(await node.store.findStudies()).toHaveLength(1)
    // The failed study's file stays only as an orphan, as after a crash before the index commit (fsck --repair).
    expect(await node.store.fsck()).toMatchObject({ missing: [], corrupt: [] })
  })
})
