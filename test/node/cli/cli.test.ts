import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { appendFile, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { generateStudy } from '../../../simulations/generator/index.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

const tempDir = useTempDirs()
const main = join(import.meta.dirname, '..', '..', '..', 'bin', 'beeldnet.ts')

interface CliResult { code: number, stdout: string, stderr: string }

async function cli (...args: string[]): Promise<CliResult> {
  return promisify(execFile)(process.execPath, [main, ...args], { maxBuffer: 16 * 1024 * 1024 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number, stdout: string, stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr })
  )
}

async function initialised (): Promise<string> {
  const dir = join(await tempDir('node'), 'data')
  const r = await cli('node', '--data-dir', dir, 'init', '--name', 'Test Ziekenhuis')
  expect(r.code).toBe(0)
  return dir
}

const sha = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex')

describe('beeldnet CLI', () => {
  it('has --help on every verb', async () => {
    const verbs = ['init', 'import', 'studies', 'show', 'export', 'delete', 'fsck', 'purge', 'status', 'start']
    for (const verb of verbs) {
      const r = await cli('node', verb, '--help')
      expect(r.code, verb).toBe(0)
      expect(r.stdout).toContain(`Usage: beeldnet node ${verb}`)
    }
  })

  it('init writes a commented config and an owner-only Ed25519 identity, and never overwrites one', async () => {
    const dir = join(await tempDir('node'), 'data')
    const r = await cli('node', '--data-dir', dir, '--json', 'init')
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout) as { peerId: string }
    expect(out.peerId).toMatch(/^12D3KooW/)
    expect((await stat(join(dir, 'identity.key'))).mode & 0o777).toBe(0o600)
    const config = await readFile(join(dir, 'beeldnet.yaml'), 'utf8')
    expect(config).toMatch(/^# /m)
    expect(config).toContain('retentionDays: 30')
    const identityBefore = await sha(join(dir, 'identity.key'))

    const again = await cli('node', '--data-dir', dir, 'init')
    expect(again.code).toBe(1)
    expect(again.stderr).toContain('BEELDNET_ERR_ALREADY_INITIALISED')
    expect(await sha(join(dir, 'identity.key'))).toBe(identityBefore)
  })

  it('refuses to work on a directory that holds no node', async () => {
    const r = await cli('node', '--data-dir', await tempDir('empty'), 'studies')
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('BEELDNET_ERR_NOT_INITIALISED')
  })

  it('imports, lists, shows, exports byte-identical and deletes through the verbs', async () => {
    const dir = await initialised()
    const src = await tempDir('src')
    const study = await generateStudy(src, {
      seed: 31,
      studyDate: '20260301',
      patient: { id: 'Z1', issuer: 'ZUID', name: 'Müller^Jürgen', charset: 'latin1', bsn: '123456782' },
      series: [{ modality: 'CT', instances: 3, rows: 32, columns: 32 }],
      reports: { pdf: true }
    })
    await writeFile(join(src, 'junk.bin'), 'not an image')

    const imported = await cli('node', '--data-dir', dir, '--json', 'import', src)
    expect(imported.code).toBe(3) // something was rejected: scripts must notice
    const summary = JSON.parse(imported.stdout) as { stored: number, rejected: Array<{ code: string }> }
    expect(summary.stored).toBe(4)
    expect(summary.rejected.map((r) => r.code)).toEqual(['BEELDNET_ERR_NOT_DICOM'])

    const text = await cli('node', '--data-dir', dir, 'import', src)
    expect(text.stdout).toMatch(/5 file\(s\): 0 stored, 4 duplicate\(s\), 1 rejected/)
    expect(text.stdout).toContain('BEELDNET_ERR_NOT_DICOM')

    const byBsn = JSON.parse((await cli('node', '--data-dir', dir, '--json', 'studies', '--bsn', '123456782')).stdout) as Array<{ studyInstanceUID: string, patient: { name: string } }>
    expect(byBsn.map((s) => s.studyInstanceUID)).toEqual([study.studyInstanceUID])
    expect(byBsn[0]!.patient.name).toBe('Müller^Jürgen')
    expect(JSON.parse((await cli('node', '--data-dir', dir, '--json', 'studies', '--date', '20270101-')).stdout)).toEqual([])
    expect(JSON.parse((await cli('node', '--data-dir', dir, '--json', 'studies', '--modality', 'ct')).stdout)).toHaveLength(1)
    const table = await cli('node', '--data-dir', dir, 'studies')
    expect(table.stdout).toContain('Müller Jürgen')

    const shown = await cli('node', '--data-dir', dir, 'show', study.studyInstanceUID)
    expect(shown.stdout).toContain('BSN 123456782')
    expect(shown.stdout).toMatch(/report: /)

    const out = await tempDir('export')
    const exported = JSON.parse((await cli('node', '--data-dir', dir, '--json', 'export', study.studyInstanceUID, out)).stdout) as { files: string[] }
    expect((await Promise.all(exported.files.map(sha))).sort()).toEqual((await Promise.all(study.instances.map((i) => sha(i.path)))).sort())

    const status = JSON.parse((await cli('node', '--data-dir', dir, '--json', 'status')).stdout) as { studies: number, instances: number }
    expect(status).toMatchObject({ studies: 1, instances: 4 })

    expect((await cli('node', '--data-dir', dir, 'delete', study.studyInstanceUID)).code).toBe(0)
    const gone = await cli('node', '--data-dir', dir, '--json', 'show', study.studyInstanceUID)
    expect(gone.code).toBe(1)
    expect(JSON.parse(gone.stdout)).toMatchObject({ error: { code: 'BEELDNET_ERR_STUDY_NOT_FOUND' } })
  })

  it('fsck reports a corrupt file with exit status 3 and repairs it with --repair', async () => {
    const dir = await initialised()
    const study = await generateStudy(await tempDir('src'), { seed: 32, series: [{ modality: 'MR', instances: 2, rows: 32, columns: 32 }] })
    await cli('node', '--data-dir', dir, 'import', ...study.instances.map((i) => i.path))
    const digest = await sha(study.instances[0]!.path)
    await appendFile(join(dir, 'store', 'blobs', digest.slice(0, 2), digest.slice(2, 4), digest), 'bit rot')

    const check = await cli('node', '--data-dir', dir, 'fsck')
    expect(check.code).toBe(3)
    expect(check.stdout).toContain(`corrupt  ${digest}`)
    expect((await cli('node', '--data-dir', dir, 'fsck', '--repair')).code).toBe(0)
    expect((await cli('node', '--data-dir', dir, 'fsck')).code).toBe(0)
  })

  it('start serves /health and the study listing, and stops cleanly on SIGTERM', async () => {
    const dir = await initialised()
    const study = await generateStudy(await tempDir('src'), { seed: 33, series: [{ modality: 'CT', instances: 2, rows: 32, columns: 32 }] })
    await cli('node', '--data-dir', dir, 'import', ...study.instances.map((i) => i.path))

    const child = spawn(process.execPath, [main, 'node', '--data-dir', dir, 'start'], {
      env: { ...process.env, BEELDNET_HTTP_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    const logs: Array<Record<string, unknown>> = []
    const url = await new Promise<string>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`node exited early with ${code}`)))
      createInterface({ input: child.stdout }).on('line', (line) => {
        const entry = JSON.parse(line) as Record<string, unknown>
        logs.push(entry)
        if (entry.msg === 'node started') resolve(entry.url as string)
      })
    })
    const health = await (await fetch(`${url}/health`)).json() as { status: string, store: { studies: number } }
    expect(health).toMatchObject({ status: 'ok', store: { studies: 1 } })
    const listing = await (await fetch(`${url}/api/studies?modality=CT`)).json() as { studies: Array<{ studyInstanceUID: string }> }
    expect(listing.studies.map((s) => s.studyInstanceUID)).toEqual([study.studyInstanceUID])
    const bad = await fetch(`${url}/api/studies?bsn=12`)
    expect(bad.status).toBe(400)
    expect(await bad.json()).toMatchObject({ code: 'BEELDNET_ERR_BAD_REQUEST' })
    const missing = await fetch(`${url}/api/studies/1.2.3`)
    expect(missing.status).toBe(404)
    expect(await missing.json()).toMatchObject({ code: 'BEELDNET_ERR_STUDY_NOT_FOUND' })

    const exit = new Promise<number | null>((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    expect(await exit).toBe(0)
    expect(logs.some((l) => l.msg === 'node stopped')).toBe(true)
    // the store was closed properly: another process can open it at once
    expect((await cli('node', '--data-dir', dir, 'status')).code).toBe(0)
  })
})
