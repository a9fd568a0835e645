import { createHash } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { pino } from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { trailRecords, type AuditRecord } from '../../../node/audit/audit-log.ts'
import { createNodeApi } from '../../../node/cli/node-api-client.ts'
import { pdiThroughNode } from '../../../node/cli/through-node.ts'
import { nodePaths } from '../../../node/paths.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { generateStudy } from '../../../simulations/generator/index.ts'
import { tokenFor } from '../../helpers/api-caller.ts'
import { runBeeldnet, type CliResult } from '../../helpers/beeldnet-cli.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'
import { dcmmkdirUpdate, dumpDicomdir, importMedium, leaves } from '../../helpers/pdi-medium.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

/*
 * `beeldnet node export <uid> <dir> --pdi`: a medium for a patient's two studies written by the
 * stopped node's CLI (audited), and the same medium through a running node's API.
 */

const tempDir = useTempDirs()
const cli = async (...args: string[]): Promise<CliResult> => runBeeldnet(args)
const sha = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex')
const patient = { id: 'PDI-CLI', issuer: 'ZUID', name: 'Jansen^Anna' }

async function nodeWithStudies (): Promise<{ dir: string, uids: [string, string] }> {
  const dir = join(await tempDir('pdi-cli'), 'data')
  expect((await cli('node', '--data-dir', dir, 'init')).code).toBe(0)
  const src = await tempDir('pdi-cli-src')
  const a = await generateStudy(join(src, 'a'), { seed: 321, patient, series: [{ modality: 'CT', instances: 2, rows: 16, columns: 16 }], reports: { sr: true } })
  const b = await generateStudy(join(src, 'b'), { seed: 322, patient, studyDate: '20190505', series: [{ modality: 'DX', instances: 1, rows: 16, columns: 16 }] })
  expect((await cli('node', '--data-dir', dir, 'import', src)).code).toBe(0)
  return { dir, uids: [a.studyInstanceUID, b.studyInstanceUID] }
}

describe('beeldnet node export --pdi', () => {
  it('writes two studies of a patient as one PDI medium, audited per study, and refuses a folder that is not empty', async () => {
    const { dir, uids } = await nodeWithStudies()
    const medium = join(await tempDir('pdi-cli-out'), 'usb')
    const run = await cli('node', '--data-dir', dir, '--json', 'export', uids[0], medium, '--pdi', '--with-study', uids[1], '--institution', 'Ziekenhuis Zuid')
    expect(run.code, run.stderr).toBe(0)
    const result = JSON.parse(run.stdout) as { studyInstanceUIDs: string[], patients: number, instances: number, files: string[] }
    expect(result).toMatchObject({ studyInstanceUIDs: uids, patients: 1, instances: 4 })
    expect(result.files.map((f) => relative(medium, f)).slice(-3)).toEqual(['README.TXT', 'INDEX.HTM', 'DICOMDIR'])
    expect(await readFile(join(medium, 'README.TXT'), 'utf8')).toContain('by Ziekenhuis Zuid')

    const dumped = await dumpDicomdir(join(medium, 'DICOMDIR'))
    expect(leaves(dumped.tree)).toEqual([
      'PATIENT/STUDY/SERIES/IMAGE DICOM\\PAT00001\\STU00001\\SER00001\\IMG00001',
      'PATIENT/STUDY/SERIES/IMAGE DICOM\\PAT00001\\STU00001\\SER00001\\IMG00002',
      'PATIENT/STUDY/SERIES/SR DOCUMENT DICOM\\PAT00001\\STU00001\\SER00002\\DOC00001',
      'PATIENT/STUDY/SERIES/IMAGE DICOM\\PAT00001\\STU00002\\SER00001\\IMG00001'
    ])
    expect((await dcmmkdirUpdate(medium)).complaints).toEqual([])
    expect((await importMedium(medium)).summary).toMatchObject({ stored: 4, rejected: [] })

    const exports: AuditRecord[] = []
    for await (const r of trailRecords(nodePaths(dir).auditTrail)) if (r.event === 'export') exports.push(r)
    expect(exports.map((r) => r.studyInstanceUID)).toEqual(uids)
    expect(exports[0]).toMatchObject({ outcome: `PDI medium to ${medium}`, patient: { id: 'PDI-CLI', issuer: 'ZUID' }, user: { system: expect.stringMatching(/^beeldnet CLI as /) } })

    const text = await cli('node', '--data-dir', dir, 'export', uids[0], medium, '--pdi')
    expect(text.code).toBe(1)
    expect(text.stderr).toContain('BEELDNET_ERR_MEDIA_TARGET_NOT_EMPTY')
    const plain = await cli('node', '--data-dir', dir, 'export', uids[0], await tempDir('pdi-cli-plain'), '--with-study', uids[1])
    expect(plain.stderr).toContain('BEELDNET_ERR_BAD_REQUEST')
  })

  it('writes the same medium through a running node\'s API, each file byte-identical', async () => {
    const { dir, uids } = await nodeWithStudies()
    const store = new StudyStore({ dir })
    await store.start()
    onTestFinished(async () => { await store.stop() })
    const app = createHttpServer({ store, logger: pino({ level: 'silent' }), users: new UserStore(nodePaths(dir).users) }, { nodeName: 'test', peerId: 'test' })
    onTestFinished(async () => { await app.close() })
    const api = createNodeApi(await listenOnLoopback(app), await tokenFor({ dataDir: dir }))
    const medium = join(await tempDir('pdi-api-out'), 'usb')
    const { files, plan } = await pdiThroughNode(api, uids, medium, { createdAt: new Date() })
    expect(files).toHaveLength(4 + 3)
    for (const m of plan.instances) expect(await sha(join(medium, ...m.fileId))).toBe(m.instance.sha256)
    expect(leaves((await dumpDicomdir(join(medium, 'DICOMDIR'))).tree)).toHaveLength(4)
    expect((await dcmmkdirUpdate(medium)).complaints).toEqual([])
    await writeFile(join(medium, 'extra'), 'x')
    await expect(pdiThroughNode(api, uids, medium, { createdAt: new Date() })).rejects.toMatchObject({ code: 'BEELDNET_ERR_MEDIA_TARGET_NOT_EMPTY' })
  })
})
