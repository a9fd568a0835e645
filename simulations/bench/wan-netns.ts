import { fork } from 'node:child_process'
import { readdir, readFile, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { NODE_PROCESS_ENV, NODE_PROCESS_FLAGS, run, WorkerProcess } from './processes.ts'

/*
 * bench:wan's two hosts: network namespaces made for one run, joined by a veth pair whose both
 * ends are shaped by tbf (the line), plus a management veth from each to the benchmark's own
 * namespace (the registry and the node APIs; not shaped, not delayed, and no route between the two
 * hosts through it: the benchmark's namespace does not forward). Names carry the benchmark's pid,
 * so a later run can tell a leftover of a dead run (removed) from a running one (refused).
 *
 *   benchmark ns:  mgmt A root end 10.213.1.1/30, mgmt B root end 10.213.2.1/30 (registry on .1.1)
 *   host A (sender):   wan0 10.213.0.1/30, mgmt0 10.213.1.2/30
 *   host B (receiver): wan0 10.213.0.2/30, mgmt0 10.213.2.2/30, route to 10.213.1.1 via 10.213.2.1
 */

export const WAN = {
  a: { wan: '10.213.0.1', mgmt: '10.213.1.2' },
  b: { wan: '10.213.0.2', mgmt: '10.213.2.2' },
  /** where the benchmark's namespace is reached from both hosts (the registry listens here) */
  control: '10.213.1.1'
} as const

const PREFIX = 'bnw'

export interface Link {
  /** line rate in Mbit/s (10^6 bits), each direction */
  lineMbit: number
  /** round trip the delay forwarders add, ms */
  rttMs: number
}

/** tbf's parameters for a line rate (why these: wan.ts's header). */
export function tbfFor (lineMbit: number): { burstBytes: number, limitBytes: number } {
  const bytesPerMs = lineMbit * 1e6 / 8 / 1000
  const burstBytes = Math.max(64 * 1024, Math.ceil(bytesPerMs))
  return { burstBytes, limitBytes: burstBytes + Math.ceil(5 * bytesPerMs) }
}

async function ip (...args: string[]): Promise<string> {
  return (await run('ip', args)).stdout
}

async function inNs (ns: string, ...command: string[]): Promise<string> {
  return (await run('ip', ['netns', 'exec', ns, ...command])).stdout
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Kills what still runs in a namespace (only ours are there) and deletes it with its interfaces. */
async function removeNamespace (ns: string): Promise<void> {
  const pids = (await ip('netns', 'pids', ns).catch(() => '')).split('\n').filter((p) => p.trim() !== '').map(Number)
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
  for (let i = 0; i < 50 && pids.some(alive); i++) await delay(20)
  await ip('netns', 'del', ns).catch(() => {})
}

export class WanHosts {
  readonly a: string
  readonly b: string
  private readonly rootEnds: string[]
  private removed = false

  private constructor (tag: string) {
    this.a = `${tag}a`
    this.b = `${tag}b`
    this.rootEnds = [`${tag}ma`, `${tag}mb`]
  }

  /** Makes the two hosts; a leftover of a dead run goes first, a running one is refused. */
  static async create (): Promise<WanHosts> {
    for (const line of (await ip('netns', 'list')).split('\n')) {
      const match = new RegExp(`^(${PREFIX}(\\d+)[ab])\\b`).exec(line)
      if (match === null) continue
      if (alive(Number(match[2])) && Number(match[2]) !== process.pid) throw new Error(`another bench:wan (pid ${match[2]}) is running: network namespace ${match[1]}`)
      await removeNamespace(match[1]!)
    }
    const hosts = new WanHosts(`${PREFIX}${process.pid}`)
    try {
      await hosts.build()
    } catch (err) {
      await hosts.remove()
      throw err
    }
    return hosts
  }

  private async build (): Promise<void> {
    const tag = `${PREFIX}${process.pid}`
    await ip('netns', 'add', this.a)
    await ip('netns', 'add', this.b)
    await ip('link', 'add', `${tag}da`, 'type', 'veth', 'peer', 'name', `${tag}db`)
    await ip('link', 'add', `${tag}ma`, 'type', 'veth', 'peer', 'name', `${tag}na`)
    await ip('link', 'add', `${tag}mb`, 'type', 'veth', 'peer', 'name', `${tag}nb`)
    for (const [ns, data, mgmt, side] of [[this.a, `${tag}da`, `${tag}na`, WAN.a], [this.b, `${tag}db`, `${tag}nb`, WAN.b]] as const) {
      await ip('link', 'set', data, 'netns', ns, 'name', 'wan0')
      await ip('link', 'set', mgmt, 'netns', ns, 'name', 'mgmt0')
      await inNs(ns, 'ip', 'link', 'set', 'lo', 'up')
      await inNs(ns, 'ip', 'addr', 'add', `${side.wan}/30`, 'dev', 'wan0')
      await inNs(ns, 'ip', 'addr', 'add', `${side.mgmt}/30`, 'dev', 'mgmt0')
      await inNs(ns, 'ip', 'link', 'set', 'wan0', 'up')
      await inNs(ns, 'ip', 'link', 'set', 'mgmt0', 'up')
    }
    await ip('addr', 'add', `${WAN.control}/30`, 'dev', `${tag}ma`)
    await ip('addr', 'add', '10.213.2.1/30', 'dev', `${tag}mb`)
    await ip('link', 'set', `${tag}ma`, 'up')
    await ip('link', 'set', `${tag}mb`, 'up')
    await inNs(this.b, 'ip', 'route', 'add', `${WAN.control}/32`, 'via', '10.213.2.1')
  }

  /** Shapes both directions of the line to `lineMbit` (tbf on the egress of each end). */
  async shape (lineMbit: number): Promise<void> {
    const { burstBytes, limitBytes } = tbfFor(lineMbit)
    for (const ns of [this.a, this.b]) {
      await inNs(ns, 'tc', 'qdisc', 'replace', 'dev', 'wan0', 'root', 'tbf', 'rate', `${lineMbit}mbit`, 'burst', String(burstBytes), 'limit', String(limitBytes))
    }
  }

  /** Bytes tbf has sent from host `ns` onto the line so far (whole frames). */
  async lineBytesFrom (ns: string): Promise<number> {
    const text = await inNs(ns, 'tc', '-s', 'qdisc', 'show', 'dev', 'wan0')
    const sent = /Sent (\d+) bytes/.exec(text)?.[1]
    if (sent === undefined) throw new Error(`tc -s qdisc show dev wan0 in ${ns} shows no byte count: ${text}`)
    return Number(sent)
  }

  /** tc's view of the line (both ends), for the log. */
  async describe (): Promise<string> {
    const out: string[] = []
    for (const ns of [this.a, this.b]) out.push(`${ns}: ${(await inNs(ns, 'tc', 'qdisc', 'show', 'dev', 'wan0')).trim()}`)
    return out.join('; ')
  }

  /** A Node process in host `ns` driven over IPC, as WorkerProcess.start does in this namespace. */
  fork (ns: string, name: string, script: string, args: string[], options: { env?: NodeJS.ProcessEnv, nodeFlags?: boolean } = {}): WorkerProcess {
    const flags = options.nodeFlags !== true
      ? []
      : process.env.BENCH_TRANSFER_EXEC_ARGV === undefined ? NODE_PROCESS_FLAGS : process.env.BENCH_TRANSFER_EXEC_ARGV.split(' ').filter((a) => a !== '')
    // `ip netns exec` execs the command in place: the pid is node's, and the IPC channel's fd is inherited.
    const child = fork(join(import.meta.dirname, script), args, {
      execPath: 'ip',
      execArgv: ['netns', 'exec', ns, process.execPath, ...flags],
      env: { ...(options.nodeFlags === true ? NODE_PROCESS_ENV : {}), ...(options.env ?? process.env) },
      stdio: ['ignore', 2, 2, 'ipc']
    })
    return new WorkerProcess(name, child)
  }

  /** Removes both hosts: what runs in them is killed, the interfaces go with them. Safe to call twice. */
  async remove (): Promise<void> {
    if (this.removed) return
    this.removed = true
    await removeNamespace(this.a)
    await removeNamespace(this.b)
    for (const end of this.rootEnds) await ip('link', 'del', end).catch(() => {})
  }
}

/** Waits until a process (in whatever namespace) listens on `port`: its own /proc/<pid>/net view. */
export async function waitListeningIn (pid: number, port: number, timeoutMs = 10_000): Promise<void> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0')
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const text = await readFile(`/proc/${pid}/net/tcp`, 'utf8').catch(() => '')
    if (text.split('\n').some((line) => { const f = line.trim().split(/\s+/); return f[1]?.endsWith(`:${hex}`) === true && f[3] === '0A' })) return
    await delay(20)
  }
  throw new Error(`nothing listens on port ${port} in process ${pid}'s namespace after ${timeoutMs} ms`)
}

/** /proc/net/tcp's hex of an IPv4 address (little-endian on this machine's kind) */
function procHex (address: string): string {
  return address.split('.').map((b) => Number(b).toString(16).toUpperCase().padStart(2, '0')).reverse().join('')
}

/**
 * The TCP ports process `pid` listens on at `address` (or at every address of its namespace): from
 * its namespace's /proc/<pid>/net/tcp{,6}, kept to the sockets its own file descriptors hold.
 */
export async function listeningPortsOf (pid: number, address: string): Promise<number[]> {
  const inodes = new Set<string>()
  const fdDir = `/proc/${pid}/fd`
  for (const fd of await readdir(fdDir)) {
    const target = await readlink(join(fdDir, fd)).catch(() => '')
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1]
    if (inode !== undefined) inodes.add(inode)
  }
  const wanted = new Set([procHex(address), '00000000', '00000000000000000000000000000000'])
  const ports = new Set<number>()
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '')
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      const [host, port] = (f[1] ?? '').split(':')
      // state 0A is LISTEN; field 10 is the socket's inode
      if (f[3] !== '0A' || host === undefined || port === undefined || !wanted.has(host) || !inodes.has(f[9] ?? '')) continue
      ports.add(parseInt(port, 16))
    }
  }
  return [...ports].sort((x, y) => x - y)
}
