import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { trailRecords, type AuditRecord } from '../../../node/audit/audit-log.ts'
import { deidentifiedExportCommand } from '../../../node/cli/deidentify-export.ts'
import { readHeader } from '../../../node/dicom/dataset-reader.ts'
import { nodePaths } from '../../../node/paths.ts'
import { createOutput } from '../../../protocol/cli/output.ts'
import { runBeeldnet, type CliResult } from '../../helpers/beeldnet-cli.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { ORIGINAL_STUDY, PATIENT_ID, writeInstance } from '../deidentify/fixtures.ts'

/* `beeldnet node export <uid> <dir> --deidentify ...` on a stopped node: files, record, audit, refusals. */

const tempDir = useTempDirs()
const cli = async (...args: string[]): Promise<CliResult> => runBeeldnet(args)

async function nodeWithStudy (burnedIn?: 'YES'): Promise<string> {
  const dir = join(await tempDir('deid-cli'), 'data')
  expect((await cli('node', '--data-dir', dir, 'init')).code).toBe(0)
  const src = await tempDir('deid-cli-src')
  await writeInstance(join(src, 'a.dcm'), { sopInstanceUID: '1.2.3.50' })
  await writeInstance(join(src, 'b.dcm'), { sopInstanceUID: '1.2.3.51', referenced: '1.2.3.50', ...(burnedIn === undefined ? {} : { burnedIn }) })
  expect((await cli('node', '--data-dir', dir, 'import', src)).code).toBe(0)
  return dir
}

async function exports (dir: string): Promise<AuditRecord[]> {
  const records: AuditRecord[] = []
  for await (const r of trailRecords(nodePaths(dir).auditTrail)) if (r.event === 'export') records.push(r)
  return records
}

describe('beeldnet node export --deidentify', () => {
  it('writes the study de-identified, the record and map only where --record says, and audits the export of the original', async () => {
    const dir = await nodeWithStudy()
    const out = await tempDir('deid-cli-out')
    const recordFile = join(await tempDir('deid-cli-record'), 'record.json')
    const run = await cli('node', '--data-dir', dir, '--json', 'export', ORIGINAL_STUDY, out, '--deidentify', 'basic,retain-dates', '--record', recordFile)
    expect(run.code, run.stderr).toBe(0)
    const result = JSON.parse(run.stdout) as { profile: string, studyInstanceUID: string, files: string[] }
    expect(result.profile).toBe('basic,retain-dates')
    expect(result.files).toHaveLength(2)
    for (const file of result.files) {
      const bytes = await readFile(file)
      expect(bytes.includes(Buffer.from(PATIENT_ID))).toBe(false)
      expect(readHeader(file).dataset.get(0x0020000D)?.value?.toString('latin1').replace(/\0$/, '')).toBe(result.studyInstanceUID)
    }
    const kept = JSON.parse(await readFile(recordFile, 'utf8')) as { record: { studyInstanceUID: string }, map: Array<{ original: string, replacement: string }> }
    expect(kept.record.studyInstanceUID).toBe(result.studyInstanceUID)
    expect(kept.map).toContainEqual({ kind: 'uid', original: ORIGINAL_STUDY, replacement: result.studyInstanceUID })
    expect(await exports(dir)).toEqual([expect.objectContaining({
      studyInstanceUID: ORIGINAL_STUDY,
      outcome: 'de-identified: 2 instance(s)',
      details: expect.objectContaining({ command: 'beeldnet node export --deidentify', deidentification: 'PS3.15 Annex E basic,retain-dates', deidentifiedStudyInstanceUID: result.studyInstanceUID })
    })])
  })

  it('refuses an option it does not apply, a record inside the folder and the combination with --pdi', async () => {
    const dir = await nodeWithStudy()
    const out = await tempDir('deid-cli-out')
    const option = await cli('node', '--data-dir', dir, '--json', 'export', ORIGINAL_STUDY, out, '--deidentify', 'basic,retain-uids')
    expect(JSON.parse(option.stdout)).toMatchObject({ error: { code: 'BEELDNET_ERR_DEIDENTIFY_OPTION' } })
    const inside = await cli('node', '--data-dir', dir, '--json', 'export', ORIGINAL_STUDY, out, '--deidentify', 'basic', '--record', join(out, 'map.json'))
    expect(JSON.parse(inside.stdout)).toMatchObject({ error: { code: 'BEELDNET_ERR_BAD_REQUEST' } })
    // With --pdi (the patient's own medium), refused before anything is read.
    const nothing = { getStudy: async () => { throw new Error('not read') }, openInstance: () => { throw new Error('not read') } }
    await expect(deidentifiedExportCommand(nothing, ORIGINAL_STUDY, out, { deidentify: 'basic', pdi: true }, dir, createOutput(true)))
      .rejects.toMatchObject({ code: 'BEELDNET_ERR_BAD_REQUEST', message: expect.stringContaining('--pdi') })
    expect(await readdir(out)).toEqual([])
  })

  it('refuses burned-in annotation, writing nothing, until --confirm-burned-in names who checked', async () => {
    const dir = await nodeWithStudy('YES')
    const out = await tempDir('deid-cli-out')
    const refused = await cli('node', '--data-dir', dir, '--json', 'export', ORIGINAL_STUDY, out, '--deidentify', 'basic')
    expect(refused.code).not.toBe(0)
    expect(JSON.parse(refused.stdout)).toMatchObject({ error: { code: 'BEELDNET_ERR_BURNED_IN_ANNOTATION' } })
    expect(await readdir(out)).toEqual([])
    const confirmed = await cli('node', '--data-dir', dir, '--json', 'export', ORIGINAL_STUDY, out, '--deidentify', 'basic', '--confirm-burned-in', 'Dr. C. Bakker')
    expect(confirmed.code, confirmed.stderr).toBe(0)
    expect(JSON.parse(confirmed.stdout)).toMatchObject({ burnedInAnnotation: [expect.objectContaining({ original: '1.2.3.51', confirmedBy: 'Dr. C. Bakker' })] })
    expect((await exports(dir)).map((r) => r.outcome)).toEqual(['refused: BEELDNET_ERR_BURNED_IN_ANNOTATION', 'de-identified: 2 instance(s)'])
  })
})
