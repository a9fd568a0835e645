import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { appendFile, readFile, stat, writeFile } from 'node:fs/promises'
import { hostname, userInfo } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, expect, it, onTestFinished } from 'vitest'
import { pino } from 'pino'
import { generateStudy } from '../../../simulations/generator/index.ts'
import { hashOfSigned } from '../../../protocol/canonical.ts'
import { loadIdentityFile } from '../../../protocol/identity.ts'
import { parseConfig } from '../../../node/config/config.ts'
import type { AuditRecord } from '../../../node/audit/audit-log.ts'
import { nodePaths } from '../../../node/paths.ts'
import { verifyEnrolment } from '../../../protocol/registry/verify.ts'
import { createDirectoryService } from '../../../node/directory/directory-service.ts'
import { createTrustStore } from '../../../node/directory/trust-store.ts'
import { makeGovernance, nextDirectory } from '../../helpers/registry-fixtures.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { beeldnetMain, runBeeldnet, type CliResult } from '../../helpers/beeldnet-cli.ts'
import { publishDirectory, publishRoot, startStaticRegistry } from '../directory/static-registry.ts'

const tempDir = useTempDirs()
const main = beeldnetMain
const cli = async (...args: string[]): Promise<CliResult> => runBeeldnet(args)

async function initialised (): Promise<string> {
  const dir = join(await tempDir('node'), 'data')
  const r = await cli('node', '--data-dir', dir, 'init', '--name', 'Test Ziekenhuis')
  expect(r.code).toBe(0)
  return dir
}

const sha = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex')

describe('beeldnet CLI', () => {
  it('has --help on every verb', async () => {
    const verbs = ['init', 'import', 'studies', 'show', 'export', 'delete', 'fsck', 'purge', 'status', 'start', 'enrol', 'directory', 'send', 'query', 'pull', 'transfers']
    const answers = await Promise.all(verbs.map(async (verb) => cli('node', verb, '--help')))
    for (const [i, r] of answers.entries()) {
      expect(r.code, verbs[i]).toBe(0)
      expect(r.stdout).toContain(`Usage: beeldnet node ${verbs[i]!}`)
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

  it('import --json names every file once with its own outcome, also when files share one SOP Instance UID', async () => {
    const dir = await initialised()
    const generated = await tempDir('gen')
    const study = await generateStudy(generated, { seed: 32, series: [{ modality: 'CT', instances: 2, rows: 32, columns: 32 }] })
    const src = await tempDir('src')
    const original = await readFile(study.instances[0]!.path)
    const variant = (last: number): Buffer => Buffer.concat([original.subarray(0, -1), Buffer.from([last])])
    const files: Record<string, Buffer> = {
      'a-original.dcm': original,
      'b-copy.dcm': original,
      'c-variant.dcm': variant(original.at(-1)! ^ 0x01),
      'd-variant.dcm': variant(original.at(-1)! ^ 0x02),
      'e-good.dcm': await readFile(study.instances[1]!.path)
    }
    for (const [name, bytes] of Object.entries(files)) await writeFile(join(src, name), bytes)

    const imported = await cli('node', '--data-dir', dir, '--json', 'import', src)
    const summary = JSON.parse(imported.stdout) as { outcomes: Array<{ path: string, status: string, code?: string }>, rejected: Array<{ path: string, code: string }> }
    expect(summary.outcomes.map((o) => o.path)).toEqual(Object.keys(files).map((name) => join(src, name)))
    expect(summary.outcomes.map((o) => o.status).slice(0, 2)).toEqual(['stored', 'duplicate'])
    expect(summary.outcomes[4]!.status).toBe('stored')
    expect(summary.outcomes[2]!.status).not.toBe('stored')
    expect(summary.outcomes[3]!.status).not.toBe('stored')
    expect(summary.rejected).toEqual(summary.outcomes.filter((o) => o.status === 'rejected').map((o) => ({ path: o.path, code: o.code, message: expect.any(String) })))
    expect(imported.code).toBe(summary.rejected.length > 0 ? 3 : 0)
  })

  it('a stopped node\'s import is audited per study, naming the patient and the operating-system account that ran the CLI; the trail verifies', async () => {
    const dir = await initialised()
    const src = await tempDir('src')
    const first = await generateStudy(join(src, 'a'), { seed: 35, patient: { id: 'P35', issuer: 'ZUID', name: 'Jansen^Anna', bsn: '123456782' }, series: [{ modality: 'CT', instances: 2, rows: 32, columns: 32 }] })
    const second = await generateStudy(join(src, 'b'), { seed: 36, patient: { id: 'P36', issuer: 'ZUID', name: 'Bakker^Piet', bsn: '111222333' }, series: [{ modality: 'MR', instances: 1, rows: 32, columns: 32 }] })
    await writeFile(join(src, 'notes.txt'), 'not an image')
    expect((await cli('node', '--data-dir', dir, 'import', src)).code).toBe(3)
    expect((await cli('node', '--data-dir', dir, 'import', join(src, 'a'))).code).toBe(0)

    const verified = await cli('node', '--data-dir', dir, '--json', 'audit', 'verify')
    expect(verified.code).toBe(0)
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, records: 3 })
    const trail = (await readFile(nodePaths(dir).auditTrail, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as AuditRecord)
    const user = { system: `beeldnet CLI as ${userInfo().username}@${hostname()}` }
    const received = trail.filter((r) => r.event === 'store-received')
    expect(received).toHaveLength(3)
    expect(received.map(({ studyInstanceUID, patient, outcome, user }) => ({ studyInstanceUID, patient, outcome, user }))).toEqual(expect.arrayContaining([
      { studyInstanceUID: first.studyInstanceUID, patient: { bsn: '123456782', id: 'P35', issuer: 'ZUID', name: 'Jansen^Anna' }, outcome: 'import: 2 stored, 0 duplicate(s)', user },
      { studyInstanceUID: second.studyInstanceUID, patient: { bsn: '111222333', id: 'P36', issuer: 'ZUID', name: 'Bakker^Piet' }, outcome: 'import: 1 stored, 0 duplicate(s)', user }
    ]))
    // The second import of the first study received it again: recorded too, as the running node records a re-sent study.
    expect(received[2]).toMatchObject({ studyInstanceUID: first.studyInstanceUID, outcome: 'import: 0 stored, 2 duplicate(s)', user })
  })

  it('enrol pins the root, writes registry.url keeping the comments and sends an enrolment signed by the node key; directory shows what the node trusts', async () => {
    const dir = await initialised()
    const { peerId } = await loadIdentityFile(join(dir, 'identity.key'))
    const gov = makeGovernance(3, 5)
    const registry = await startStaticRegistry()
    try {
      publishRoot(registry, gov.signedRoot)
      const none = await cli('node', '--data-dir', dir, 'directory')
      expect(none.stdout).toContain('no root pinned')

      const wrong = await cli('node', '--data-dir', dir, 'enrol', '--registry', registry.url, '--ura', '12345678', '--name', 'Ziekenhuis Zuid', '--root-hash', 'ab'.repeat(32))
      expect(wrong.code).toBe(1)
      expect(wrong.stderr).toContain('BEELDNET_ERR_ROOT_HASH_MISMATCH')
      expect(registry.enrolments).toEqual([])

      const enrolled = await cli('node', '--data-dir', dir, '--json', 'enrol', '--registry', `${registry.url}/`, '--ura', '12345678', '--name', 'Ziekenhuis Zuid',
        '--department', 'RAD:Radiologie', '--address', '/dns4/zuid.example.nl/tcp/4001', '--root-hash', hashOfSigned(gov.root))
      expect(enrolled.stderr).toBe('')
      expect(enrolled.code).toBe(0)
      const result = JSON.parse(enrolled.stdout) as { id: string, peerId: string, network: string, registry: string }
      expect(result).toMatchObject({ id: 'enr-1', peerId, network: gov.root.network, registry: registry.url })
      const sent = verifyEnrolment(registry.enrolments[0], gov.root.network).signed
      expect(sent).toMatchObject({ ura: '12345678', peerId: result.peerId, departments: [{ code: 'RAD', name: 'Radiologie' }] })
      const config = await readFile(join(dir, 'beeldnet.yaml'), 'utf8')
      expect(parseConfig(config, {}).registry.url).toBe(registry.url)
      expect(config).toContain('# How often to ask the registry for a newer directory.')

      const empty = await cli('node', '--data-dir', dir, 'directory')
      expect(empty.stdout).toMatch(/root +v1/)
      expect(empty.stdout).toMatch(/directory +none yet/)

      const v1 = nextDirectory(gov, undefined, [{ action: 'admit', enrolment: registry.enrolments[0] as never }])
      publishDirectory(registry, gov, v1.envelope)
      const refreshed = await cli('node', '--data-dir', dir, 'directory', '--refresh')
      expect(refreshed.code).toBe(0)
      expect(refreshed.stdout).toContain(`took directory v1 from ${registry.url}`)
      expect(refreshed.stdout).toContain(v1.hash)
      expect(refreshed.stdout).toMatch(/institutions +1/)

      // a directory file that is about to expire, taken in through the service; then the registry goes away
      const v2 = nextDirectory(gov, v1.signed, [{ action: 'renew' }], { issued: new Date(Date.now() - 30 * 86_400_000 + 300).toISOString() })
      const file = join(await tempDir('files'), 'v2.json')
      await writeFile(file, JSON.stringify(v2.envelope))
      const imported = await cli('node', '--data-dir', dir, '--json', 'directory', '--import', file)
      expect(imported.code, imported.stdout).toBe(1)
      expect(JSON.parse(imported.stdout)).toMatchObject({ error: { code: 'BEELDNET_ERR_EXPIRED' } })
      const service = createDirectoryService({ trustStore: createTrustStore({ dir: join(dir, 'trust') }), logger: pino({ level: 'silent' }) }, { pollIntervalSeconds: 0 })
      await service.start()
      const v2Fresh = nextDirectory(gov, v1.signed, [{ action: 'renew' }], { issued: new Date(Date.now() - 30 * 86_400_000 + 500).toISOString() })
      await service.acceptDirectory(v2Fresh.envelope, 'test')
      await service.stop()
      await registry.stop()
      await new Promise((resolve) => setTimeout(resolve, 600))

      const down = await cli('node', '--data-dir', dir, 'directory', '--refresh')
      expect(down.code).toBe(1)
      expect(down.stderr).toContain('BEELDNET_ERR_REGISTRY_UNREACHABLE')
      const shown = await cli('node', '--data-dir', dir, 'directory')
      expect(shown.code).toBe(0)
      expect(shown.stdout).toMatch(/directory +v2/)
      expect(shown.stdout).toContain('EXPIRED')
      expect(shown.stdout).toContain('last error    BEELDNET_ERR_REGISTRY_UNREACHABLE')
      const json = JSON.parse((await cli('node', '--data-dir', dir, '--json', 'directory')).stdout) as { directoryVersion: number, expired: boolean, ageSeconds: number }
      expect(json).toMatchObject({ directoryVersion: 2, expired: true })
      expect(json.ageSeconds).toBeGreaterThan(29 * 86_400)
    } finally {
      await registry.stop()
    }
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
    // A failed assertion must not leave the node running after the suite.
    onTestFinished(() => { if (child.exitCode === null) child.kill('SIGKILL') })
    const logs: Array<Record<string, unknown>> = []
    const url = await new Promise<string>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`node exited early with ${code}`)))
      createInterface({ input: child.stdout }).on('line', (line) => {
        const entry = JSON.parse(line) as Record<string, unknown>
        logs.push(entry)
        if (entry.msg === 'node started') resolve(entry.url as string)
      })
    })
    // Not enrolled yet: the node serves its store, and health says what is missing.
    const healthResponse = await fetch(`${url}/health`)
    expect(healthResponse.status).toBe(503)
    const health = await healthResponse.json() as { status: string, store: { studies: number } }
    expect(health).toMatchObject({
      status: 'degraded', problems: [{ code: 'BEELDNET_ERR_ROOT_NOT_PINNED' }], store: { studies: 1 }, directory: { rootVersion: null, directoryVersion: null }
    })
    // Everything but /health needs a token: the node made one for the CLI on its own machine.
    const anonymous = await fetch(`${url}/api/studies`)
    expect(anonymous.status).toBe(401)
    expect(await anonymous.json()).toMatchObject({ code: 'BEELDNET_ERR_UNAUTHENTICATED' })
    const cliToken = await readFile(join(dir, 'cli-token'), 'utf8')
    expect((await stat(join(dir, 'cli-token'))).mode & 0o777).toBe(0o600)
    const asCli = { headers: { authorization: `Bearer ${cliToken.trim()}` } }
    const listing = await (await fetch(`${url}/api/studies?modality=CT`, asCli)).json() as { studies: Array<{ studyInstanceUID: string }> }
    expect(listing.studies.map((s) => s.studyInstanceUID)).toEqual([study.studyInstanceUID])
    const bad = await fetch(`${url}/api/studies?bsn=12`, asCli)
    expect(bad.status).toBe(400)
    expect(await bad.json()).toMatchObject({ code: 'BEELDNET_ERR_BAD_REQUEST' })
    const missing = await fetch(`${url}/api/studies/1.2.3`, asCli)
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
