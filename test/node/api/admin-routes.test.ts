import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { AuditLog, trailRecords, type AuditRecord } from '../../../node/audit/audit-log.ts'
import { parseConfig } from '../../../node/config/config.ts'
import { createDimseService, type DimseService } from '../../../node/dimse/dimse-service.ts'
import { nodePaths } from '../../../node/paths.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { freePort } from '../../../simulations/bench/processes.ts'
import { fetchAs } from '../../helpers/api-caller.ts'
import { startStorescp, type Storescp } from '../../helpers/dcmtk.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'

/* IT's admin API over real HTTP: the settings in force, C-ECHO to the configured PACS, the trail in pages. */

interface Page { records: AuditRecord[], next: number | null }

describe('the admin API for IT', () => {
  let work: string
  let dataDir: string
  let store: StudyStore
  let audit: AuditLog
  let app: FastifyInstance
  let bare: FastifyInstance
  let url: string
  let bareUrl: string
  let pacs: Storescp
  let strict: DimseService
  let silent: Server
  const silentSockets = new Set<Socket>()
  let admin: ReturnType<typeof fetchAs>
  let clinician: ReturnType<typeof fetchAs>
  let auditor: ReturnType<typeof fetchAs>

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'beeldnet-admin-'))
    dataDir = join(work, 'node')
    await mkdir(join(work, 'pacs'))
    pacs = await startStorescp('PACS_STORE', join(work, 'pacs'))
    const closedPort = await freePort()
    // A DIMSE service that knows no BEELDNET: it rejects the association.
    store = new StudyStore({ dir: join(dataDir, 'store') })
    await store.start()
    strict = createDimseService({ store, logger: pino({ level: 'silent' }) }, { enabled: true, host: '127.0.0.1', port: 0, aeTitle: 'STRICT', acceptCalling: ['SOMEONE'], destinations: [] })
    await strict.start()
    // Accepts the connection, never says a word.
    silent = createServer((socket) => { silentSockets.add(socket); socket.on('close', () => silentSockets.delete(socket)) })
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const silentPort = (silent.address() as { port: number }).port

    const config = parseConfig(`
node: { name: Test hospital }
registry: { url: 'https://registry.example' }
audit: { syslog: 'collector.example:6514' }
transfers: { bulkPatientLimit: 5 }
dimse:
  enabled: true
  port: 11112
  aeTitle: BEELDNET
  acceptCalling: [CT1, MR2]
  destinations:
    - { aeTitle: PACS_STORE, host: 127.0.0.1, port: ${pacs.port} }
    - { aeTitle: GONE, host: 127.0.0.1, port: ${closedPort} }
    - { aeTitle: STRICT, host: 127.0.0.1, port: ${strict.port} }
    - { aeTitle: SILENT, host: 127.0.0.1, port: ${silentPort} }
routing:
  rules:
    - { calledAeTitle: TO_ISALA, to: { ura: '01002154', department: RAD }, reason: verwijzing }
pacs: { destination: PACS_STORE, forward: auto, mappingFile: patients-map.csv }
policy:
  pull:
    - { ura: '12345678', purposes: [treatment], decision: allow }
`, {})

    audit = new AuditLog(nodePaths(dataDir).auditTrail)
    await audit.start()
    for (let i = 1; i <= 7; i++) await audit.record({ event: 'view', outcome: `view ${i}`, user: { system: 'test' } })
    const users = new UserStore(nodePaths(dataDir).users)
    app = createHttpServer({ store, logger: pino({ level: 'silent' }), audit, users, config }, { nodeName: 'test', peerId: 'test' })
    url = await listenOnLoopback(app)
    bare = createHttpServer({ store, logger: pino({ level: 'silent' }), users, config }, { nodeName: 'test', peerId: 'test' })
    bareUrl = await listenOnLoopback(bare)
    admin = fetchAs({ dataDir }, 'it-admin')
    clinician = fetchAs({ dataDir }, 'clinician')
    auditor = fetchAs({ dataDir }, 'auditor')
  })

  afterAll(async () => {
    await app?.close()
    await bare?.close()
    await strict?.stop()
    for (const socket of silentSockets) socket.destroy()
    await new Promise((resolve) => silent?.close(resolve))
    await pacs?.stop()
    await audit?.stop()
    await store?.stop()
    await rm(work, { recursive: true, force: true })
  })

  const echo = async (aeTitle: string): Promise<{ status: number, body: Record<string, unknown> }> => {
    const res = await admin(`${url}/api/admin/pacs/${encodeURIComponent(aeTitle)}/echo`, { method: 'POST' })
    return { status: res.status, body: await res.json() as Record<string, unknown> }
  }

  it('shows the settings in force, and nothing else of the config', async () => {
    const res = await admin(`${url}/api/admin/settings`)
    expect(res.status).toBe(200)
    const text = await res.text()
    expect(JSON.parse(text)).toEqual({
      routing: { rules: [{ calledAeTitle: 'TO_ISALA', to: { ura: '01002154', department: 'RAD' }, reason: 'verwijzing' }] },
      policy: { pull: [{ ura: '12345678', purposes: ['treatment'], decision: 'allow' }] },
      transfers: { bulkPatientLimit: 5 },
      dimse: {
        enabled: true,
        host: '127.0.0.1',
        port: 11112,
        aeTitle: 'BEELDNET',
        acceptCalling: ['CT1', 'MR2'],
        destinations: [
          { aeTitle: 'PACS_STORE', host: '127.0.0.1', port: pacs.port },
          { aeTitle: 'GONE', host: '127.0.0.1', port: expect.any(Number) },
          { aeTitle: 'STRICT', host: '127.0.0.1', port: strict.port },
          { aeTitle: 'SILENT', host: '127.0.0.1', port: expect.any(Number) }
        ]
      },
      pacs: { destination: 'PACS_STORE', forward: 'auto' }
    })
    for (const unasked of ['registry.example', 'collector.example', 'patients-map.csv']) expect(text).not.toContain(unasked)
  })

  it('echoes a PACS that answers, and says in words why one does not', async () => {
    const ok = await echo('PACS_STORE')
    expect(ok.status).toBe(200)
    expect(ok.body).toEqual({ aeTitle: 'PACS_STORE', ok: true, ms: expect.any(Number) })

    const refused = await echo('GONE')
    expect(refused.status).toBe(200)
    expect(refused.body).toEqual({ aeTitle: 'GONE', ok: false, reason: expect.stringMatching(/^connection refused: nothing accepts connections at 127\.0\.0\.1:\d+$/) })

    const rejected = await echo('STRICT')
    expect(rejected.body).toEqual({ aeTitle: 'STRICT', ok: false, reason: expect.stringMatching(/^STRICT rejected the association: the calling AE title BEELDNET is not recognised/) })

    const unknown = await echo('NOBODY')
    expect(unknown.status).toBe(404)
    expect((unknown.body).code).toBe('BEELDNET_ERR_UNKNOWN_AE_TITLE')
  })

  it('gives up on a PACS that never answers after about 5 s', async () => {
    const started = Date.now()
    const silentEcho = await echo('SILENT')
    expect(silentEcho.body).toEqual({ aeTitle: 'SILENT', ok: false, reason: expect.stringMatching(/^timeout: no answer from SILENT at 127\.0\.0\.1:\d+ within 5 s$/) })
    expect(Date.now() - started).toBeGreaterThanOrEqual(4500)
  })

  it('pages the trail newest first, and records each read in it', async () => {
    const page = async (query: string): Promise<Page> => {
      const res = await admin(`${url}/api/admin/audit${query}`)
      expect(res.status, query).toBe(200)
      return await res.json() as Page
    }
    // The read is recorded before the trail is read: the first page starts with it (seq 8).
    const first = await page('?limit=3')
    expect(first.records.map((r) => r.seq)).toEqual([8, 7, 6])
    expect(first.records[0]).toMatchObject({ event: 'audit-read', outcome: 'trail page', user: { system: expect.stringMatching(/^API token .* \(test it-admin\)$/) }, details: { limit: 3 } })
    expect(first.records[1]).toMatchObject({ event: 'view', outcome: 'view 7' })
    expect(first.next).toBe(6)

    const second = await page(`?before=${first.next}&limit=3`)
    expect(second.records.map((r) => r.seq)).toEqual([5, 4, 3])
    expect(second.next).toBe(3)
    const last = await page(`?before=${second.next}&limit=3`)
    expect(last.records.map((r) => r.seq)).toEqual([2, 1])
    expect(last.next).toBeNull()

    // Default page of 100, at most 500.
    expect((await page('')).records.map((r) => r.seq)).toEqual([11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1])
    await page('?limit=100000&before=2')

    const reads: AuditRecord[] = []
    for await (const record of trailRecords(audit.path)) if (record.event === 'audit-read') reads.push(record)
    expect(reads.map((r) => r.details)).toEqual([
      { limit: 3 }, { before: 6, limit: 3 }, { before: 3, limit: 3 }, { limit: 100 }, { before: 2, limit: 500 }
    ])

    for (const bad of ['?limit=0', '?before=abc', '?limit=3&sort=asc']) {
      const res = await admin(`${url}/api/admin/audit${bad}`)
      expect(res.status, bad).toBe(400)
      expect((await res.json() as { code: string }).code).toBe('BEELDNET_ERR_SCHEMA')
    }
  })

  it('answers 404 for the trail on a server that keeps none', async () => {
    const res = await fetchAs({ dataDir }, 'it-admin')(`${bareUrl}/api/admin/audit`)
    expect(res.status).toBe(404)
    expect((await res.json() as { code: string }).code).toBe('BEELDNET_ERR_NO_AUDIT_TRAIL')
  })

  it('is for IT (the trail pages for auditors too): 403 for the others, 401 without a token', async () => {
    const calls: Array<[string, RequestInit, Array<typeof clinician>]> = [
      ['/api/admin/settings', {}, [clinician, auditor]],
      ['/api/admin/pacs/PACS_STORE/echo', { method: 'POST' }, [clinician, auditor]],
      ['/api/admin/audit', {}, [clinician]]
    ]
    const before = (await trailLength())
    for (const [path, init, refused] of calls) {
      for (const other of refused) {
        const res = await other(`${url}${path}`, init)
        expect(res.status, path).toBe(403)
        expect((await res.json() as { code: string }).code).toBe('BEELDNET_ERR_FORBIDDEN')
      }
      const anonymous = await fetch(`${url}${path}`, init)
      expect(anonymous.status, path).toBe(401)
      expect((await anonymous.json() as { code: string }).code).toBe('BEELDNET_ERR_UNAUTHENTICATED')
    }
    // A refused read of the trail is no read: nothing recorded.
    expect(await trailLength()).toBe(before)
    // An auditor reads the trail page by page, as on /api/audit, and that read is recorded.
    expect((await auditor(`${url}/api/admin/audit?limit=5`)).status).toBe(200)
    expect(await trailLength()).toBe(before + 1)
  })

  const trailLength = async (): Promise<number> => {
    let n = 0
    for await (const _ of trailRecords(audit.path)) n++
    return n
  }
})
