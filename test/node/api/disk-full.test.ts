import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { createMetrics, countRefusals } from '../../../node/api/metrics.ts'
import { AuditLog } from '../../../node/audit/audit-log.ts'
import { importFiles } from '../../../node/dicom/file-import.ts'
import { nodePaths } from '../../../node/paths.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { generateStudy } from '../../../simulations/generator/index.ts'
import { fetchAs } from '../../helpers/api-caller.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { smallStudy, useCleanup } from '../transfers/helpers.ts'

/*
 * A node's HTTP edge while its store's disk is full (statfs injected: the disk presented as nearly
 * full): STOW-RS is answered 507 with failure reason A700 and BEELDNET_ERR_DISK_FULL, /health says
 * DISK_FULL while it refuses and clears once space is free, WADO-RS goes on serving what is held,
 * and the refusals are counted in the metrics.
 */

const tempDir = useTempDirs()
const cleanup = useCleanup()
const GiB = 1024 ** 3

function multipart (boundary: string, parts: Buffer[]): Buffer {
  const chunks: Buffer[] = []
  for (const p of parts) chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), p, Buffer.from('\r\n'))
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return Buffer.concat(chunks)
}

describe('a node whose disk is full, over HTTP', () => {
  it('answers STOW-RS 507 (A700), says DISK_FULL on /health, still serves WADO-RS, and takes STOW-RS again once space is freed', async () => {
    const dir = await tempDir('disk-full-api')
    let free = 100 * GiB
    const store = new StudyStore({ dir, space: { statfs: async () => ({ bsize: 4096, bavail: Math.floor(free / 4096), blocks: 200 * GiB / 4096 }) } })
    await store.start()
    cleanup(async () => store.stop())
    const audit = new AuditLog(join(dir, 'audit', 'trail.jsonl'))
    await audit.start()
    cleanup(async () => audit.stop())
    const metrics = createMetrics()
    countRefusals(metrics, store.space)
    const app = createHttpServer({ store, logger: pino({ level: 'silent' }), audit, metrics, users: new UserStore(nodePaths(dir).users) }, { nodeName: 'test', peerId: 'test' })
    const url = await listenOnLoopback(app)
    cleanup(async () => { await app.close() })
    const call = fetchAs({ dataDir: dir })

    const held = await generateStudy(await tempDir('held'), smallStudy(941))
    await importFiles(held.instances.map((i) => i.path), { store })
    const incoming = await generateStudy(await tempDir('incoming'), smallStudy(942))
    const body = multipart('b1', await Promise.all(incoming.instances.slice(0, 2).map(async (i) => readFile(i.path))))
    const stow = async (): Promise<Response> => call(`${url}/dicomweb/studies`, { method: 'POST', headers: { 'content-type': 'multipart/related; type="application/dicom"; boundary=b1', accept: 'application/dicom+json' }, body })

    // 512 MB free with the default 1 GiB reserve: nothing more is taken.
    free = 512 * 1024 ** 2
    const refused = await stow()
    expect(refused.status).toBe(507)
    const answer = await refused.json() as Record<string, { Value?: Array<Record<string, { Value?: unknown[] }>> }>
    expect(answer['00081198']?.Value?.map((f) => f['00081197']?.Value?.[0])).toEqual([0xA700, 0xA700])
    expect(refused.headers.get('warning')).toContain('BEELDNET_ERR_DISK_FULL')
    expect(await store.index.getStudy(incoming.studyInstanceUID)).toBeUndefined()

    const health = await fetch(`${url}/health`)
    expect(health.status).toBe(503)
    const problems = (await health.json() as { problems: Array<{ code: string, message: string }> }).problems
    expect(problems.map((p) => p.code)).toEqual(['BEELDNET_ERR_DISK_FULL'])
    expect(problems[0]!.message).toMatch(/store\.minFreeBytes/)

    // Serving goes on: the held study's instances, byte for byte.
    const instance = held.instances[0]!
    const wado = await call(`${url}/dicomweb/studies/${held.studyInstanceUID}/series/${instance.seriesInstanceUID}/instances/${instance.sopInstanceUID}`, { headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } })
    expect(wado.status).toBe(200)
    expect(Buffer.from(await wado.arrayBuffer()).includes(await readFile(instance.path))).toBe(true)

    expect(await metrics.metrics()).toMatch(/beeldnet_store_refusals_total\{code="BEELDNET_ERR_DISK_FULL",route="stow"\} 2/)

    // Retention (or a clinician) freed space: the next request is taken, and health clears.
    free = 50 * GiB
    expect((await fetch(`${url}/health`)).status).toBe(200)
    const taken = await stow()
    expect(taken.status).toBe(200)
    expect((await store.getStudy(incoming.studyInstanceUID)).instances).toHaveLength(2)
  })
})
