import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { StudyStore } from '../../../node/store/study-store.ts'
import { generateStudy } from '../../../simulations/generator/index.ts'
import { until } from '../../helpers/patience.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

/*
 * Durability before the answer: a node killed (SIGKILL, as a power cut leaves a process) while a
 * PACS is storing into it holds, after a restart, every instance it answered with success.
 */

const tempDir = useTempDirs()
const open: StudyStore[] = []

afterEach(async () => {
  for (const store of open.splice(0)) await store.stop().catch(() => {})
})

const INSTANCES = 40
const KILL_AFTER = 10

describe('a node killed while a PACS stores into it', () => {
  it('holds after a restart every instance it had answered with success', async () => {
    const dir = await tempDir('node')
    const study = await generateStudy(await tempDir('src'), {
      seed: 62_001,
      patient: { id: 'KILL1', issuer: 'HOSP-A', name: 'de Boer^Kees' },
      series: [{ modality: 'CT', instances: INSTANCES, rows: 64, columns: 64 }]
    })
    const node = spawn(process.execPath, [join(import.meta.dirname, 'fixtures', 'dimse-node.ts'), dir], { stdio: ['ignore', 'pipe', 'inherit'] })
    let said = ''
    node.stdout.on('data', (d: Buffer) => { said += d.toString() })
    const exited = once(node, 'exit')
    await until(() => said.includes('\n'), 'the node to say its DIMSE port')
    const { port } = JSON.parse(said.split('\n')[0]!) as { port: number }

    // Sent one by one, in this order: the n-th success answers the n-th file.
    const files = study.instances.map((i) => i.path)
    const scu = spawn('storescu', ['-v', '-aet', 'PACS', '-aec', 'BEELDNET', '127.0.0.1', String(port), ...files])
    let out = ''
    scu.stdout.on('data', (d: Buffer) => { out += d.toString() })
    scu.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const scuExited = once(scu, 'exit')
    const successes = (): number => [...out.matchAll(/Received Store Response \(Success\)/g)].length
    await until(() => successes() >= KILL_AFTER, `${KILL_AFTER} instances answered with success`)
    node.kill('SIGKILL')
    const [, signal] = await exited as [number | null, string | null]
    expect(signal).toBe('SIGKILL')
    await scuExited

    const answered = successes()
    expect(answered).toBeGreaterThanOrEqual(KILL_AFTER)
    const store = new StudyStore({ dir })
    await store.start()
    open.push(store)
    const held = new Set((await store.getStudy(study.studyInstanceUID)).instances.map((i) => i.sopInstanceUID))
    const lost = study.instances.slice(0, answered).filter((i) => !held.has(i.sopInstanceUID))
    expect(lost.map((i) => i.sopInstanceUID)).toEqual([])
    // What the index holds is whole: every indexed file is there with the right bytes.
    const report = await store.fsck()
    expect(report.missing).toEqual([])
    expect(report.corrupt).toEqual([])
  })
})
