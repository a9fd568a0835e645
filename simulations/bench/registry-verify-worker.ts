// Verifies a directory file as a node starting from nothing does (read, parse, check every
// signature and entry), in its own process, so the peak RSS is the verification's alone. The first
// verification is the one that counts (nothing compiled yet, as in a node that has just started);
// the runs after it in the same process are reported beside it as warm. Prints one JSON line.
import { readFile } from 'node:fs/promises'
import type { Root } from '../../protocol/registry/documents.ts'
import { verifyDirectory } from '../../protocol/registry/verify.ts'

// With `parse-only` for the runs, it reads and parses and checks nothing: the floor of the time.
const [directoryPath, rootPath, runsArg] = process.argv.slice(2)
if (runsArg === 'parse-only') {
  const started = process.hrtime.bigint()
  const value = JSON.parse(await readFile(directoryPath!, 'utf8')) as { institutions: unknown[] }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  process.stdout.write(JSON.stringify({ seconds, institutions: value.institutions.length, peakRssMb: process.resourceUsage().maxRSS / 1024 }) + '\n')
  process.exit(0)
}
const root = JSON.parse(await readFile(rootPath!, 'utf8')) as Root
const runs = Math.max(1, Number(runsArg ?? 3))
const maxRssMb = (): number => process.resourceUsage().maxRSS / 1024
/** The floor: node, TypeScript stripping and the verifier's modules, before the file is read. */
const loadedRssMb = maxRssMb()
const seconds: number[] = []
let institutions = 0
let firstPeakRssMb = 0
for (let i = 0; i < runs; i++) {
  const started = process.hrtime.bigint()
  const verified = verifyDirectory(JSON.parse(await readFile(directoryPath!, 'utf8')), { root })
  seconds.push(Number(process.hrtime.bigint() - started) / 1e9)
  institutions = verified.signed.institutions.length
  if (i === 0) firstPeakRssMb = maxRssMb()
}
const warm = seconds.slice(1).sort((a, b) => a - b)
process.stdout.write(JSON.stringify({
  seconds: seconds[0],
  warmSeconds: warm.length === 0 ? null : warm[Math.floor(warm.length / 2)],
  institutions,
  loadedRssMb,
  peakRssMb: firstPeakRssMb,
  peakRssMbAllRuns: maxRssMb()
}) + '\n')
