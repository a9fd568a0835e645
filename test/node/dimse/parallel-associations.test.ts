import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { createDimseService, type DimseService } from '../../../node/dimse/dimse-service.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { generateStudy } from '../../../simulations/generator/index.ts'
import { until } from '../../helpers/patience.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

/*
 * A PACS pushes a study over several associations at once (4-8 is usual). Every association is
 * served while the others are, and their instances are made durable together: one group commit
 * (one index batch) for instances of several associations, each answered only once it is durable.
 */

const tempDir = useTempDirs()
const started: Array<{ service: DimseService, store: StudyStore }> = []

afterEach(async () => {
  for (const s of started.splice(0)) {
    await s.service.stop()
    await s.store.stop()
  }
})

const ASSOCIATIONS = 6
const PER_ASSOCIATION = 3

/** storescu, running until it exits: its exit code and what it printed. */
function storescu (port: number, files: string[]): { done: Promise<{ code: number | null, out: string }>, successes: () => number } {
  const child = spawn('storescu', ['-v', '-aet', 'PACS', '-aec', 'BEELDNET', '127.0.0.1', String(port), ...files])
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  return {
    done: once(child, 'exit').then(([code]) => ({ code: code as number | null, out })),
    successes: () => [...out.matchAll(/Received Store Response \(Success\)/g)].length
  }
}

describe('parallel C-STORE associations', () => {
  it(`serves ${ASSOCIATIONS} storescu associations at once and makes their instances durable in shared group commits, each answered after its commit`, async () => {
    const dir = await tempDir('node')
    const study = await generateStudy(await tempDir('src'), {
      seed: 61_001,
      patient: { id: 'PAR1', issuer: 'HOSP-A', name: 'Bakker^Jan' },
      series: [{ modality: 'CT', instances: ASSOCIATIONS * PER_ASSOCIATION, rows: 32, columns: 32 }]
    })
    // The first commit is held until an instance of every other association waits behind it: only
    // associations served in parallel get there, and the next group must then take them all at once.
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => { release = resolve })
    let first = true
    const atHold: Array<{ waiting: number, committing: number, answered: number }> = []
    const senders: Array<ReturnType<typeof storescu>> = []
    const store: StudyStore = new StudyStore({
      dir,
      beforeIndexCommit: async () => {
        if (!first) return
        first = false
        const pending = (): number => store.commitsPending.waiting + store.commitsPending.committing
        await until(() => pending() >= ASSOCIATIONS, `an instance of each of the ${ASSOCIATIONS} associations in or waiting for the group commit`)
        atHold.push({ ...store.commitsPending, answered: senders.reduce((n, s) => n + s.successes(), 0) })
        await held
      }
    })
    await store.start()
    const service = createDimseService({ store, logger: pino({ level: 'silent' }) }, {
      enabled: true, host: '127.0.0.1', port: 0, aeTitle: 'BEELDNET', acceptCalling: ['PACS'], destinations: []
    })
    await service.start()
    started.push({ service, store })

    const files = study.instances.map((i) => i.path)
    for (let a = 0; a < ASSOCIATIONS; a++) senders.push(storescu(service.port, files.slice(a * PER_ASSOCIATION, (a + 1) * PER_ASSOCIATION)))
    await until(() => atHold.length === 1, 'the first commit to be held with the other associations waiting')
    release()
    const results = await Promise.all(senders.map(async (s) => s.done))

    // One instance of every association was in the first group or waiting behind it, and nothing
    // was answered while none of them was durable yet.
    const [hold] = atHold
    expect(hold!.waiting + hold!.committing).toBe(ASSOCIATIONS)
    expect(hold!.answered).toBe(0)
    for (const r of results) {
      expect(r.code, r.out).toBe(0)
      expect([...r.out.matchAll(/Received Store Response \(([^)]*)\)/g)].map((m) => m[1])).toEqual(Array(PER_ASSOCIATION).fill('Success'))
    }
    const entries = await store.getStudy(study.studyInstanceUID)
    expect(entries.instances.map((i) => i.sopInstanceUID).sort()).toEqual(study.instances.map((i) => i.sopInstanceUID).sort())
    // Those waiting went into one group together: one index batch for all of them.
    expect(store.groupCommits.largestGroup).toBeGreaterThanOrEqual(Math.max(hold!.waiting, hold!.committing))
    expect(store.groupCommits.largestGroup).toBeGreaterThanOrEqual(ASSOCIATIONS / 2)
    expect(store.index.stats.batches).toBe(store.groupCommits.groups)
    expect(store.groupCommits.groups).toBeLessThan(ASSOCIATIONS * PER_ASSOCIATION)
    // Each received file was fsynced by its group commit, before its rename and its answer.
    expect(store.blobs.stats.stagedSyncs).toBe(ASSOCIATIONS * PER_ASSOCIATION)
  })
})
