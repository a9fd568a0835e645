// Verifies a directory file as a node does (read, parse, check every signature and entry) in its
// own process, so the peak RSS is the verification's alone. Prints one JSON line.
import { readFile } from 'node:fs/promises'
import type { Root } from '../../protocol/registry/documents.ts'
import { verifyDirectory } from '../../protocol/registry/verify.ts'

const [directoryPath, rootPath, runsArg] = process.argv.slice(2)
const root = JSON.parse(await readFile(rootPath!, 'utf8')) as Root
const runs = Number(runsArg ?? 3)
const seconds: number[] = []
let institutions = 0
for (let i = 0; i < runs; i++) {
  const started = process.hrtime.bigint()
  const verified = verifyDirectory(JSON.parse(await readFile(directoryPath!, 'utf8')), { root })
  seconds.push(Number(process.hrtime.bigint() - started) / 1e9)
  institutions = verified.signed.institutions.length
}
seconds.sort((a, b) => a - b)
process.stdout.write(JSON.stringify({ seconds: seconds[Math.floor(runs / 2)], institutions, peakRssMb: process.resourceUsage().maxRSS / 1024 }) + '\n')
