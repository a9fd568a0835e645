// `npm run bench [name...] [--json]`: the benchmarks (all, or those named), one table on stdout,
// or with --json the same figures as {"rows":[...]}. Progress goes to stderr.
import { DICOM_COLUMNS, runDicomBench } from './dicom.ts'
import { IDLE_COLUMNS, runIdleBench } from './idle.ts'
import { INGEST_COLUMNS, runIngestBench } from './ingest.ts'
import { REGISTRY_COLUMNS, runRegistryBench } from './registry.ts'
import { formatTable, type BenchRow } from './table.ts'
import { TRANSFER_COLUMNS, runTransferBench } from './transfer.ts'
import { WAN_COLUMNS, runWanBench } from './wan.ts'

const benches: Record<string, { columns: string[], run: (log: (line: string) => void) => Promise<BenchRow[]> }> = {
  ingest: { columns: INGEST_COLUMNS, run: runIngestBench },
  registry: { columns: REGISTRY_COLUMNS, run: runRegistryBench },
  transfer: { columns: TRANSFER_COLUMNS, run: runTransferBench },
  dicom: { columns: DICOM_COLUMNS, run: runDicomBench },
  wan: { columns: WAN_COLUMNS, run: runWanBench },
  idle: { columns: IDLE_COLUMNS, run: runIdleBench }
}

const args = process.argv.slice(2)
const json = args.includes('--json')
const names = args.filter((a) => !a.startsWith('--'))
const unknown = names.filter((n) => benches[n] === undefined)
if (unknown.length > 0) throw new Error(`unknown benchmark(s) ${unknown.join(', ')}; known: ${Object.keys(benches).join(', ')}`)

const rows: BenchRow[] = []
const columns = new Set<string>()
// wan needs root (it makes network namespaces): it runs only when named.
for (const name of names.length > 0 ? names : Object.keys(benches).filter((n) => n !== 'wan')) {
  const bench = benches[name]!
  rows.push(...await bench.run((line) => process.stderr.write(`[${name}] ${line}\n`)))
  for (const c of bench.columns) columns.add(c)
}
if (json) process.stdout.write(JSON.stringify({ rows }) + '\n')
else process.stdout.write(formatTable(rows, [...columns]) + '\n')
// A bound the issue sets (peak RSS) that is broken fails the run.
if (rows.some((r) => r.withinLimit === 'NO')) process.exitCode = 1
