import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { generateStudy } from '../generator/index.ts'
import type { BenchRow } from './table.ts'

/*
 * Ingest benchmark: a 400-instance CT series (512x512, 16-bit) and one 500 MB multi-frame
 * instance, imported by `beeldnet node import`'s code in a child process (for its own peak RSS),
 * against the floor on the same disk in the same run: `cp -r` of the same files, then `sha256sum`
 * over the copies.
 */

const run = promisify(execFile)
const MB = 1024 * 1024
/** The bound for importing the 500 MB instance. */
export const MULTIFRAME_RSS_LIMIT_MB = 150

interface Scenario { name: string, dir: string, files: number, bytes: number }

/** Flushes dirty pages so neither side pays for the other's (or the generator's) writes. */
async function settleDisk (): Promise<void> {
  await run('sync')
}

async function ingest (scenario: Scenario, work: string): Promise<BenchRow> {
  await settleDisk()
  const dataDir = join(work, `store-${scenario.name}`)
  const worker = join(import.meta.dirname, 'ingest-worker.ts')
  const { stdout } = await run(process.execPath, [worker, dataDir, scenario.dir], { maxBuffer: 16 * MB })
  const r = JSON.parse(stdout) as { seconds: number, files: number, bytes: number, stored: number, rejected: number, peakRssMb: number }
  if (r.stored !== scenario.files || r.rejected !== 0) throw new Error(`${scenario.name}: stored ${r.stored} of ${scenario.files}, rejected ${r.rejected}`)
  await rm(dataDir, { recursive: true, force: true })
  return { name: `import ${scenario.name}`, instancesPerS: r.files / r.seconds, mbPerS: r.bytes / MB / r.seconds, peakRssMb: r.peakRssMb, seconds: r.seconds }
}

async function floor (scenario: Scenario, work: string): Promise<BenchRow> {
  const copy = join(work, `copy-${scenario.name}`)
  await settleDisk()
  const started = process.hrtime.bigint()
  // cp then sync: import fsyncs every file, so the floor's copy must reach the disk too to compare.
  await run('bash', ['-c', 'cp -r "$1" "$2" && sync && find "$2" -type f -print0 | xargs -0 sha256sum > /dev/null', 'floor', scenario.dir, copy], { maxBuffer: 64 * MB })
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  await rm(copy, { recursive: true, force: true })
  return { name: `floor cp+sha256sum ${scenario.name}`, instancesPerS: scenario.files / seconds, mbPerS: scenario.bytes / MB / seconds, peakRssMb: null, seconds }
}

export async function runIngestBench (log: (line: string) => void): Promise<BenchRow[]> {
  const work = await mkdtemp(join(tmpdir(), 'beeldnet-bench-ingest-'))
  try {
    log('generating a 400-instance CT series and a 500 MB multi-frame instance ...')
    const ctDir = join(work, 'ct')
    const ct = await generateStudy(ctDir, { seed: 400, series: [{ modality: 'CT', instances: 400, rows: 512, columns: 512 }] })
    const mfDir = join(work, 'multiframe')
    await mkdir(mfDir)
    const mf = await generateStudy(mfDir, { seed: 500, series: [{ modality: 'CT', instances: 1, rows: 512, columns: 512, frames: 1000 }] })
    const scenarios: Scenario[] = [
      { name: 'CT 400 x 512x512', dir: ctDir, files: ct.instances.length, bytes: ct.instances.reduce((n, i) => n + i.size, 0) },
      { name: 'multi-frame 1 x 500 MB', dir: mfDir, files: mf.instances.length, bytes: mf.instances.reduce((n, i) => n + i.size, 0) }
    ]
    const rows: BenchRow[] = []
    for (const scenario of scenarios) {
      log(`measuring ${scenario.name} ...`)
      const floorRow = await floor(scenario, work)
      const ingestRow = await ingest(scenario, work)
      ingestRow.vsFloor = ingestRow.mbPerS / floorRow.mbPerS
      floorRow.vsFloor = 1
      if (scenario.name.startsWith('multi-frame')) {
        ingestRow.rssLimitMb = MULTIFRAME_RSS_LIMIT_MB
        ingestRow.withinLimit = (ingestRow.peakRssMb ?? Infinity) < MULTIFRAME_RSS_LIMIT_MB ? 'yes' : 'NO'
      }
      rows.push(ingestRow, floorRow)
    }
    return rows
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

export const INGEST_COLUMNS = ['instancesPerS', 'mbPerS', 'peakRssMb', 'seconds', 'vsFloor', 'rssLimitMb', 'withinLimit']
