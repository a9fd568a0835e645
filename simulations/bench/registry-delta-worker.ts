// Verifies a one-institution delta as a node holding the version before does, in its own process:
// the held version is verified whole first (not timed), then the delta (median of `runs`). One JSON line.
import { readFile } from 'node:fs/promises'
import { verifyDirectoryDelta } from '../../protocol/registry/delta.ts'
import type { Root } from '../../protocol/registry/documents.ts'
import { verifyDirectory } from '../../protocol/registry/verify.ts'

const [directoryPath, deltaPath, rootPath, runsArg] = process.argv.slice(2)
const root = JSON.parse(await readFile(rootPath!, 'utf8')) as Root
const held = verifyDirectory(JSON.parse(await readFile(directoryPath!, 'utf8')), { root })
const deltaText = await readFile(deltaPath!, 'utf8')
const runs = Number(runsArg ?? 5)
const ms: number[] = []
let version = 0
for (let i = 0; i < runs; i++) {
  const started = process.hrtime.bigint()
  const verified = verifyDirectoryDelta(JSON.parse(deltaText), { roots: new Map([[root.version, root]]), current: root, held: { directory: held.signed, hash: held.hash, tree: held.tree } })
  ms.push(Number(process.hrtime.bigint() - started) / 1e6)
  version = verified.signed.version
}
ms.sort((a, b) => a - b)
process.stdout.write(JSON.stringify({ ms: ms[Math.floor(runs / 2)], version, deltaBytes: Buffer.byteLength(deltaText), peakRssMb: process.resourceUsage().maxRSS / 1024 }) + '\n')
