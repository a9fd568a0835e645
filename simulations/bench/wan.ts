import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { nodePaths } from '../../node/paths.ts'
import { readCliToken } from '../../node/users/cli-token.ts'
import { createRegistry, type Registry } from '../../registry/registry.ts'
import { generateStudy } from '../generator/index.ts'
import { startLocalNetwork, type LocalNetworkNode } from '../scenarios/local-network.ts'
import { nodeEnv } from '../scenarios/node-env.ts'
import { cpuOf, freePort, MB, procStats, run, since, sync, type WorkerMessage, type WorkerProcess } from './processes.ts'
import type { BenchRow } from './table.ts'
import type { ForwarderStats } from './wan-delay.ts'
import { listeningPortsOf, tbfFor, WAN, waitListeningIn, WanHosts, type Link } from './wan-netns.ts'
import { api, TransferWatch, type NodeHttp } from './wan-nodes.ts'

/*
 * WAN benchmark: the generated CT study (400 instances of 512x512 16-bit, about 200 MB;
 * BENCH_WAN_INSTANCES for fewer) pushed between two real Beeldnet nodes over an emulated hospital
 * link, on three links: 1 Gbit/s at 20 ms round trip, 100 Mbit/s at 50 ms, and 1 Gbit/s at 50 ms
 * (the largest bandwidth-delay product the issue asks for).
 *
 * The hosts. Two network namespaces made by the run (wan-netns.ts), joined by a veth pair; each
 * node runs in its own (enrolled and admitted in a registry, a push through the sender's HTTP API
 * timed until its transfer is complete, as bench:transfer's `beeldnet` row). The registry and the
 * node APIs are reached over a separate management veth, neither shaped nor delayed.
 *
 * The line rate: `tc qdisc ... tbf` on the egress of both veth ends. tbf counts whole frames (14 B
 * Ethernet + 20 B IP + 32 B TCP with timestamps per 1448 B of payload at MTU 1500), so the best a
 * TCP payload can do is about 0.956 of the line; the `raw-tcp` row shows what the path gives. burst
 * is one millisecond of line rate but at least 64 KiB: veth hands tbf GSO packets of up to 64 KiB,
 * and a bucket smaller than one would split every one of them, costing CPU, while a 1 ms bucket
 * does not move the average rate. limit (the queue in front of the bucket) is the burst plus 5 ms
 * of line rate: enough to keep the line busy between the sender's wake-ups, too little to add a
 * bufferbloat round trip of its own (tbfFor in wan-netns.ts).
 *
 * The latency: this kernel has no netem, so it is added in user space by a delay forwarder
 * (wan-delay.ts), one in each host: the directory lists each node at /ip4/127.0.0.1/tcp/<port> (as
 * enrolled by the local network), and in the other host that address is the forwarder, which passes
 * the connection on over the veth to where the node really listens (its wan0 address). So every
 * dial the directory makes goes through a forwarder, and so do the dcmtk and raw rows (their own
 * routes). Each forwarder holds every chunk RTT/2 in each direction: a delay line (reads go on while
 * chunks wait), its memory bounded to what the line rate needs for that delay (rate x RTT/2 x 1.25
 * + 1 MiB for timer slack, per direction and connection), beyond which it stops reading and the
 * sender's socket fills. At the start of each link a one-byte ping-pong through the path (A's
 * forwarder to an echo in B and back) is measured; timers on whole milliseconds and four process
 * hops add 1-2 ms to the round trip, so the delay is calibrated in a few steps until the median
 * ping-pong is closest to the link's RTT (printed, and in every row as measuredRttMs). A raw TCP
 * bulk transfer through the same path gives the `raw-tcp` row: the line rate tbf really gives.
 * What it does not emulate: the forwarder splits TCP, so each kernel TCP leg sees a sub-millisecond
 * round trip. What the link delay does to an application's own windows and round trips (libp2p
 * stream windows, a request waiting for its answer, storescu waiting for each C-STORE response) is
 * measured; what it does to TCP's congestion control (slow start and loss recovery at 20-50 ms) and
 * to a plain TCP connection's receive window is not: a connection without an application window
 * of its own (raw-tcp, a TLS data channel) is limited here by the forwarder's bound, on a real path
 * by the kernel's window (net.ipv4.tcp_rmem's maximum, 6-32 MiB by default: above both links'
 * bandwidth-delay products, 2.4 and 0.6 MiB). The forwarders' CPU (fwdCpuS) shares the machine's two cores with the nodes; raw-tcp shows
 * whether they keep up with the line.
 *
 * Rows, one per link: raw-tcp (bytes of the study's size through the path, timed by the sink from
 * its first byte to its last), dimse (dcmtk storescu -> storescp +B, TCP_NODELAY=1 both sides, the
 * study's files, one association), beeldnet (compression off) and beeldnet-zstd (the node config's
 * transfers.compression: zstd on both nodes).
 * MB = MiB, as in the other benchmarks; lineMbit is 10^6 bit/s. mbPerS is the study's (uncompressed)
 * bytes over the time; wireMbPerS is what the forwarders carried from sender to receiver over the
 * same time; utilisation = wireMbPerS x 8 x 1.048576 / lineMbit (how full the line was);
 * effectiveVsLine = mbPerS x 8 x 1.048576 / lineMbit (study bytes against the line: above 1 only
 * with compression). Beeldnet rounds (BENCH_WAN_RUNS, default 3) report the median round; the
 * nodes start once per compression setting (the config is read at start) and move a warm-up study
 * first; the receiver drops the study after each round. cpuS: both nodes' CPU seconds (beeldnet
 * rows); fwdCpuS: both forwarders'; peakQueueMb: the most one direction of one forwarded connection
 * held; peakRssMb: the higher of the two nodes' VmHWM over their life so far (warm-up included).
 * A session fails if tbf saw clearly more bytes leave A than the forwarders carried (something
 * went around the delay). The namespaces and every process in them are removed at
 * the end, on failure and on SIGINT/SIGTERM; a leftover of a killed run is removed by the next run.
 *
 * Environment: BENCH_WAN_INSTANCES (CT instances, default 400), BENCH_WAN_RUNS (default 3),
 * BENCH_WAN_ONLY (comma-separated row names: raw-tcp, dimse, beeldnet, beeldnet-zstd),
 * BENCH_WAN_LINKS (e.g. '1000@20,100@50': Mbit/s @ RTT ms). Needs root (namespaces, tc).
 */

export const WAN_COLUMNS = [
  'lineMbit', 'rttMs', 'measuredRttMs', 'compressed', 'mbPerS', 'utilisation', 'effectiveVsLine', 'wireMbPerS',
  'seconds', 'bytes', 'wireBytes', 'cpuS', 'fwdCpuS', 'peakQueueMb', 'peakRssMb', 'runs', 'retries', 'note'
]

const DEFAULT_LINKS: Link[] = [{ lineMbit: 1000, rttMs: 20 }, { lineMbit: 100, rttMs: 50 }, { lineMbit: 1000, rttMs: 50 }]
const PING_COUNT = 20
const CALIBRATION_STEPS = 4

type Log = (line: string) => void
type Compression = 'off' | 'zstd'

interface Study { uid: string, files: string[], bytes: number }

/** One timed run of one row on one link. */
interface Sample {
  seconds: number
  bytes: number
  /** sender -> receiver bytes through the forwarders */
  wireBytes: number
  cpuS: number | null
  fwdCpuS: number
  peakQueueBytes: number
  attempts: number
}

interface Path {
  hosts: WanHosts
  /** forwarder in A (dials from A to B) and in B (dials from B to A) */
  fwdA: WorkerProcess
  fwdB: WorkerProcess
  /** node ports in B routed through A's forwarder (same port at 127.0.0.1), and the other way */
  routedToB: Set<number>
  routedToA: Set<number>
}

function linksFromEnv (): Link[] {
  const text = process.env.BENCH_WAN_LINKS
  if (text === undefined || text.trim() === '') return DEFAULT_LINKS
  return text.split(',').map((part) => {
    const match = /^\s*(\d+(?:\.\d+)?)@(\d+(?:\.\d+)?)\s*$/.exec(part)
    if (match === null) throw new Error(`BENCH_WAN_LINKS: '${part}' is not <Mbit/s>@<RTT ms>`)
    return { lineMbit: Number(match[1]), rttMs: Number(match[2]) }
  })
}

// ---------------------------------------------------------------------------------------------
// the path

async function forwarderStats (fwd: WorkerProcess, resetPeak = false): Promise<ForwarderStats> {
  fwd.send({ cmd: 'stats', resetPeak })
  return await fwd.next('stats') as unknown as ForwarderStats
}

/** Shapes the line and sets both forwarders' delay (RTT/2 each way unless calibrated) and memory bound. */
async function setLink (path: Path, link: Link, delayMs = link.rttMs / 2): Promise<void> {
  await path.hosts.shape(link.lineMbit)
  const maxQueuedBytes = Math.ceil(link.lineMbit * 1e6 / 8 * delayMs / 1000 * 1.25) + MB
  for (const fwd of [path.fwdA, path.fwdB]) {
    fwd.send({ cmd: 'set', delayMs, maxQueuedBytes })
    await fwd.next('set')
  }
}

/** A route through A's forwarder to B's wan0 address; the port to dial in A. */
async function routeAtoB (path: Path, targetPort: number, listenPort = 0): Promise<number> {
  path.fwdA.send({ cmd: 'route', route: { listenHost: '127.0.0.1', listenPort, targetHost: WAN.b.wan, targetPort } })
  return (await path.fwdA.next('routed') as { port: number } & WorkerMessage).port
}

/**
 * Every port a node listens on at its wan0 address (libp2p, and whatever else the node opens for
 * its peers, e.g. a data channel) is reached from the other host only through that host's
 * forwarder, at 127.0.0.1 and the same port: the address the peer learns from the directory or
 * its libp2p connection. Ports routed before are left as they are.
 */
async function routeNodePorts (path: Path, node: WorkerProcess, side: 'a' | 'b', log: Log): Promise<void> {
  const [fwd, routed, address] = side === 'b' ? [path.fwdA, path.routedToB, WAN.b.wan] : [path.fwdB, path.routedToA, WAN.a.wan]
  for (const port of await listeningPortsOf(node.pid, address)) {
    if (routed.has(port)) continue
    fwd.send({ cmd: 'route', route: { listenHost: '127.0.0.1', listenPort: port, targetHost: address, targetPort: port } })
    await fwd.next('routed')
    routed.add(port)
    log(`  ${node.name} listens on ${address}:${port}: reached from the other host through its forwarder at 127.0.0.1:${port}`)
  }
}

/** Measures what a session cost the path: wire bytes A -> B, forwarder CPU and peak queue. */
async function measured<T> (path: Path, body: () => Promise<T>): Promise<{ result: T, wireBytes: number, fwdCpuS: number, peakQueueBytes: number }> {
  const before = await Promise.all([forwarderStats(path.fwdA, true), forwarderStats(path.fwdB, true)])
  const lineBefore = await path.hosts.lineBytesFrom(path.hosts.a)
  const cpu = await cpuOf(path.fwdA.pid, path.fwdB.pid)
  const result = await body()
  const fwdCpuS = await cpuOf(path.fwdA.pid, path.fwdB.pid) - cpu
  const after = await Promise.all([forwarderStats(path.fwdA), forwarderStats(path.fwdB)])
  const lineBytes = await path.hosts.lineBytesFrom(path.hosts.a) - lineBefore
  // A -> B: what A's forwarder carried forward plus what B's carried back (on dials from B).
  const wireBytes = (after[0].forwardBytes - before[0].forwardBytes) + (after[1].backwardBytes - before[1].backwardBytes)
  // Frames add about 5 % to what the forwarders carry (headers, acknowledgements of B's bytes):
  // much more on the line means a connection went around the forwarders, undelayed.
  if (lineBytes > wireBytes * 1.15 + MB) throw new Error(`${lineBytes} bytes went from A onto the line, the forwarders carried ${wireBytes}: a connection went around them, without the delay`)
  return { result, wireBytes, fwdCpuS, peakQueueBytes: Math.max(after[0].peakQueuedBytes, after[1].peakQueuedBytes) }
}

// ---------------------------------------------------------------------------------------------
// rows

async function pingRtt (path: Path, probe: WorkerProcess, echoPort: number): Promise<{ medianMs: number, minMs: number, maxMs: number }> {
  probe.send({ cmd: 'ping', host: '127.0.0.1', port: echoPort, count: PING_COUNT })
  const { rttMs } = await probe.next('ping') as { rttMs: number[] } & WorkerMessage
  const sorted = [...rttMs].sort((a, b) => a - b)
  return { medianMs: sorted[Math.floor(sorted.length / 2)]!, minMs: sorted[0]!, maxMs: sorted.at(-1)! }
}

async function rawTcp (path: Path, probe: WorkerProcess, sinkPort: number, bytes: number): Promise<Sample> {
  const { result, wireBytes, fwdCpuS, peakQueueBytes } = await measured(path, async () => {
    probe.send({ cmd: 'bulk', host: '127.0.0.1', port: sinkPort, bytes })
    return await probe.next('bulk') as { bytes: number, sinkSeconds: number, seconds: number } & WorkerMessage
  })
  if (result.bytes !== bytes) throw new Error(`raw-tcp: the sink got ${result.bytes} bytes of ${bytes}`)
  return { seconds: result.sinkSeconds, bytes, wireBytes, cpuS: null, fwdCpuS, peakQueueBytes, attempts: 1 }
}

async function dimse (path: Path, study: Study, scp: { port: number, outDir: string }): Promise<Sample> {
  const env = { ...process.env, TCP_NODELAY: '1' }
  await sync()
  const { result, wireBytes, fwdCpuS, peakQueueBytes } = await measured(path, async () => {
    const started = process.hrtime.bigint()
    const scu = spawn('ip', ['netns', 'exec', path.hosts.a, 'storescu', '-R', '-aec', 'ANY', '127.0.0.1', String(scp.port), ...study.files], { env, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    scu.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000) })
    const [code] = await once(scu, 'exit') as [number | null]
    if (code !== 0) throw new Error(`storescu exited with ${code}: ${stderr.trim()}`)
    return since(started)
  })
  const received = (await readdir(scp.outDir)).length
  if (received !== study.files.length) throw new Error(`storescp holds ${received} files, ${study.files.length} were sent`)
  for (const name of await readdir(scp.outDir)) await rm(join(scp.outDir, name), { force: true })
  return { seconds: result, bytes: study.bytes, wireBytes, cpuS: null, fwdCpuS, peakQueueBytes, attempts: 1 }
}

interface Nodes {
  sender: WorkerProcess
  receiver: WorkerProcess
  senderApi: NodeHttp
  receiverApi: NodeHttp
  to: { ura: string, department: string }
  watch: TransferWatch
}

async function startNodes (path: Path, registry: Registry, a: LocalNetworkNode, b: LocalNetworkNode, compression: Compression | null, workers: WorkerProcess[], log: Log): Promise<Nodes> {
  const start = async (name: string, ns: string, node: LocalNetworkNode, side: { wan: string, mgmt: string }): Promise<{ worker: WorkerProcess, api: NodeHttp }> => {
    const port = /\/tcp\/(\d+)/.exec(node.addresses[0]!)?.[1]
    if (port === undefined) throw new Error(`${node.name} enrolled with ${node.addresses.join(', ')}: no TCP port`)
    const env = {
      ...nodeEnv(process.env, { httpPort: 0, registryUrl: registry.url, pollIntervalSeconds: 300, p2pListen: [`/ip4/${side.wan}/tcp/${port}`] }),
      BEELDNET_HTTP_HOST: side.mgmt,
      ...(compression === null ? {} : { BEELDNET_TRANSFERS_COMPRESSION: compression })
    }
    const worker = path.hosts.fork(ns, name, 'transfer-node-worker.ts', [node.dataDir], { env, nodeFlags: true })
    workers.push(worker)
    const { url } = await worker.next('ready', 60_000) as { url: string } & WorkerMessage
    const token = await readCliToken(nodePaths(node.dataDir).cliToken)
    if (token === undefined) throw new Error(`${name} made no CLI token in ${node.dataDir}`)
    return { worker, api: { url, token } }
  }
  const sender = await start('sending node', path.hosts.a, a, WAN.a)
  const receiver = await start('receiving node', path.hosts.b, b, WAN.b)
  // Each node's enrolled address (127.0.0.1:<port>) is, in the other host, that host's forwarder.
  await routeNodePorts(path, receiver.worker, 'b', log)
  await routeNodePorts(path, sender.worker, 'a', log)
  const watch = await TransferWatch.open(sender.api)
  const nodes = { sender: sender.worker, receiver: receiver.worker, senderApi: sender.api, receiverApi: receiver.api, to: { ura: b.ura, department: b.departments[0]!.code }, watch }
  // Warm-up: connect through the path, and every code path runs once before anything is timed.
  const sample = a.sampleStudies[0]!
  const record = await api<{ transferId: string }>(sender.api, '/api/transfers', { method: 'POST', body: { studyInstanceUID: sample, to: nodes.to, reason: 'warm-up' } })
  await watch.done(record.transferId, 120_000)
  nodes.receiver.send({ cmd: 'delete', uid: sample })
  await nodes.receiver.next('deleted')
  log(`nodes started (compression ${compression ?? 'not configurable'}): sender ${sender.api.url} in ${path.hosts.a}, receiver ${receiver.api.url} in ${path.hosts.b}`)
  return nodes
}

async function stopNodes (nodes: Nodes): Promise<void> {
  nodes.watch.close()
  await Promise.all([nodes.sender.stop(), nodes.receiver.stop()])
}

async function push (path: Path, nodes: Nodes, study: Study, log: Log): Promise<Sample> {
  await sync()
  const cpu = await cpuOf(nodes.sender.pid, nodes.receiver.pid)
  const { result: { transferId, seconds }, wireBytes, fwdCpuS, peakQueueBytes } = await measured(path, async () => {
    const started = process.hrtime.bigint()
    const record = await api<{ transferId: string }>(nodes.senderApi, '/api/transfers', {
      method: 'POST', body: { studyInstanceUID: study.uid, to: nodes.to, reason: 'wan benchmark' }
    })
    await nodes.watch.done(record.transferId)
    return { transferId: record.transferId, seconds: since(started) }
  })
  const cpuS = await cpuOf(nodes.sender.pid, nodes.receiver.pid) - cpu
  const outgoing = await api<{ attempts: number, lastError?: { code: string, message: string } }>(nodes.senderApi, `/api/transfers/${transferId}`)
  if (outgoing.attempts > 1) log(`  WARNING: the push took ${outgoing.attempts} attempts; the last failure: ${outgoing.lastError?.code} ${outgoing.lastError?.message}`)
  const listed = await api<{ numberOfInstances: number }>(nodes.receiverApi, `/api/studies/${encodeURIComponent(study.uid)}`)
  if (listed.numberOfInstances !== study.files.length) throw new Error(`the receiver lists ${listed.numberOfInstances} instances, not ${study.files.length}`)
  nodes.receiver.send({ cmd: 'delete', uid: study.uid })
  await nodes.receiver.next('deleted')
  return { seconds, bytes: study.bytes, wireBytes, cpuS, fwdCpuS, peakQueueBytes, attempts: outgoing.attempts }
}

// ---------------------------------------------------------------------------------------------

function row (name: string, link: Link, measuredRttMs: number, compressed: string, samples: Sample[], peakRssMb: number | null, note: string | null): BenchRow {
  const sorted = [...samples].sort((x, y) => x.seconds - y.seconds)
  const m = sorted[Math.floor((sorted.length - 1) / 2)]
  if (m === undefined) {
    return { name, lineMbit: link.lineMbit, rttMs: link.rttMs, measuredRttMs, compressed, mbPerS: Number.NaN, utilisation: null, effectiveVsLine: null, wireMbPerS: null, seconds: null, bytes: null, wireBytes: null, cpuS: null, fwdCpuS: null, peakQueueMb: null, peakRssMb: null, runs: 0, retries: null, note }
  }
  const lineMiBps = link.lineMbit * 1e6 / 8 / MB
  const mbPerS = m.bytes / MB / m.seconds
  const wireMbPerS = m.wireBytes / MB / m.seconds
  return {
    name,
    lineMbit: link.lineMbit,
    rttMs: link.rttMs,
    measuredRttMs,
    compressed,
    mbPerS,
    utilisation: wireMbPerS / lineMiBps,
    effectiveVsLine: mbPerS / lineMiBps,
    wireMbPerS,
    seconds: m.seconds,
    bytes: m.bytes,
    wireBytes: m.wireBytes,
    cpuS: m.cpuS,
    fwdCpuS: m.fwdCpuS,
    peakQueueMb: Math.max(...samples.map((s) => s.peakQueueBytes)) / MB,
    peakRssMb,
    runs: samples.length,
    retries: samples.reduce((n, s) => n + s.attempts - 1, 0),
    note
  }
}

export async function runWanBench (print: Log): Promise<BenchRow[]> {
  const benchStarted = process.hrtime.bigint()
  const log: Log = (line) => { print(`${since(benchStarted).toFixed(0).padStart(4)} s  ${line}`) }
  if (process.getuid?.() !== 0) throw new Error('bench:wan makes network namespaces and shapes them with tc: run it as root')
  const links = linksFromEnv()
  const rounds = Number(process.env.BENCH_WAN_RUNS ?? 3)
  const instances = Number(process.env.BENCH_WAN_INSTANCES ?? 400)
  const only = process.env.BENCH_WAN_ONLY?.split(',').map((s) => s.trim()).filter((s) => s !== '')
  const wanted = (name: string): boolean => only === undefined || only.includes(name)

  const work = await mkdtemp(join(tmpdir(), 'beeldnet-bench-wan-'))
  const workers: WorkerProcess[] = []
  const children: ChildProcess[] = []
  let registry: Registry | undefined
  let hosts: WanHosts | undefined
  let nodes: Nodes | undefined
  let cleaning: Promise<void> | undefined
  const cleanUp = async (): Promise<void> => {
    nodes?.watch.close()
    await Promise.all(workers.map(async (w) => { await w.stop().catch(() => {}) }))
    for (const child of children) child.kill('SIGTERM')
    await hosts?.remove().catch((err: unknown) => { log(`removing the namespaces failed: ${(err as Error).message}`) })
    await registry?.stop().catch(() => {})
    await rm(work, { recursive: true, force: true })
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`${signal}: removing the namespaces and processes ...`)
    cleaning ??= cleanUp()
    void cleaning.finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    log(`generating a ${instances}-instance CT study (512x512, 16-bit) ...`)
    const generated = await generateStudy(join(work, 'src'), { seed: 400_400, series: [{ modality: 'CT', instances, rows: 512, columns: 512 }] })
    const study: Study = { uid: generated.studyInstanceUID, files: generated.instances.map((i) => i.path).sort(), bytes: generated.instances.reduce((n, i) => n + i.size, 0) }
    log(`CT: ${study.files.length} files, ${(study.bytes / MB).toFixed(1)} MB`)

    log('setting up a registry and two enrolled, admitted nodes ...')
    const network = await startLocalNetwork({ dataDir: join(work, 'network'), nodeCount: 2, sampleSize: 'test', pollIntervalSeconds: 300, onProgress: (line) => log(`  ${line}`) })
    const [a, b] = network.nodes as [LocalNetworkNode, LocalNetworkNode]
    await network.stop()
    const { stdout } = await run(process.execPath, [join(import.meta.dirname, 'transfer-import-worker.ts'), a.dataDir, ...study.files], { maxBuffer: 16 * MB })
    const imported = JSON.parse(stdout) as { stored: number, rejected: unknown[] }
    if (imported.stored !== study.files.length) throw new Error(`imported ${imported.stored} of ${study.files.length} instances: ${JSON.stringify(imported.rejected)}`)

    log('making the two hosts (network namespaces, veth, tbf) and the delay forwarders ...')
    hosts = await WanHosts.create()
    // The registry where both hosts reach it (the benchmark's end of host A's management link).
    registry = createRegistry({ logger: pino({ level: 'silent' }) }, { dir: network.registry.dir, env: process.env, host: WAN.control, port: 0, rateLimitPerMinute: 10_000 })
    await registry.start()
    const fwdA = hosts.fork(hosts.a, 'forwarder in A', 'wan-delay-worker.ts', [])
    const fwdB = hosts.fork(hosts.b, 'forwarder in B', 'wan-delay-worker.ts', [])
    workers.push(fwdA, fwdB)
    await Promise.all([fwdA.next('ready', 60_000), fwdB.next('ready', 60_000)])
    const path: Path = { hosts, fwdA, fwdB, routedToB: new Set(), routedToA: new Set() }

    const server = hosts.fork(hosts.b, 'probe server in B', 'wan-probe-worker.ts', ['serve', WAN.b.wan])
    const probe = hosts.fork(hosts.a, 'probe in A', 'wan-probe-worker.ts', ['dial'])
    workers.push(server, probe)
    const ports = await server.next('ready', 60_000) as { echoPort: number, sinkPort: number } & WorkerMessage
    await probe.next('ready', 60_000)
    const echoPort = await routeAtoB(path, ports.echoPort)
    const sinkPort = await routeAtoB(path, ports.sinkPort)

    let scp: { port: number, outDir: string, child: ChildProcess } | undefined
    if (wanted('dimse')) {
      const outDir = join(work, 'dimse-out')
      await mkdir(outDir, { recursive: true })
      const port = await freePort()
      // +B: bit-preserving, written to disk as it arrives. TCP_NODELAY=1 as for storescu.
      const child = spawn('ip', ['netns', 'exec', hosts.b, 'storescp', '-od', outDir, '+B', String(port)], { env: { ...process.env, TCP_NODELAY: '1' }, stdio: ['ignore', 'ignore', 'inherit'] })
      children.push(child)
      await waitListeningIn(child.pid!, port)
      scp = { port: await routeAtoB(path, port), outDir, child }
    }

    const rows: BenchRow[] = []
    const measuredRtt = new Map<Link, number>()
    /** each link's delay per direction, calibrated against the ping-pong */
    const calibrated = new Map<Link, number>()
    for (const link of links) {
      await setLink(path, link)
      const { burstBytes, limitBytes } = tbfFor(link.lineMbit)
      log(`link ${link.lineMbit} Mbit/s, ${link.rttMs} ms RTT: tbf burst ${burstBytes} B, limit ${limitBytes} B`)
      // What the path adds besides the forwarders' delay (timers on whole milliseconds, four process
      // hops) comes off the delay, so the round trip the nodes see is the link's: a few steps, the
      // closest kept (timer rounding makes the answer a staircase, not a line).
      let delayMs = link.rttMs / 2
      let best: { delayMs: number, rtt: Awaited<ReturnType<typeof pingRtt>> } | undefined
      for (let step = 0; step < CALIBRATION_STEPS; step++) {
        await setLink(path, link, delayMs)
        const rtt = await pingRtt(path, probe, echoPort)
        log(`  ping-pong through the forwarders (${PING_COUNT}) with ${delayMs.toFixed(2)} ms each way: median ${rtt.medianMs.toFixed(2)} ms, min ${rtt.minMs.toFixed(2)}, max ${rtt.maxMs.toFixed(2)}`)
        if (best === undefined || Math.abs(rtt.medianMs - link.rttMs) < Math.abs(best.rtt.medianMs - link.rttMs)) best = { delayMs, rtt }
        if (Math.abs(rtt.medianMs - link.rttMs) < 0.25) break
        delayMs = Math.max(0, delayMs - (rtt.medianMs - link.rttMs) / 2)
      }
      await setLink(path, link, best!.delayMs)
      calibrated.set(link, best!.delayMs)
      const rttMs = best!.rtt.medianMs
      measuredRtt.set(link, rttMs)
      log(`  the link's delay: ${best!.delayMs.toFixed(2)} ms each way, round trip ${best!.rtt.medianMs.toFixed(2)} ms (median)`)
      if (wanted('raw-tcp')) {
        const s = await rawTcp(path, probe, sinkPort, study.bytes)
        const r = row('raw-tcp', link, rttMs, 'off', [s], null, null)
        log(`  raw-tcp: ${r.mbPerS.toFixed(1)} MB/s, utilisation ${(r.utilisation as number).toFixed(3)}, forwarders ${s.fwdCpuS.toFixed(1)} CPU s, peak queue ${(s.peakQueueBytes / MB).toFixed(2)} MB`)
        rows.push(r)
      }
      if (scp !== undefined) {
        const s = await dimse(path, study, scp)
        const r = row('dimse', link, rttMs, 'off', [s], null, null)
        log(`  dimse: ${r.mbPerS.toFixed(1)} MB/s, utilisation ${(r.utilisation as number).toFixed(3)}`)
        rows.push(r)
      }
    }
    log(`tc: ${await hosts.describe()}`)

    for (const compression of ['off', 'zstd'] as const) {
      const name = compression === 'off' ? 'beeldnet' : 'beeldnet-zstd'
      if (!wanted(name)) continue
      await setLink(path, links[0]!, calibrated.get(links[0]!))
      nodes = await startNodes(path, registry, a, b, compression, workers, log)
      for (const link of links) {
        await setLink(path, link, calibrated.get(link))
        log(`${name} on ${link.lineMbit} Mbit/s, ${link.rttMs} ms RTT: ${rounds} round(s) ...`)
        const samples: Sample[] = []
        for (let round = 1; round <= rounds; round++) {
          const s = await push(path, nodes, study, log)
          samples.push(s)
          log(`  round ${round}: ${(s.bytes / MB / s.seconds).toFixed(1)} MB/s (${s.seconds.toFixed(1)} s), wire ${(s.wireBytes / MB / s.seconds).toFixed(1)} MB/s, nodes ${s.cpuS?.toFixed(1)} CPU s, forwarders ${s.fwdCpuS.toFixed(1)} CPU s`)
        }
        const [s, r] = await Promise.all([procStats(nodes.sender.pid), procStats(nodes.receiver.pid)])
        rows.push(row(name, link, measuredRtt.get(link) ?? Number.NaN, compression, samples, Math.max(s.peakRssMb, r.peakRssMb), null))
      }
      await stopNodes(nodes)
      nodes = undefined
    }

    const order = ['raw-tcp', 'dimse', 'beeldnet', 'beeldnet-zstd']
    rows.sort((x, y) => links.findIndex((l) => l.lineMbit === x.lineMbit && l.rttMs === x.rttMs) - links.findIndex((l) => l.lineMbit === y.lineMbit && l.rttMs === y.rttMs) || order.indexOf(x.name) - order.indexOf(y.name))
    log(`done in ${since(benchStarted).toFixed(0)} s`)
    return rows
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    cleaning ??= cleanUp()
    await cleaning
  }
}
