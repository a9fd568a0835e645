import { writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { formatTable } from '../bench/table.ts'
import { runDay, type DayOptions } from './day.ts'
import { CI_PRESET } from './model.ts'
import { writeTimeToAvailablePlot } from './plot.ts'
import { REPORT_COLUMNS, reportRows } from './report.ts'

/*
 * npm run simulate:national-day [-- --ci] [--json] [--seed 18] [--plot file.svg (and .png)] [--keep]
 *   [--institutions 120] [--studies 3000] [--scale 0.002] [--instance-scale 0.01]
 *   [--processes 3] [--day-seconds 1800] [--drain-seconds 300] [--records file.jsonl]
 *
 * The full day by default; --ci is the small configuration the test suite runs (12 institutions,
 * 60 studies, every fault). README.md in this directory says what each figure means.
 */

const { values } = parseArgs({
  options: {
    ci: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    seed: { type: 'string', default: '18' },
    plot: { type: 'string' },
    records: { type: 'string' },
    institutions: { type: 'string' },
    studies: { type: 'string' },
    scale: { type: 'string' },
    'instance-scale': { type: 'string' },
    processes: { type: 'string' },
    'day-seconds': { type: 'string' },
    'drain-seconds': { type: 'string' }
  }
})

/** The full day and the CI day: what differs is size and how fast the day is replayed. */
export const PRESETS = {
  full: { institutions: 120, studies: 3000, scale: 0.002, instanceScale: 0.01, processes: 3, daySeconds: 1800, drainSeconds: 300 },
  ci: { ...CI_PRESET, scale: 0.0005, instanceScale: 0.01, processes: 2, daySeconds: 120, drainSeconds: 90 }
} as const

const preset = values.ci ? PRESETS.ci : PRESETS.full
const number = (v: string | undefined, fallback: number): number => v === undefined ? fallback : Number(v)
const progress = (line: string): void => { process.stderr.write(`[national-day] ${line}\n`) }
const options: DayOptions = {
  seed: number(values.seed, 18),
  institutions: number(values.institutions, preset.institutions),
  studies: number(values.studies, preset.studies),
  scale: number(values.scale, preset.scale),
  instanceScale: number(values['instance-scale'], preset.instanceScale),
  processes: number(values.processes, preset.processes),
  daySeconds: number(values['day-seconds'], preset.daySeconds),
  drainSeconds: number(values['drain-seconds'], preset.drainSeconds),
  keep: values.keep,
  onProgress: progress
}

const result = await runDay(options)
const { rows, clock } = reportRows(result)
if (values.records !== undefined) {
  // every exchange: the plan's line, what the run saw, and its simulated timing
  const lines = result.records.map((r) => JSON.stringify({ ...r.exchange, index: r.index, study: r.studyInstanceUID, outcome: r.outcome, dispatchError: r.dispatchError, deferredSec: r.deferredSec, byteIdentical: r.byteIdentical, timing: clock.timings[r.index] }))
  await writeFile(values.records, lines.join('\n') + '\n')
}
if (values.plot !== undefined) {
  const png = values.plot.endsWith('.svg') ? values.plot.replace(/\.svg$/, '.png') : undefined
  await writeTimeToAvailablePlot(clock.timings, { institutions: options.institutions, studies: options.studies, seed: options.seed, svgPath: values.plot, ...(png === undefined ? {} : { pngPath: png }) })
  progress(`plot: ${values.plot}${png === undefined ? '' : ` and ${png}`}`)
}
if (values.json) process.stdout.write(JSON.stringify({ rows }) + '\n')
else process.stdout.write(formatTable(rows, REPORT_COLUMNS.filter((c) => rows.some((r) => r[c] !== undefined))) + '\n')
process.exit(0)
