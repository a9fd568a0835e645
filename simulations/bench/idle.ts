import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { pino } from 'pino'
import { nodePaths } from '../../node/paths.ts'
import { createRegistry, type Registry } from '../../registry/registry.ts'
import { startLocalNetwork, type LocalNetworkNode } from '../scenarios/local-network.ts'
import { nodeEnv } from '../scenarios/node-env.ts'
import { since } from './processes.ts'
import type { BenchRow } from './table.ts'

/*
 * Idle benchmark: the resident memory of a started node that does nothing, as production runs it
 * (bin/beeldnet node start: the pinned Node, its flags and malloc settings, the compile cache).
 * A registry and two enrolled, admitted nodes holding the test sample studies; the registry stays
 * in this process, each node is its own `bin/beeldnet node start` process. With an empty compile
 * cache one node starts and stops first (coldRssMb: a first start compiles every file and strips its
 * types); then both nodes start on the warm cache (startS: to running.json), idle for
 * BENCH_IDLE_SECONDS (default 10), and each one's VmRSS (rssMb) and VmHWM (peakRssMb) are read from
 * /proc. The row shows the higher node, its RSS also split into anonymous memory (anonMb) and file
 * pages (fileMb: Node's binary and libraries, clean, shared by every node on the machine). The
 * issue's bound is an idle node under 100 MB RSS; a run over it fails. p2pConnections: established TCP connections between the two nodes' libp2p
 * ports when measured (what the nodes were doing, not a condition).
 */

export const IDLE_COLUMNS = ['rssMb', 'anonMb', 'fileMb', 'peakRssMb', 'coldRssMb', 'startS', 'idleS', 'p2pConnections', 'rssLimitMb', 'withinLimit']

/** The bound: resident memory of an idle node. */
export const NODE_IDLE_RSS_LIMIT_MB = 100

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'beeldnet')
type Log = (line: string) => void

interface Memory { rssMb: number, anonMb: number, fileMb: number, peakRssMb: number }

async function memoryOf (pid: number): Promise<Memory> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const mb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024
  return { rssMb: mb('VmRSS'), anonMb: mb('RssAnon'), fileMb: mb('RssFile'), peakRssMb: mb('VmHWM') }
}

/** A node run by bin/beeldnet (sh execs Node, so the child's pid is the node's). */
class NodeProcess {
  readonly name: string
  readonly dataDir: string
  readonly child: ChildProcess
  private exit: string | undefined

  constructor (name: string, dataDir: string, env: NodeJS.ProcessEnv) {
    this.name = name
    this.dataDir = dataDir
    // The node logs to stdout (pino), warnings and all: not the table's business.
    this.child = spawn('sh', [BIN, 'node', 'start', '--data-dir', dataDir], { env, stdio: ['ignore', 'ignore', 'inherit'] })
    this.child.on('exit', (code, signal) => { this.exit = `${name} exited (${code ?? signal}) before it was stopped` })
  }

  get pid (): number { return this.child.pid! }

  /** Until the node has written running.json with its own pid: it serves its API, every part started. */
  async ready (timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (this.exit !== undefined) throw new Error(this.exit)
      const running = await readFile(nodePaths(this.dataDir).running, 'utf8').then((t) => JSON.parse(t) as { pid: number }, () => undefined)
      if (running?.pid === this.pid) return
      if (Date.now() > deadline) throw new Error(`${this.name} not started after ${timeoutMs} ms`)
      await delay(25)
    }
  }

  async stop (): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    // Stopped on purpose: its exit is no longer news.
    this.child.removeAllListeners('exit')
    const exited = once(this.child, 'exit')
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => { this.child.kill('SIGKILL') }, 15_000)
    await exited
    clearTimeout(timer)
  }
}

function p2pPort (node: LocalNetworkNode): number {
  return Number(/\/tcp\/(\d+)/.exec(node.addresses[0] ?? '')?.[1])
}

/** Established TCP connections between two local ports (from /proc/net/tcp*, each counted once). */
async function establishedBetween (a: number, b: number): Promise<number> {
  const hex = (port: number): string => port.toString(16).toUpperCase().padStart(4, '0')
  let count = 0
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '')
    for (const line of text.split('\n')) {
      // local_address rem_address st: "ADDR:PORT", state 01 is ESTABLISHED
      const f = line.trim().split(/\s+/)
      if (f[3] !== '01') continue
      // Each connection is listed from both ends on loopback: count the dialler's end (remote = the listener).
      if (f[2]?.endsWith(`:${hex(a)}`) === true && f[1]?.endsWith(`:${hex(b)}`) !== true) count++
      if (f[2]?.endsWith(`:${hex(b)}`) === true && f[1]?.endsWith(`:${hex(a)}`) !== true) count++
    }
  }
  return count
}

export async function runIdleBench (log: Log): Promise<BenchRow[]> {
  const idleSeconds = Number(process.env.BENCH_IDLE_SECONDS ?? 10)
  const work = await mkdtemp(join(tmpdir(), 'beeldnet-bench-idle-'))
  const nodes: NodeProcess[] = []
  let registry: Registry | undefined
  try {
    log('setting up a registry and two enrolled, admitted nodes with the test samples ...')
    const network = await startLocalNetwork({ dataDir: join(work, 'network'), nodeCount: 2, sampleSize: 'test', pollIntervalSeconds: 300 })
    const [a, b] = network.nodes
    // The nodes move to processes of their own; the registry stays here (on a new port).
    await network.stop()
    registry = createRegistry({ logger: pino({ level: 'silent' }) }, { dir: network.registry.dir, env: process.env, host: '127.0.0.1', port: 0, rateLimitPerMinute: 10_000 })
    await registry.start()
    // A compile cache of this run's own: the first start fills it, as a node's first start after an install does.
    const env = (node: LocalNetworkNode): NodeJS.ProcessEnv => ({
      ...nodeEnv(process.env, { httpPort: 0, registryUrl: registry!.url, pollIntervalSeconds: 300, p2pListen: node.addresses }),
      NODE_COMPILE_CACHE: join(work, 'compile-cache')
    })

    log('a first start with an empty compile cache ...')
    const cold = new NodeProcess(a!.name, a!.dataDir, env(a!))
    nodes.push(cold)
    await cold.ready()
    await delay(idleSeconds * 1000)
    const coldMemory = await memoryOf(cold.pid)
    await cold.stop()
    log(`  ${a!.name}: ${coldMemory.rssMb.toFixed(1)} MB RSS (peak ${coldMemory.peakRssMb.toFixed(1)} MB)`)

    log(`both nodes on the warm compile cache, idle for ${idleSeconds} s ...`)
    const started = process.hrtime.bigint()
    const warm = [new NodeProcess(a!.name, a!.dataDir, env(a!)), new NodeProcess(b!.name, b!.dataDir, env(b!))]
    nodes.push(...warm)
    await Promise.all(warm.map(async (n) => n.ready()))
    const startS = since(started)
    await delay(idleSeconds * 1000)
    const memory = await Promise.all(warm.map(async (n) => memoryOf(n.pid)))
    const connections = await establishedBetween(p2pPort(a!), p2pPort(b!))
    warm.forEach((n, i) => { log(`  ${n.name}: ${memory[i]!.rssMb.toFixed(1)} MB RSS (peak ${memory[i]!.peakRssMb.toFixed(1)} MB)`) })
    const highest = memory.reduce((a, m) => m.rssMb > a.rssMb ? m : a)
    const rssMb = highest.rssMb
    return [{
      name: 'node-idle',
      // Nothing moves: no throughput.
      mbPerS: Number.NaN,
      rssMb,
      anonMb: highest.anonMb,
      fileMb: highest.fileMb,
      peakRssMb: Math.max(...memory.map((m) => m.peakRssMb)),
      coldRssMb: coldMemory.rssMb,
      startS,
      idleS: idleSeconds,
      p2pConnections: connections,
      rssLimitMb: NODE_IDLE_RSS_LIMIT_MB,
      withinLimit: rssMb < NODE_IDLE_RSS_LIMIT_MB ? 'yes' : 'NO'
    }]
  } finally {
    for (const n of nodes) await n.stop()
    await registry?.stop()
    await rm(work, { recursive: true, force: true })
  }
}
