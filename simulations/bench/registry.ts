import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { gzipSync } from 'node:zlib'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { Result as LoadResult } from 'autocannon'
import { generateKeyPair, signDocument } from '../../protocol/keys.ts'
import { envelopeOf, headerOf, type SignedDirectory, type SignedRoot } from '../../protocol/registry/documents.ts'
import { directoryHash } from '../../protocol/registry/verify.ts'
import { initRegistry } from '../../registry/init.ts'
import { registryPaths } from '../../registry/paths.ts'
import { RegistryStore } from '../../registry/store/registry-store.ts'
import { buildDirectoryCandidate } from '../../protocol/registry/changes.ts'
import { makeDirectoryDelta } from '../../protocol/registry/delta.ts'
import { largeDirectory } from './large-directory.ts'
import type { BenchRow } from './table.ts'

/*
 * Registry benchmark: a directory of 10,000 institutions with 20,000 node keys signed by all five
 * governance members. How long a node takes to verify it (in its own process, for its peak RSS),
 * how big it is on the wire, and how many requests a second the registry serves to 100 concurrent
 * clients, against the floor in the same run: Node's bare http server sending the same gzipped bytes.
 */

export const REGISTRY_COLUMNS = ['mbPerS', 'peakRssMb', 'ms', 'wireKb', 'reqPerS', 'p99Ms', 'errors', 'ofFloor', 'target']

/** Issue 18's targets, shown beside the figures. */
const TARGETS = { verify: '< 100 ms, < 150 MB', delta: '< 10 ms', onboard: 'linear in the change' }
const ONBOARD = 1000

const row = (name: string, figures: Partial<BenchRow>): BenchRow =>
  ({ name, mbPerS: 0, peakRssMb: null, ms: null, wireKb: null, reqPerS: null, p99Ms: null, errors: null, ofFloor: null, target: null, ...figures })

const MB = 1024 * 1024
const INSTITUTIONS = 10_000
const CLIENTS = 100
const SECONDS = 10
const run = promisify(execFile)

/** What registry-verify-worker.ts prints. */
interface VerifyFigures { seconds: number, warmSeconds: number | null, institutions: number, loadedRssMb: number, peakRssMb: number, peakRssMbAllRuns: number }
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** Starts `args` under Node and waits for the line that says it is listening. */
async function startChild (args: string[], env: NodeJS.ProcessEnv, listening: (line: string) => string | undefined): Promise<{ child: ChildProcess, url: string }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } })
  const lines = createInterface({ input: child.stdout! })
  for await (const line of lines) {
    const url = listening(line)
    if (url !== undefined) {
      // Keep reading so a chatty child never blocks on a full pipe.
      lines.on('line', () => {})
      return { child, url }
    }
  }
  throw new Error(`${args.join(' ')} exited before it was listening`)
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  await exited
}

/** Peak resident set of a live process, from /proc (VmHWM). */
async function peakRssMbOf (pid: number): Promise<number | null> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1]
  return kb === undefined ? null : Number(kb) / 1024
}

/** Bytes on the wire for one gzip request. */
async function wireBytes (url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
      if (res.headers['content-encoding'] !== 'gzip') reject(new Error(`${url} did not answer gzip`))
      let n = 0
      res.on('data', (c: Buffer) => { n += c.length })
      res.on('end', () => resolve(n))
    }).on('error', reject).end()
  })
}

async function load (name: string, url: string, pid: number): Promise<BenchRow & { reqPerS: number }> {
  const { stdout } = await run(process.execPath, [join(import.meta.dirname, 'http-load-worker.ts'), url, String(CLIENTS), String(SECONDS)], { maxBuffer: 16 * MB })
  const result = JSON.parse(stdout) as LoadResult
  // A few connection errors under overload are reported; many, or any refusal, void the figure.
  if (result.non2xx > 0 || result.errors > result.requests.total / 100) throw new Error(`${name}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx answers`)
  return {
    name,
    mbPerS: result.throughput.average / MB,
    peakRssMb: await peakRssMbOf(pid),
    ms: result.latency.average,
    wireKb: null,
    reqPerS: result.requests.average,
    p99Ms: result.latency.p99,
    errors: result.errors,
    ofFloor: null
  }
}

export async function runRegistryBench (log: (line: string) => void): Promise<BenchRow[]> {
  const work = await mkdtemp(join(tmpdir(), 'beeldnet-bench-registry-'))
  const children: ChildProcess[] = []
  try {
    const network = 'beeldnet-bench'
    const governance = Array.from({ length: 5 }, () => generateKeyPair())
    const dir = join(work, 'registry')
    const init = await initRegistry(dir, {
      network, threshold: 3, governanceKeys: governance.map((k, i) => ({ publicKey: k.publicKey, name: `lid ${i + 1}` })), port: 0, rateLimitPerMinute: 0
    })
    const root: SignedRoot = { signed: init.root, signatures: governance.map((k) => signDocument(init.root, k)) }
    log(`generating ${INSTITUTIONS} institutions with ${2 * INSTITUTIONS} node keys, signed by 5 ...`)
    const directory = largeDirectory(network, INSTITUTIONS, 2)
    const envelope: SignedDirectory = envelopeOf(directory, governance.map((k) => signDocument(headerOf(directory), k)))
    const store = new RegistryStore({ location: registryPaths(dir).db })
    await store.start()
    await store.publish({
      root,
      directory: {
        envelope,
        index: { version: 1, hash: directoryHash(directory), issued: directory.issued, expires: directory.expires, signers: governance.map((k) => k.keyid) }
      },
      proposals: [],
      enrolments: []
    })
    await store.stop()

    const directoryFile = join(work, 'directory.json')
    const json = JSON.stringify(envelope)
    await writeFile(directoryFile, json)
    await writeFile(join(work, 'root.json'), JSON.stringify(init.root))
    log('verifying it as a node starting from nothing does: 3 processes, each verifying it 3 times (the first cold) ...')
    const verifications: VerifyFigures[] = []
    for (let p = 0; p < 3; p++) {
      const { stdout } = await run(process.execPath, [join(import.meta.dirname, 'registry-verify-worker.ts'), directoryFile, join(work, 'root.json'), '3'])
      const figures = JSON.parse(stdout) as VerifyFigures
      if (figures.institutions !== INSTITUTIONS) throw new Error(`verified ${figures.institutions} institutions, not ${INSTITUTIONS}`)
      verifications.push(figures)
    }
    const verified = { seconds: median(verifications.map((v) => v.seconds)), warmSeconds: median(verifications.map((v) => v.warmSeconds!)), peakRssMb: median(verifications.map((v) => v.peakRssMb)), peakRssMbAllRuns: median(verifications.map((v) => v.peakRssMbAllRuns)), loadedRssMb: median(verifications.map((v) => v.loadedRssMb)) }
    const parseOnly: number[] = []
    for (let p = 0; p < 3; p++) {
      const { stdout } = await run(process.execPath, [join(import.meta.dirname, 'registry-verify-worker.ts'), directoryFile, join(work, 'root.json'), 'parse-only'])
      parseOnly.push((JSON.parse(stdout) as { seconds: number }).seconds)
    }
    log(`verify: first ${verifications.map((v) => (v.seconds * 1000).toFixed(0)).join(', ')} ms, warm ${verifications.map((v) => (v.warmSeconds! * 1000).toFixed(0)).join(', ')} ms, peak ${verifications.map((v) => v.peakRssMb.toFixed(0)).join(', ')} MB, modules loaded ${verifications.map((v) => v.loadedRssMb.toFixed(0)).join(', ')} MB`)

    // v2 suspends one institution: a node holding v1 takes it as a delta.
    const v2 = buildDirectoryCandidate(directory, init.root, [{ action: 'suspend', ura: directory.institutions[4_321]!.ura, reason: 'audit' }], { issued: new Date().toISOString(), validityDays: 30 })
    const deltaFile = join(work, 'delta.json')
    await writeFile(deltaFile, JSON.stringify(makeDirectoryDelta(directory, v2, [{ signed: headerOf(v2), signatures: governance.slice(0, 3).map((k) => signDocument(headerOf(v2), k)) }])))
    log('verifying a one-institution delta as a node holding v1 does (median of 5, own process) ...')
    const delta = JSON.parse((await run(process.execPath, [join(import.meta.dirname, 'registry-delta-worker.ts'), directoryFile, deltaFile, join(work, 'root.json'), '5'])).stdout) as { ms: number, version: number, deltaBytes: number, peakRssMb: number }
    if (delta.version !== 2) throw new Error(`the delta reached v${delta.version}, not v2`)
    const onboarding: BenchRow[] = []
    for (const base of [1_000, INSTITUTIONS]) {
      log(`onboarding ${ONBOARD} institutions in one governance round on a registry of ${base} (own process) ...`)
      const { stdout: out } = await run(process.execPath, [join(import.meta.dirname, 'registry-onboard-worker.ts'), String(base), String(ONBOARD)], { maxBuffer: 16 * MB })
      const o = JSON.parse(out) as { seconds: number, submitSeconds: number, peakRssMb: number }
      onboarding.push(row(`onboard ${ONBOARD} institutions (${ONBOARD} admit proposals, freeze, 3 signatures, publish) on ${base}`, { ms: o.seconds * 1000, peakRssMb: o.peakRssMb, target: TARGETS.onboard }))
    }

    log('starting the registry ...')
    const registry = await startChild([join(import.meta.dirname, '..', '..', 'bin', 'beeldnet.ts'), 'registry', '--data-dir', dir, 'start'],
      { BEELDNET_REGISTRY_RATE_LIMIT_PER_MINUTE: '0' },
      (line) => { const e = JSON.parse(line) as { msg?: string, url?: string }; return e.msg === 'registry started' ? e.url : undefined })
    children.push(registry.child)
    const wire = await wireBytes(`${registry.url}/v1/directory`)
    const gzFile = join(work, 'directory.json.gz')
    await writeFile(gzFile, gzipSync(json))
    const floorServer = await startChild([join(import.meta.dirname, 'static-bytes-server.ts'), gzFile], {}, (line) => line.startsWith('http://') ? line.trim() : undefined)
    children.push(floorServer.child)

    log(`${CLIENTS} clients for ${SECONDS} s each: the registry's /v1/directory, the floor, the registry's /v1/timestamp ...`)
    const served = await load(`registry GET /v1/directory gzip, ${CLIENTS} clients`, `${registry.url}/v1/directory`, registry.child.pid!)
    const floor = await load(`floor node:http same gzip bytes, ${CLIENTS} clients`, floorServer.url, floorServer.child.pid!)
    const timestamp = await load(`registry GET /v1/timestamp, ${CLIENTS} clients`, `${registry.url}/v1/timestamp`, registry.child.pid!)
    served.wireKb = wire / 1024
    floor.wireKb = (await readFile(gzFile)).length / 1024
    served.ofFloor = `${Math.round(100 * served.reqPerS / floor.reqPerS)} %`
    return [
      {
        name: `verify directory: ${INSTITUTIONS} institutions, ${2 * INSTITUTIONS} keys, 5 signatures; a node starting from nothing (first in a fresh process)`,
        mbPerS: Buffer.byteLength(json) / MB / verified.seconds,
        peakRssMb: verified.peakRssMb,
        ms: verified.seconds * 1000,
        wireKb: Buffer.byteLength(json) / 1024,
        reqPerS: null,
        p99Ms: null,
        errors: null,
        ofFloor: null,
        target: TARGETS.verify
      },
      row('the same directory verified again in that process (2nd and 3rd: compiled, warm)', { mbPerS: Buffer.byteLength(json) / MB / verified.warmSeconds, ms: verified.warmSeconds * 1000, peakRssMb: verified.peakRssMbAllRuns }),
      row('floor: the verifier\'s process before it reads the file (node, TypeScript stripping, zod, its modules)', { peakRssMb: verified.loadedRssMb }),
      row('floor: reading and JSON.parse alone, first in a fresh process (no check)', { ms: median(parseOnly) * 1000 }),
      row('verify a one-institution delta, holding v1 (its trie kept)', { ms: delta.ms, peakRssMb: delta.peakRssMb, wireKb: delta.deltaBytes / 1024, target: TARGETS.delta }),
      ...onboarding,
      served,
      floor,
      timestamp
    ]
  } finally {
    for (const child of children) await stopChild(child)
    await rm(work, { recursive: true, force: true })
  }
}
