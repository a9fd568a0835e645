import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { trailRecords } from '../../../node/audit/audit-log.ts'
import type { BeeldnetNode } from '../../../node/beeldnet-node.ts'
import { nodePaths } from '../../../node/paths.ts'
import { freePort } from '../../../simulations/bench/processes.ts'
import { fetchAs } from '../../helpers/api-caller.ts'
import { runBeeldnet } from '../../helpers/beeldnet-cli.ts'
import { startStorescp } from '../../helpers/dcmtk.ts'
import { importStudy, initPacsNode, PACS_AE, startPacsNode } from '../../helpers/pacs-node.ts'
import { until } from '../../helpers/patience.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

/*
 * The export queue to the PACS on a running node, as hospital IT meets it: the PACS is down when a
 * clinician sends a study, the node is restarted, the PACS comes back; `beeldnet node exports`
 * shows it all, and the study is audited as sent once.
 */

const tempDir = useTempDirs()

interface ExportView { exportId: string, state: string, attempts: number, lastError?: { code: string }, done: { instances: number } }

describe('beeldnet node exports', () => {
  it('a send while the PACS is down is queued, survives a node restart and completes once the PACS is back', async () => {
    const dataDir = await tempDir('export-cli')
    const { pacsPort } = await initPacsNode(dataDir, { pacs: { exportBackoffSeconds: 1, exportBackoffMaxSeconds: 1 } })
    // One HTTP port for both runs of the node.
    const httpPort = String(await freePort())
    const start = async (): Promise<BeeldnetNode> => startPacsNode(dataDir, httpPort)
    const exportsCli = async (node: BeeldnetNode, ...args: string[]): Promise<{ code: number, stdout: string, stderr: string }> =>
      runBeeldnet(['node', '--data-dir', dataDir, '--json', 'exports', ...args, '--node', node.url])

    let node = await start()
    const study = await importStudy(node, dataDir, { seed: 77, patientId: 'AMC-9', instances: 2 })
    const res = await fetchAs({ dataDir })(`${node.url}/api/studies/${study.studyInstanceUID}/pacs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ patientId: 'ISA-9', issuer: 'ISALA' }) })
    expect(res.status).toBe(202)
    const { exportId } = await res.json() as { exportId: string }
    await until(async () => (await node.pacs.exports.get(exportId))?.lastError !== undefined, 'a first attempt to fail while the PACS is down')

    const listed = await exportsCli(node, 'list')
    expect(listed.code, listed.stderr).toBe(0)
    const [shown] = (JSON.parse(listed.stdout) as { exports: ExportView[] }).exports
    expect(shown).toMatchObject({ exportId, lastError: { code: 'BEELDNET_ERR_PACS_UNREACHABLE' } })
    expect(['queued', 'sending']).toContain(shown!.state)
    expect(shown).not.toHaveProperty('local')

    await node.stop()
    node = await start()
    const resumed = await node.pacs.exports.get(exportId)
    expect(['queued', 'sending']).toContain(resumed?.state)
    await mkdir(join(dataDir, 'pacs-in'))
    const pacs = await startStorescp(PACS_AE, join(dataDir, 'pacs-in'), pacsPort)
    onTestFinished(async () => { await pacs.stop() })
    await until(async () => (await node.pacs.exports.get(exportId))?.state === 'complete', 'the export to complete after the restart, once the PACS is back')
    expect(await pacs.settled(2)).toHaveLength(2)

    const text = await runBeeldnet(['node', '--data-dir', dataDir, 'exports', '--node', node.url])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toContain(`${exportId}  complete  to ISALA_PACS  2/2 instances`)
    const cancel = await exportsCli(node, 'cancel', exportId)
    expect(cancel.code).not.toBe(0)
    expect(cancel.stdout + cancel.stderr).toContain('BEELDNET_ERR_EXPORT_STATE')
    const unknown = await exportsCli(node, 'retry', 'no-such-export')
    expect(unknown.stdout + unknown.stderr).toContain('BEELDNET_ERR_EXPORT_NOT_FOUND')

    // IT's monitoring sees the queue too.
    const metrics = await (await fetchAs({ dataDir }, 'it-admin')(`${node.url}/metrics`)).text()
    expect(metrics).toMatch(/beeldnet_pacs_exports\{state="complete"\} 1/)

    const audits = []
    for await (const r of trailRecords(nodePaths(dataDir).auditTrail)) if (r.event === 'export-to-pacs') audits.push(r)
    expect(audits).toEqual([expect.objectContaining({ outcome: 'sent to ISALA_PACS', details: expect.objectContaining({ exportId, localPatientId: 'ISA-9' }) })])
  })

  it('cancels a retrying export and queues it again', async () => {
    const dataDir = await tempDir('export-cli')
    // The next attempt after the first failure is an hour away: the export waits, retrying.
    const { pacsPort } = await initPacsNode(dataDir, { pacs: { exportBackoffSeconds: 3600 } })
    const node = await startPacsNode(dataDir)
    const study = await importStudy(node, dataDir, { seed: 78, patientId: 'AMC-10', instances: 1 })
    const answer = await node.pacs.send(study.studyInstanceUID, { local: { patientId: 'ISA-10', issuer: 'ISALA' } })
    const exportId = answer.status === 'queued' ? answer.export.exportId : ''
    await until(async () => (await node.pacs.exports.get(exportId))?.nextAttemptAt !== undefined, 'the export to wait for its next attempt')

    const cancelled = await runBeeldnet(['node', '--data-dir', dataDir, 'exports', 'cancel', exportId, '--node', node.url])
    expect(cancelled.code, cancelled.stderr).toBe(0)
    expect(cancelled.stdout).toContain(`${exportId}  cancelled to ISALA_PACS  0/1 instances  attempt 1`)
    // Audited once, with who cancelled it (the CLI's caller, not the node itself) and nothing sent.
    const audits = []
    for await (const r of trailRecords(nodePaths(dataDir).auditTrail)) if (r.event === 'export-to-pacs') audits.push(r)
    expect(audits).toEqual([expect.objectContaining({ outcome: 'cancelled', details: expect.objectContaining({ exportId, instances: '0' }) })])
    expect(audits[0]!.user).toEqual({ system: expect.stringMatching(/^API token /) })

    await mkdir(join(dataDir, 'pacs-in'))
    const pacs = await startStorescp(PACS_AE, join(dataDir, 'pacs-in'), pacsPort)
    onTestFinished(async () => { await pacs.stop() })
    const retried = await runBeeldnet(['node', '--data-dir', dataDir, '--json', 'exports', 'retry', exportId, '--node', node.url])
    expect(retried.code, retried.stderr).toBe(0)
    expect(JSON.parse(retried.stdout)).toMatchObject({ exportId, state: 'queued', attempts: 0 })
    await until(async () => (await node.pacs.exports.get(exportId))?.state === 'complete', 'the export queued again from the CLI to complete')
    expect(await pacs.settled(1)).toHaveLength(1)
  })
})
