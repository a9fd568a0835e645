import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, expect, it, onTestFinished } from 'vitest'
import { pino } from 'pino'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { updateConfigFile } from '../../../node/config/config.ts'
import { nodePaths } from '../../../node/paths.ts'
import { ensureCliToken } from '../../../node/users/cli-token.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { freePort } from '../../../simulations/bench/processes.ts'
import { writeMediaLayout } from '../../../simulations/generator/index.ts'
import { beeldnetMain, runBeeldnet, type CliResult } from '../../helpers/beeldnet-cli.ts'
import { until } from '../../helpers/patience.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

/*
 * A patient's DVD at the IT desk while the node runs: `beeldnet node import` (and studies, show,
 * status, export) go through the running node's API, with the output a stopped node's CLI gives.
 */

const tempDir = useTempDirs()
const beeldnetScript = join(import.meta.dirname, '..', '..', '..', 'bin', 'beeldnet')
const cli = async (...args: string[]): Promise<CliResult> => runBeeldnet(args)
const sha = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex')

async function initialised (label: string): Promise<string> {
  const dir = join(await tempDir(label), 'data')
  expect((await cli('node', '--data-dir', dir, 'init', '--name', 'Test Ziekenhuis')).code).toBe(0)
  return dir
}

/** `beeldnet node start` in a child process, stopped (and killed, on a failed assertion) when the test ends. */
async function started (dir: string, program = [process.execPath, beeldnetMain]): Promise<{ url: string, child: ChildProcess, stop: () => Promise<number | null> }> {
  const child = spawn(program[0]!, [...program.slice(1), 'node', '--data-dir', dir, 'start'], { env: { ...process.env, BEELDNET_HTTP_PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] })
  onTestFinished(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => { reject(new Error(`node exited early with ${code}`)) })
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>
      if (entry.msg === 'node started') resolve(entry.url as string)
    })
  })
  await until(async () => readFile(nodePaths(dir).running, 'utf8').then(() => true, () => false), 'the running node to write running.json')
  const stop = async (): Promise<number | null> => {
    const exit = new Promise<number | null>((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    return exit
  }
  return { url, child, stop }
}

/** A DVD as hospitals burn them: DICOMDIR, images, a viewer; one image it lists is gone (a scratched disc). */
async function dvd (): Promise<{ root: string, studyInstanceUID: string, missing: string, images: string[] }> {
  const root = await tempDir('dvd')
  const { studies } = await writeMediaLayout(root, [{ seed: 91, series: [{ modality: 'CT', instances: 4, rows: 32, columns: 32 }], reports: { sr: true } }])
  await mkdir(join(root, 'VIEWER'))
  await writeFile(join(root, 'VIEWER', 'VIEWER.EXE'), Buffer.alloc(4096, 0x90))
  const series = join(root, 'DICOM', 'PAT00001', 'STU00001', 'SER00001')
  const missing = join(series, 'IMG00004')
  await rm(missing)
  return { root, studyInstanceUID: studies[0]!.studyInstanceUID, missing, images: [1, 2, 3].map((n) => join(series, `IMG0000${n}`)) }
}

describe('beeldnet node import beside a running node', () => {
  it('imports a DVD through the running node with the summary a stopped node gives, and the read-only verbs read through it', async () => {
    const media = await dvd()
    const letter = join(await tempDir('desk'), 'verwijsbrief.txt')
    await writeFile(letter, 'referral letter follows by post')

    // The same media into a stopped node: what IT is used to seeing.
    const stopped = await initialised('stopped')
    const expectedJson = await cli('node', '--data-dir', stopped, '--json', 'import', media.root, letter)
    const expectedText = await cli('node', '--data-dir', stopped + '-text', 'init')
      .then(async () => cli('node', '--data-dir', stopped + '-text', 'import', media.root, letter))

    const dir = await initialised('running')
    const node = await started(dir)
    // It used to answer BEELDNET_ERR_STORE_LOCKED here.
    const json = await cli('node', '--data-dir', dir, '--json', 'import', media.root, letter)
    expect(json.code, json.stderr).toBe(3)
    expect(json.code).toBe(expectedJson.code)
    const summary = JSON.parse(json.stdout) as { stored: number, rejected: Array<{ path: string, code: string }>, missing: string[], outcomes: Array<{ path: string, status: string }> }
    expect(summary).toEqual(JSON.parse(expectedJson.stdout))
    expect(summary).toMatchObject({ stored: 4, rejected: [{ path: letter, code: 'BEELDNET_ERR_NOT_DICOM' }], missing: [media.missing] })
    expect(summary.outcomes.map((o) => o.path)).not.toContain(join(media.root, 'VIEWER', 'VIEWER.EXE'))

    // The text and the progress lines (off a terminal) are those of the stopped node's import, now all duplicates.
    const text = await cli('node', '--data-dir', dir, 'import', media.root, letter)
    expect(text.code).toBe(3)
    expect(text.stdout).toMatch(/5 file\(s\): 0 stored, 4 duplicate\(s\), 1 rejected; 1 study\(ies\)/)
    expect(text.stdout.split('\n').slice(1)).toEqual(expectedText.stdout.split('\n').slice(1))
    expect(text.stdout).toContain(`named by a DICOMDIR, not on the medium (1):\n    ${media.missing}`)
    expect(text.stderr).toContain('importing: 5 to do')
    expect(text.stderr).toContain(`importing: 5/5 (${letter}: BEELDNET_ERR_NOT_DICOM)`)
    expect(text.stderr.split('\n').filter((l) => l.startsWith('importing') || l.startsWith('warning'))).toEqual(expectedText.stderr.split('\n').filter((l) => l.startsWith('importing') || l.startsWith('warning')))

    // The study is in the running node, as its API shows.
    const token = (await readFile(nodePaths(dir).cliToken, 'utf8')).trim()
    const listing = await (await fetch(`${node.url}/api/studies`, { headers: { authorization: `Bearer ${token}` } })).json() as { studies: Array<{ studyInstanceUID: string, numberOfInstances: number }> }
    expect(listing.studies).toMatchObject([{ studyInstanceUID: media.studyInstanceUID, numberOfInstances: 4 }])

    // The read-only verbs, through the node, say what they say on a stopped node.
    const studies = JSON.parse((await cli('node', '--data-dir', dir, '--json', 'studies', '--modality', 'ct')).stdout) as Array<{ studyInstanceUID: string }>
    expect(studies.map((s) => s.studyInstanceUID)).toEqual([media.studyInstanceUID])
    expect((await cli('node', '--data-dir', dir, 'studies')).stdout).toBe((await cli('node', '--data-dir', stopped, 'studies')).stdout)
    const shown = await cli('node', '--data-dir', dir, 'show', media.studyInstanceUID)
    expect(shown.code).toBe(0)
    expect(shown.stdout).toMatch(/contents {2}2 series, 4 instances \(1 report\(s\)\)/)
    const status = JSON.parse((await cli('node', '--data-dir', dir, '--json', 'status')).stdout) as { studies: number, instances: number }
    expect(status).toMatchObject({ studies: 1, instances: 4 })
    const out = await tempDir('export')
    const exported = await cli('node', '--data-dir', dir, '--json', 'export', media.studyInstanceUID, out)
    expect(exported.code, exported.stderr).toBe(0)
    const files = (JSON.parse(exported.stdout) as { files: string[] }).files
    const fromStopped = (JSON.parse((await cli('node', '--data-dir', stopped, '--json', 'export', media.studyInstanceUID, await tempDir('export'))).stdout) as { files: string[] }).files
    expect(files.map((f) => f.slice(out.length))).toEqual(fromStopped.map((f) => f.slice(f.indexOf('/S0'))))
    // Byte-identical to what was stored, the DVD's images among them.
    const hashes = await Promise.all(files.map(sha))
    expect(hashes).toEqual(await Promise.all(fromStopped.map(sha)))
    expect(hashes).toEqual(expect.arrayContaining(await Promise.all(media.images.map(sha))))
    // A verb that changes the store still needs the node stopped.
    expect((await cli('node', '--data-dir', dir, 'delete', media.studyInstanceUID)).stderr).toContain('BEELDNET_ERR_STORE_LOCKED')

    expect(await node.stop()).toBe(0)
    await expect(readFile(nodePaths(dir).running)).rejects.toMatchObject({ code: 'ENOENT' })
    // Stopped, the verbs open the store themselves again.
    expect(JSON.parse((await cli('node', '--data-dir', dir, '--json', 'status')).stdout)).toMatchObject({ studies: 1, instances: 4 })
  })

  it('says the node runs but its API does not answer, asks a node without running.json where its config says, and ignores the file a crashed node left', async () => {
    const dir = await initialised('silent')
    const closed = await freePort()
    // A node that holds the store (here: this test) and whose API is gone.
    const store = new StudyStore({ dir })
    await store.start()
    try {
      await writeFile(nodePaths(dir).running, JSON.stringify({ url: `http://127.0.0.1:${closed}`, pid: process.pid }))
      const answer = await cli('node', '--data-dir', dir, '--json', 'studies')
      expect(answer.code).toBe(1)
      const { error } = JSON.parse(answer.stdout) as { error: { code: string, message: string } }
      expect(error.code).toBe('BEELDNET_ERR_NODE_UNREACHABLE')
      expect(error.message).toContain(`pid ${process.pid}`)
      expect(error.message).toContain(`http://127.0.0.1:${closed}`)

      // A node that wrote no running.json (started some other way) is asked where its config says.
      await rm(nodePaths(dir).running)
      const users = new UserStore(nodePaths(dir).users)
      await ensureCliToken(users, nodePaths(dir).cliToken)
      const app = createHttpServer({ store, logger: pino({ level: 'silent' }), users }, { nodeName: 'test', peerId: 'test' })
      const port = new URL(await listenOnLoopback(app)).port
      try {
        const status = await runBeeldnet(['node', '--data-dir', dir, '--json', 'status'], { BEELDNET_HTTP_PORT: port, BEELDNET_HTTP_HOST: '127.0.0.1' })
        expect(status.code, status.stdout).toBe(0)
        expect(JSON.parse(status.stdout)).toMatchObject({ studies: 0 })
      } finally {
        await app.close()
      }
      expect((await runBeeldnet(['node', '--data-dir', dir, '--json', 'status'], { BEELDNET_HTTP_PORT: String(closed) })).stdout).toContain('BEELDNET_ERR_STORE_LOCKED')
    } finally {
      await store.stop()
    }
    // The pid is alive (this test) but the store is free: the file is stale, the verb works on the store.
    expect((await cli('node', '--data-dir', dir, '--json', 'status')).code).toBe(0)
    // A pid that is gone.
    await writeFile(nodePaths(dir).running, JSON.stringify({ url: `http://127.0.0.1:${closed}`, pid: 2 ** 22 + 1 }))
    expect(JSON.parse((await cli('node', '--data-dir', dir, '--json', 'status')).stdout)).toMatchObject({ studies: 0 })
  })

  it('streams a large file through: neither the CLI nor the node holds it in memory', async () => {
    const dir = await initialised('large')
    // As operators run it: bin/beeldnet, with the node's runtime flags.
    await started(dir, [beeldnetScript])
    const nodePid = (JSON.parse(await readFile(nodePaths(dir).running, 'utf8')) as { pid: number }).pid
    // 400 MB that are not DICOM: staged in full by the node, then refused by their header.
    const large = join(await tempDir('desk'), 'recording.mp4')
    const file = await open(large, 'w')
    const chunk = Buffer.alloc(4 * 1024 * 1024, 0x42)
    for (let i = 0; i < 100; i++) await file.write(chunk)
    await file.close()

    const cliRun = spawn(beeldnetScript, ['node', '--data-dir', dir, '--json', 'import', large], { stdio: ['ignore', 'pipe', 'pipe'] })
    onTestFinished(() => { if (cliRun.exitCode === null) cliRun.kill('SIGKILL') })
    let stdout = ''
    cliRun.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    const exited = new Promise<number | null>((resolve) => cliRun.once('exit', resolve))
    // VmHWM is the process's peak resident memory so far: the last reading before the exit is its peak.
    const peakMiB = async (pid: number): Promise<number | undefined> => {
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined)
      const kb = status === undefined ? undefined : /VmHWM:\s+(\d+) kB/.exec(status)?.[1]
      return kb === undefined ? undefined : Number(kb) / 1024
    }
    let cliPeak = 0
    let running = true
    void exited.then(() => { running = false })
    await until(async () => {
      cliPeak = Math.max(cliPeak, await peakMiB(cliRun.pid!) ?? 0)
      return !running
    }, 'the CLI to send 400 MB')
    expect(await exited).toBe(3)
    expect(JSON.parse(stdout)).toMatchObject({ files: 1, bytes: 0, rejected: [{ path: large, code: 'BEELDNET_ERR_NOT_DICOM' }] })
    expect(cliPeak).toBeGreaterThan(0)
    expect(cliPeak).toBeLessThan(200)
    expect(await peakMiB(nodePid)).toBeLessThan(200)
  })

  it('judges copies by the config\'s duplicates policy the same on a stopped and on a running node', async () => {
    const media = await dvd()
    const original = await readFile(media.images[0]!)
    // The same instance with other pixel bytes: a copy store.duplicates decides about.
    const variant = join(await tempDir('desk'), 'variant.dcm')
    await writeFile(variant, Buffer.concat([original.subarray(0, -1), Buffer.from([original.at(-1)! ^ 0x01])]))
    const answers: Array<{ stored: number, duplicates: number, rejected: Array<{ path: string, code: string }> }> = []
    for (const running of [false, true]) {
      const dir = await initialised(running ? 'running' : 'stopped')
      await updateConfigFile(nodePaths(dir).config, ['store', 'duplicates'], 'refuse')
      const node = running ? await started(dir) : undefined
      expect((await cli('node', '--data-dir', dir, 'import', media.root)).code).toBe(0)
      const again = await cli('node', '--data-dir', dir, '--json', 'import', variant)
      expect(again.code, again.stderr).toBe(3)
      answers.push(JSON.parse(again.stdout) as typeof answers[number])
      if (node !== undefined) expect(await node.stop()).toBe(0)
    }
    expect(answers[0]).toMatchObject({ stored: 0, rejected: [{ path: variant, code: 'BEELDNET_ERR_INSTANCE_CONFLICT' }] })
    expect(answers[1]).toEqual(answers[0])
  })
})
