import { execFile, fork, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { isAbsolute, join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { promisify } from 'node:util'

/*
 * What the benchmarks share about processes: worker processes driven over IPC and run as
 * bin/beeldnet runs a node, their peak RSS and CPU from /proc, dcmtk's storescu timed and
 * sampled, free ports, and flushing the disk between measurements.
 */

/** The Node flags and malloc settings bin/beeldnet runs a node with: the benchmark measures what ships. */
export const NODE_PROCESS_FLAGS = ['--max-semi-space-size=1', '--no-wasm-dynamic-tiering', '--no-wasm-tier-up', '--expose-gc']
/** with the compile cache on from the first file, as bin/beeldnet sets it: no TypeScript stripper (amaro) in the worker */
const COMPILE_CACHE = { NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE ?? join(process.env.TMPDIR ?? '/tmp', 'node-compile-cache') }
export const NODE_PROCESS_ENV = process.env.BENCH_TRANSFER_NO_MALLOC_ENV === '1' ? COMPILE_CACHE : { ...COMPILE_CACHE, MALLOC_MMAP_THRESHOLD_: '65536', MALLOC_ARENA_MAX: '2' }

export const MB = 1024 * 1024
export const SESSION_TIMEOUT_MS = 15 * 60_000
export const run = promisify(execFile)

export type WorkerMessage = { type: string, message?: string, [key: string]: unknown }

/** A child process driven over IPC: commands out, typed answers back. */
export class WorkerProcess {
  private readonly inbox: WorkerMessage[] = []
  private waiter: (() => void) | undefined
  private exited: string | undefined
  readonly name: string
  readonly child: ChildProcess

  constructor (name: string, child: ChildProcess) {
    this.name = name
    this.child = child
    child.on('message', (m) => { this.inbox.push(m as WorkerMessage); this.poke() })
    child.on('exit', (code, signal) => { this.exited = `${name} exited (${code ?? signal})`; this.poke() })
  }

  static start (name: string, script: string, args: string[], env: NodeJS.ProcessEnv = process.env): WorkerProcess {
    // The worker's stdout goes to our stderr: stdout is the table's.
    const execArgv = process.env.BENCH_TRANSFER_EXEC_ARGV === undefined ? NODE_PROCESS_FLAGS : process.env.BENCH_TRANSFER_EXEC_ARGV.split(' ').filter((a) => a !== '')
    return new WorkerProcess(name, fork(isAbsolute(script) ? script : join(import.meta.dirname, script), args, { env: { ...NODE_PROCESS_ENV, ...env }, stdio: ['ignore', 2, 2, 'ipc'], execArgv }))
  }

  get pid (): number { return this.child.pid! }

  private poke (): void {
    const waiter = this.waiter
    this.waiter = undefined
    waiter?.()
  }

  send (command: unknown): void {
    this.child.send(command as never)
  }

  /** The next answer of this type (an 'error' answer throws). */
  async next (type: string, timeoutMs = SESSION_TIMEOUT_MS): Promise<WorkerMessage> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const i = this.inbox.findIndex((m) => m.type === type || m.type === 'error')
      if (i >= 0) {
        const [m] = this.inbox.splice(i, 1)
        if (m!.type === 'error') throw new Error(`${this.name}: ${m!.message}`)
        return m!
      }
      if (this.exited !== undefined) throw new Error(this.exited)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`${this.name}: no '${type}' within ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiter = () => { clearTimeout(timer); resolve() }
      })
    }
  }

  async stop (): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = once(this.child, 'exit')
    try { this.send({ cmd: 'stop' }) } catch { /* channel already gone */ }
    const timer = setTimeout(() => { this.child.kill('SIGKILL') }, 15_000)
    await exited
    clearTimeout(timer)
  }
}

let clockTicks: number | undefined

/** Kernel clock ticks per second, for /proc CPU times. */
async function ticks (): Promise<number> {
  clockTicks ??= Number((await run('getconf', ['CLK_TCK']).catch(() => ({ stdout: '100' }))).stdout.trim()) || 100
  return clockTicks
}

/** Peak RSS (VmHWM) and CPU seconds so far of a live process, from /proc. */
export async function procStats (pid: number): Promise<{ peakRssMb: number, cpuS: number }> {
  const [status, stat] = await Promise.all([readFile(`/proc/${pid}/status`, 'utf8'), readFile(`/proc/${pid}/stat`, 'utf8')])
  const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1]
  // Fields after the command name: state is field 3, utime 14 and stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { peakRssMb: Number(kb ?? 0) / 1024, cpuS: (Number(fields[11]) + Number(fields[12])) / await ticks() }
}

export async function cpuOf (...pids: number[]): Promise<number> {
  let total = 0
  for (const pid of pids) total += (await procStats(pid)).cpuS
  return total
}

/** Seconds a `sync` takes: flushes dirty pages so no session pays for another's writes, and times durability. */
export async function sync (): Promise<number> {
  const started = process.hrtime.bigint()
  await run('sync')
  return Number(process.hrtime.bigint() - started) / 1e9
}

export function since (started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9
}

export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

/** Waits until something listens on the TCP port (from /proc/net/tcp*, without connecting to it). */
export async function waitListening (port: number, timeoutMs = 10_000): Promise<void> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0')
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      const text = await readFile(table, 'utf8').catch(() => '')
      // local_address is "ADDR:PORT", state 0A is LISTEN
      if (text.split('\n').some((line) => { const f = line.trim().split(/\s+/); return f[1]?.endsWith(`:${hex}`) === true && f[3] === '0A' })) return
    }
    await delay(20)
  }
  throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`)
}

/** Runs storescu to the end, sampling its /proc stats (it is gone by the time it exits). */
export async function storescu (args: string[], env: NodeJS.ProcessEnv): Promise<{ seconds: number, peakRssMb: number, cpuS: number }> {
  const started = process.hrtime.bigint()
  const child = spawn('storescu', args, { env, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000) })
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>
  let last = { peakRssMb: 0, cpuS: 0 }
  let done = false
  void exited.then(() => { done = true })
  while (!done) {
    last = await procStats(child.pid!).then((s) => ({ peakRssMb: Math.max(last.peakRssMb, s.peakRssMb), cpuS: s.cpuS }), () => last)
    await Promise.race([exited, delay(25)])
  }
  const [code, signal] = await exited
  const seconds = since(started)
  if (code !== 0) throw new Error(`storescu exited with ${code ?? signal}: ${stderr.trim()}`)
  return { seconds, ...last }
}
