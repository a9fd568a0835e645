import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { createRegistry, type Registry } from '../../registry/registry.ts'
import { generateStudy, type GeneratedStudy } from '../generator/index.ts'
import { nodePaths } from '../../node/paths.ts'
import { readCliToken } from '../../node/users/cli-token.ts'
import { startLocalNetwork } from '../scenarios/local-network.ts'
import { nodeEnv } from '../scenarios/node-env.ts'
import type { BenchRow } from './table.ts'
import { api, TransferWatch, type NodeHttp } from './wan-nodes.ts'
import { cpuOf, freePort, MB, procStats, run, since, storescu, sync, waitListening, WorkerProcess, type WorkerMessage } from './processes.ts'

/*
 * Transfer benchmark: the same generated 400-instance CT study (512x512, 16-bit, about 200 MB) and
 * the same 1 GB multi-frame instance moved between two processes on loopback, four ways, in one run:
 *  - beeldnet:      two real nodes (enrolled and admitted in a registry, each in its own process),
 *                   a push through the node's HTTP API, timed until the sender's transfer is
 *                   complete: encrypted, every instance hashed and checked and fsynced, the study
 *                   committed, the signed receipt back;
 *  - bare-libp2p:   the same files over one bare libp2p stream with the node's stack and settings
 *                   (TCP + Noise + Yamux as node/p2p/host.ts), file -> stream -> file with
 *                   backpressure both ways, fsync of every file like the node: the stack's ceiling
 *                   for the same job; bare-libp2p-nosync leaves the fsyncs out (the transport alone);
 *  - bare-libp2p-tuned: the same over Noise with 512 KiB yamux messages and 512 KiB sender reads;
 *  - bare-libp2p-tls: the same worker with libp2p's TLS encrypter (@libp2p/tls) instead of Noise,
 *                   512 KiB yamux messages and 256 KiB sender reads;
 *  - node-tls:      the same files, wire format and fsyncs over a node:tls connection (OpenSSL, TLS
 *                   1.3, one connection per session, TCP_NODELAY), both ends authenticated by a
 *                   certificate bound to a libp2p Ed25519 identity as libp2p's TLS handshake does it
 *                   (transfer-node-tls-worker.ts): the ceiling of a bulk data channel beside libp2p;
 *                   the sender reads into two 1 MiB buffers it reuses; node-tls-nosync leaves the
 *                   fsyncs out, node-tls-aes128 prefers TLS_AES_128_GCM_SHA256 to OpenSSL's
 *                   AES-256-GCM, node-tls-pipelined lets up to 4 files be fsynced and closed while
 *                   the next streams (answering once all are durable), tcp-plain is the same
 *                   worker over plain TCP (no encryption, no authentication: what files, sockets
 *                   and JS cost without TLS); node-tls-stream (opt-in: only when BENCH_TRANSFER_ONLY
 *                   names it) wraps the TLS socket in the node's TlsStream (node/p2p/tls-stream.ts)
 *                   and moves the files with the bare-libp2p worker's stream code: what seeing the
 *                   socket as a libp2p Stream costs. About one session in ten in a first try ended
 *                   with the sender's socket ended by the receiver mid-file ("This socket has been
 *                   ended by the other party"), not found why, hence opt-in;
 *  - dimse-nodelay, dimse-default: dcmtk storescu -> storescp (+B: straight to disk) with and
 *                   without TCP_NODELAY=1 in both environments; storescp never fsyncs.
 * The node and bare processes live for the whole run and move a warm-up first (open
 * connection, warm JIT). Each side's peak RSS is VmHWM from /proc (over the process's life so far);
 * CPU seconds are both sides' utime + stime. The CT study and the multi-frame instance are two
 * sessions (two transfers) timed one after the other; mbPerS (MB = MiB) is their bytes over their
 * summed time. syncedMbPerS adds a `sync` after each session, the time to durability for those that
 * do not fsync. Rounds are interleaved and the median round is reported (peaks: the highest of all
 * rounds; retries: node transfers that needed more than one delivery). dimse-default, ~45 ms per
 * instance, runs one round. Then a 4 GB study (the CT series, a 1 GB multi-frame instance and six
 * of 500 MB) goes through the same two nodes: the issue's bound is peak RSS under 200 MB on either
 * node (over the whole run), and a run that breaks it fails.
 *
 * Environment: BENCH_TRANSFER_RUNS (rounds, default 3), BENCH_TRANSFER_ONLY (comma-separated row
 * names), BENCH_TRANSFER_4GB=0 (skip the 4 GB study), BENCH_TRANSFER_EXEC_ARGV (Node flags for the
 * node and bare-libp2p worker processes instead of bin/beeldnet's, e.g. '' for none),
 * BENCH_TRANSFER_NO_MALLOC_ENV=1 (the workers without bin/beeldnet's glibc malloc settings); the
 * libp2p knobs in transfer-libp2p.ts and transfer-bare-worker.ts apply to the bare libp2p rows and
 * override the tuned rows' settings, the BENCH_TLS_* knobs of transfer-node-tls-worker.ts to the
 * node-tls rows. cpuSPerGiB is cpuS over the median round's bytes.
 *
 * Measured 2026-12-07, 2 cores shared with other work (load 2-5): MB/s varies up to 2x between
 * rounds, CPU per GiB less. Both sides' CPU seconds per GiB, median of 3 interleaved rounds, over
 * 2-5 runs of several rows together:
 *   bare-libp2p 13.9-15.9, bare-libp2p-nosync 9.3-15.7, bare-libp2p-tuned 11.7-15.8,
 *   bare-libp2p-tls 7.3-16.1, node-tls 3.7-5.8, node-tls-nosync 4.3-5.0, node-tls-aes128 3.9-5.5,
 *   node-tls-pipelined 2.8-4.7, node-tls-stream 5.9-6.3, tcp-plain 3.5-4.2, dimse-nodelay 2.1-2.2.
 *   MB/s (one run): 108, 117, 107, 115, 291, 352, 339, 313, 256, 346, 664. Peak RSS: libp2p workers
 *   118-152 MB, node-tls workers 85-124 MB (node-tls-stream's sender 169: fresh 1 MiB read buffers).
 * The libp2p rows cost much less alone than among the others (bare-libp2p-tls alone 6.6-7.3, not
 * explained) and are sensitive to bin/beeldnet's malloc settings (MALLOC_MMAP_THRESHOLD_=65536, a
 * fresh mmap per buffer of 64 KiB or more): with BENCH_TRANSFER_NO_MALLOC_ENV=1 bare-libp2p-tls alone
 * 4.7 against 6.9, among the others 11.7 against 16.1, bare-libp2p-tuned 9.1 against 11.7; node-tls
 * is unaffected (it reuses its buffers). Pipelined fsyncs are inconclusive here: over five runs of
 * node-tls against node-tls-pipelined (BENCH_TLS_PIPELINE 1..16) the CT study went from 0.5x to
 * 1.9x, the fsync latency of this shared virtual disk decides.
 * Tuning (2-3 rounds each, the row alone): @libp2p/tls with 256 KiB messages and reads 7.2 s/GiB,
 * 512 KiB messages + 256 KiB reads 6.6-6.7, 512 + 512 KiB 7.1, 512 KiB + 1 MiB 10.1, 1 MiB
 * messages 7.6-9.8; Noise with the node's 256 KiB 10.9, 512 + 256 KiB 8.4, 512 + 512 KiB 8.2,
 * 1 MiB + 1 MiB 8.7. node-tls sender reads of 256 KiB 5.5, 512 KiB 5.0, 1 MiB 4.4; fresh buffers
 * per read (BENCH_TLS_READS=stream) raise the sender's peak RSS from 98 to 167 MB; gathered writev
 * on the receiver (BENCH_TLS_WRITES=batch) 5.5 against 4.7 in the same run: not better.
 */

export const TRANSFER_COLUMNS = [
  'mbPerS', 'ctMbPerS', 'mfMbPerS', 'syncedMbPerS', 'seconds', 'bytes', 'peakRssMb', 'senderRssMb', 'receiverRssMb', 'cpuS', 'cpuSPerGiB',
  'runs', 'retries', 'fsync', 'ofBareLibp2p', 'vsDimseDefault', 'rssLimitMb', 'withinLimit'
]

/** The issue's bound: peak RSS of either node while moving a 4 GB study with a 1 GB instance. */
export const NODE_RSS_LIMIT_MB = 200
const GiB = 1024 * MB

interface Scenario { name: 'ct' | 'mf' | '4gb', studyInstanceUID: string, files: string[], bytes: number }
interface Session { seconds: number, bytes: number, syncSeconds: number, cpuS: number, /** deliveries the transfer took (1: no retry) */ attempts: number }
interface Sample { sessions: Session[], senderRssMb: number, receiverRssMb: number }
type Log = (line: string) => void

function scenarioOf (name: Scenario['name'], study: GeneratedStudy, instances = study.instances): Scenario {
  return {
    name,
    studyInstanceUID: study.studyInstanceUID,
    files: instances.map((i) => i.path).sort(),
    bytes: instances.reduce((n, i) => n + i.size, 0)
  }
}

// ---------------------------------------------------------------------------------------------
// bare pairs: two worker processes moving the files over one data path, without a node around it

/** A worker script and its settings; the rows of one kind share one pair of processes. */
interface PairKind { name: string, script: string, /** settings the environment may override */ env: Record<string, string> }

// The best settings found for libp2p past the node's (the figures are in the header comment).
const BARE_NOISE: PairKind = { name: 'bare-libp2p', script: 'transfer-bare-worker.ts', env: {} }
const BARE_NOISE_TUNED: PairKind = { name: 'bare-libp2p-tuned', script: 'transfer-bare-worker.ts', env: { BENCH_YAMUX_MAX_MESSAGE_SIZE: String(MB / 2), BENCH_BARE_CHUNK: String(MB / 2) } }
const BARE_TLS: PairKind = { name: 'bare-libp2p-tls', script: 'transfer-bare-worker.ts', env: { BENCH_ENCRYPTER: 'tls', BENCH_YAMUX_MAX_MESSAGE_SIZE: String(MB / 2), BENCH_BARE_CHUNK: String(MB / 4) } }
const NODE_TLS: PairKind = { name: 'node-tls', script: 'transfer-node-tls-worker.ts', env: {} }
const NODE_TLS_AES128: PairKind = { name: 'node-tls-aes128', script: 'transfer-node-tls-worker.ts', env: { BENCH_TLS_CIPHERS: 'TLS_AES_128_GCM_SHA256' } }
const NODE_TLS_PIPELINED: PairKind = { name: 'node-tls-pipelined', script: 'transfer-node-tls-worker.ts', env: { BENCH_TLS_PIPELINE: '4' } }
const NODE_TLS_STREAM: PairKind = { name: 'node-tls-stream', script: 'transfer-node-tls-worker.ts', env: { BENCH_TLS_STREAM: '1' } }
const TCP_PLAIN: PairKind = { name: 'tcp-plain', script: 'transfer-node-tls-worker.ts', env: { BENCH_TLS_PLAIN: '1' } }

/** The bare rows, in the order each round runs them; an opt-in row runs only when BENCH_TRANSFER_ONLY names it. */
const PAIR_ROWS: Array<{ name: string, kind: PairKind, fsync: boolean, optIn?: boolean }> = [
  { name: 'bare-libp2p', kind: BARE_NOISE, fsync: true },
  { name: 'bare-libp2p-nosync', kind: BARE_NOISE, fsync: false },
  { name: 'bare-libp2p-tuned', kind: BARE_NOISE_TUNED, fsync: true },
  { name: 'bare-libp2p-tls', kind: BARE_TLS, fsync: true },
  { name: 'node-tls', kind: NODE_TLS, fsync: true },
  { name: 'node-tls-nosync', kind: NODE_TLS, fsync: false },
  { name: 'node-tls-aes128', kind: NODE_TLS_AES128, fsync: true },
  { name: 'node-tls-pipelined', kind: NODE_TLS_PIPELINED, fsync: true },
  { name: 'tcp-plain', kind: TCP_PLAIN, fsync: true },
  { name: 'node-tls-stream', kind: NODE_TLS_STREAM, fsync: true, optIn: true }
]

interface BarePair { name: string, sender: WorkerProcess, receiver: WorkerProcess, address: string, /** the receiver's, when the worker authenticates peers */ peerId: string | undefined, outDir: string }

/** One sender and one receiver process for the whole run, like the nodes (warm JIT, one connection). */
async function startBare (work: string, workers: WorkerProcess[], kind: PairKind): Promise<BarePair> {
  const outDir = join(work, `${kind.name}-out`)
  await mkdir(outDir, { recursive: true })
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const [key, value] of Object.entries(kind.env)) env[key] ??= value
  const receiver = WorkerProcess.start(`${kind.name} receiver`, kind.script, ['receive', outDir], env)
  const sender = WorkerProcess.start(`${kind.name} sender`, kind.script, ['send'], env)
  workers.push(receiver, sender)
  const ready = await receiver.next('ready', 60_000) as { address: string, peerId?: string } & WorkerMessage
  const senderReady = await sender.next('ready', 60_000) as { peerId?: string } & WorkerMessage
  if (senderReady.peerId !== undefined) {
    // The receiver accepts this one sender's identity (as a node admits a peer from the directory).
    receiver.send({ cmd: 'admit', peerId: senderReady.peerId })
    await receiver.next('admitted')
  }
  return { name: kind.name, sender, receiver, address: ready.address, peerId: ready.peerId, outDir }
}

async function bareSession (pair: BarePair, scenario: Scenario, fsync: boolean): Promise<Session> {
  pair.receiver.send({ cmd: 'fsync', on: fsync })
  await pair.receiver.next('fsync')
  await sync()
  const cpu = await cpuOf(pair.sender.pid, pair.receiver.pid)
  pair.sender.send({ cmd: 'send', address: pair.address, peerId: pair.peerId, files: scenario.files })
  const sent = await pair.sender.next('sent') as { seconds: number, bytes: number, streams: number } & WorkerMessage
  // One answer per stream (BENCH_BARE_STREAMS spreads the files over several).
  const received = { files: 0, bytes: 0 }
  for (let i = 0; i < sent.streams; i++) {
    const r = await pair.receiver.next('received') as { files: number, bytes: number } & WorkerMessage
    received.files += r.files
    received.bytes += r.bytes
  }
  const cpuS = await cpuOf(pair.sender.pid, pair.receiver.pid) - cpu
  if (received.files !== scenario.files.length || received.bytes !== scenario.bytes || sent.bytes !== scenario.bytes) {
    throw new Error(`${pair.name} ${scenario.name}: received ${received.files} files, ${received.bytes} bytes of ${scenario.files.length}, ${scenario.bytes}`)
  }
  const session = { seconds: sent.seconds, bytes: scenario.bytes, syncSeconds: await sync(), cpuS, attempts: 1 }
  for (const name of await readdir(pair.outDir)) await rm(join(pair.outDir, name), { recursive: true, force: true })
  return session
}

async function bareRound (pair: BarePair, scenarios: Scenario[], fsync: boolean): Promise<Sample> {
  const sessions: Session[] = []
  for (const scenario of scenarios) sessions.push(await bareSession(pair, scenario, fsync))
  const [s, r] = await Promise.all([procStats(pair.sender.pid), procStats(pair.receiver.pid)])
  return { sessions, senderRssMb: s.peakRssMb, receiverRssMb: r.peakRssMb }
}

// ---------------------------------------------------------------------------------------------
// dcmtk storescu -> storescp

async function dimseRound (scenarios: Scenario[], work: string, nodelay: boolean): Promise<Sample> {
  const outDir = join(work, 'dimse-out')
  await mkdir(outDir, { recursive: true })
  const env = { ...process.env }
  if (nodelay) env.TCP_NODELAY = '1'
  else delete env.TCP_NODELAY
  const port = await freePort()
  // +B: bit-preserving, written to disk as it arrives (without it storescp holds each instance in memory)
  const scp = spawn('storescp', ['-od', outDir, '+B', String(port)], { env, stdio: ['ignore', 'ignore', 'inherit'] })
  const scpExit = once(scp, 'exit')
  try {
    await waitListening(port)
    const sessions: Session[] = []
    let senderRssMb = 0
    let expected = 0
    for (const scenario of scenarios) {
      await sync()
      const scpCpu = await cpuOf(scp.pid!)
      const scu = await storescu(['-R', '-aec', 'ANY', '127.0.0.1', String(port), ...scenario.files], env)
      const cpuS = await cpuOf(scp.pid!) - scpCpu + scu.cpuS
      senderRssMb = Math.max(senderRssMb, scu.peakRssMb)
      expected += scenario.files.length
      const received = (await readdir(outDir)).length
      if (received !== expected) throw new Error(`storescp holds ${received} files, ${expected} were sent`)
      sessions.push({ seconds: scu.seconds, bytes: scenario.bytes, syncSeconds: await sync(), cpuS, attempts: 1 })
    }
    return { sessions, senderRssMb, receiverRssMb: (await procStats(scp.pid!)).peakRssMb }
  } finally {
    scp.kill('SIGTERM')
    await scpExit
    await rm(outDir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------------
// Beeldnet nodes

interface NodePair {
  sender: WorkerProcess
  receiver: WorkerProcess
  senderApi: NodeHttp
  receiverApi: NodeHttp
  /** the receiving institution */
  to: { ura: string, department: string }
  watch: TransferWatch
}

/** One push through the sender's API, timed until its transfer is complete (receipt back). */
async function push (pair: NodePair, scenario: Scenario, log: Log): Promise<Session> {
  await sync()
  const cpu = await cpuOf(pair.sender.pid, pair.receiver.pid)
  const started = process.hrtime.bigint()
  const record = await api<{ transferId: string }>(pair.senderApi, '/api/transfers', {
    method: 'POST',
    body: { studyInstanceUID: scenario.studyInstanceUID, to: pair.to, reason: 'transfer benchmark' }
  })
  await pair.watch.done(record.transferId)
  const seconds = since(started)
  const cpuS = await cpuOf(pair.sender.pid, pair.receiver.pid) - cpu
  const syncSeconds = await sync()
  const outgoing = await api<{ attempts: number, lastError?: { code: string, message: string } }>(pair.senderApi, `/api/transfers/${record.transferId}`)
  if (outgoing.attempts > 1) log(`  WARNING: beeldnet ${scenario.name} took ${outgoing.attempts} attempts; the last failure: ${outgoing.lastError?.code} ${outgoing.lastError?.message}`)
  const study = await api<{ numberOfInstances: number }>(pair.receiverApi, `/api/studies/${encodeURIComponent(scenario.studyInstanceUID)}`)
  if (study.numberOfInstances !== scenario.files.length) throw new Error(`the receiver lists ${study.numberOfInstances} instances of ${scenario.name}, not ${scenario.files.length}`)
  return { seconds, bytes: scenario.bytes, syncSeconds, cpuS, attempts: outgoing.attempts }
}

async function beeldnetRound (pair: NodePair, scenarios: Scenario[], log: Log): Promise<Sample> {
  const sessions: Session[] = []
  for (const scenario of scenarios) sessions.push(await push(pair, scenario, log))
  // The receiver drops what it got, so the next round moves every byte again.
  for (const scenario of scenarios) {
    pair.receiver.send({ cmd: 'delete', uid: scenario.studyInstanceUID })
    await pair.receiver.next('deleted')
  }
  const [s, r] = await Promise.all([procStats(pair.sender.pid), procStats(pair.receiver.pid)])
  return { sessions, senderRssMb: s.peakRssMb, receiverRssMb: r.peakRssMb }
}

// ---------------------------------------------------------------------------------------------

function toRow (name: string, samples: Sample[], fsync: string): BenchRow {
  const total = (s: Sample): number => s.sessions.reduce((n, x) => n + x.seconds, 0)
  const sorted = [...samples].sort((a, b) => total(a) - total(b))
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!
  const bytes = median.sessions.reduce((n, x) => n + x.bytes, 0)
  const seconds = total(median)
  const syncSeconds = median.sessions.reduce((n, x) => n + x.syncSeconds, 0)
  const rate = (s: Session | undefined): number | null => s === undefined ? null : s.bytes / MB / s.seconds
  const senderRssMb = Math.max(...samples.map((s) => s.senderRssMb))
  const receiverRssMb = Math.max(...samples.map((s) => s.receiverRssMb))
  return {
    name,
    mbPerS: bytes / MB / seconds,
    ctMbPerS: median.sessions.length === 2 ? rate(median.sessions[0]) : null,
    mfMbPerS: median.sessions.length === 2 ? rate(median.sessions[1]) : null,
    syncedMbPerS: bytes / MB / (seconds + syncSeconds),
    seconds,
    bytes,
    peakRssMb: Math.max(senderRssMb, receiverRssMb),
    senderRssMb,
    receiverRssMb,
    cpuS: median.sessions.reduce((n, x) => n + x.cpuS, 0),
    cpuSPerGiB: median.sessions.reduce((n, x) => n + x.cpuS, 0) / (bytes / GiB),
    runs: samples.length,
    retries: samples.reduce((n, s) => n + s.sessions.reduce((m, x) => m + x.attempts - 1, 0), 0),
    fsync,
    ofBareLibp2p: null,
    vsDimseDefault: null,
    rssLimitMb: null,
    withinLimit: null
  }
}

export async function runTransferBench (print: Log): Promise<BenchRow[]> {
  const benchStarted = process.hrtime.bigint()
  const log: Log = (line) => { print(`${since(benchStarted).toFixed(0).padStart(4)} s  ${line}`) }
  const rounds = Number(process.env.BENCH_TRANSFER_RUNS ?? 3)
  const only = process.env.BENCH_TRANSFER_ONLY?.split(',').map((s) => s.trim()).filter((s) => s !== '')
  const optIn = new Set(PAIR_ROWS.filter((r) => r.optIn === true).map((r) => r.name))
  const wanted = (name: string): boolean => only === undefined ? !optIn.has(name) : only.includes(name)
  const with4gb = process.env.BENCH_TRANSFER_4GB !== '0' && wanted('beeldnet-4gb')
  const needNodes = wanted('beeldnet') || with4gb

  const work = await mkdtemp(join(tmpdir(), 'beeldnet-bench-transfer-'))
  const workers: WorkerProcess[] = []
  let registry: Registry | undefined
  let watch: TransferWatch | undefined
  try {
    // Seeds far from the sample studies' (1000 and up per node): the same seed makes the same UIDs.
    log('generating a 400-instance CT study (512x512, 16-bit) and a 1 GB multi-frame instance ...')
    const src = join(work, 'src')
    const ctStudy = await generateStudy(join(src, 'ct'), { seed: 400_400, series: [{ modality: 'CT', instances: 400, rows: 512, columns: 512 }] })
    const ct = scenarioOf('ct', ctStudy)
    const mf = scenarioOf('mf', await generateStudy(join(src, 'mf'), { seed: 1_000_100, series: [{ modality: 'CT', instances: 1, rows: 512, columns: 512, frames: 2000 }] }))
    const scenarios = [ct, mf]
    log(`CT: ${ct.files.length} files, ${(ct.bytes / MB).toFixed(1)} MB; multi-frame: ${(mf.bytes / MB).toFixed(1)} MB`)
    let big: Scenario | undefined
    if (with4gb) {
      log('generating a 4 GB study: the CT series, a 1 GB multi-frame instance and six of 500 MB ...')
      big = scenarioOf('4gb', await generateStudy(join(src, 'big'), {
        seed: 4_000_400,
        series: [
          { modality: 'CT', instances: 400, rows: 512, columns: 512 },
          { modality: 'CT', instances: 1, rows: 512, columns: 512, frames: 2000 },
          { modality: 'CT', instances: 6, rows: 512, columns: 512, frames: 1000 }
        ]
      }))
      log(`4 GB study: ${big.files.length} files, ${(big.bytes / MB).toFixed(0)} MB`)
    }

    let pair: NodePair | undefined
    if (needNodes) {
      log('setting up a registry and two enrolled, admitted nodes ...')
      const network = await startLocalNetwork({ dataDir: join(work, 'network'), nodeCount: 2, sampleSize: 'test', pollIntervalSeconds: 300, onProgress: (line) => log(`  ${line}`) })
      const [a, b] = network.nodes
      // The nodes move to processes of their own; the registry stays here (on a new port).
      await network.stop()
      registry = createRegistry({ logger: pino({ level: 'silent' }) }, { dir: network.registry.dir, env: process.env, host: '127.0.0.1', port: 0, rateLimitPerMinute: 10_000 })
      await registry.start()

      log('importing the bench studies into the sender\'s store (its own process) ...')
      const studies = [ct, mf, ...(big === undefined ? [] : [big])]
      const { stdout } = await run(process.execPath, [join(import.meta.dirname, 'transfer-import-worker.ts'), a!.dataDir, ...studies.flatMap((s) => s.files)], { maxBuffer: 16 * MB })
      const imported = JSON.parse(stdout) as { stored: number, rejected: Array<{ path: string, code: string, message: string }> }
      const expected = studies.reduce((n, s) => n + s.files.length, 0)
      if (imported.stored !== expected || imported.rejected.length > 0) {
        throw new Error(`imported ${imported.stored} of ${expected} instances; rejected: ${imported.rejected.map((r) => `${r.path} ${r.code} ${r.message}`).join('; ')}`)
      }
      // Only the nodes need the 4 GB study now.
      await rm(join(src, 'big'), { recursive: true, force: true })

      const start = async (name: string, node: typeof a): Promise<{ worker: WorkerProcess, url: string, api: NodeHttp }> => {
        const worker = WorkerProcess.start(name, 'transfer-node-worker.ts', [node!.dataDir],
          nodeEnv(process.env, { httpPort: 0, registryUrl: registry!.url, pollIntervalSeconds: 300, p2pListen: node!.addresses }))
        workers.push(worker)
        const { url } = await worker.next('ready', 60_000) as { url: string } & WorkerMessage
        const token = await readCliToken(nodePaths(node!.dataDir).cliToken)
        if (token === undefined) throw new Error(`${name} made no CLI token in ${node!.dataDir}`)
        return { worker, url, api: { url, token } }
      }
      const sender = await start('sending node', a)
      const receiver = await start('receiving node', b)
      watch = await TransferWatch.open(sender.api)
      pair = { sender: sender.worker, receiver: receiver.worker, senderApi: sender.api, receiverApi: receiver.api, to: { ura: b!.ura, department: b!.departments[0]!.code }, watch }
      const idle = await Promise.all([procStats(sender.worker.pid), procStats(receiver.worker.pid)])
      log(`nodes started: ${a!.name} (sender) ${sender.url}, ${b!.name} (receiver) ${receiver.url}; peak RSS so far ${idle.map((s) => s.peakRssMb.toFixed(0)).join(' / ')} MB`)
      // Warm-up: connect, and every code path runs once before anything is timed.
      const sample = a!.sampleStudies[0]!
      const record = await api<{ transferId: string }>(sender.api, '/api/transfers', { method: 'POST', body: { studyInstanceUID: sample, to: pair.to, reason: 'warm-up' } })
      await watch.done(record.transferId, 60_000)
    }

    const samples = new Map<string, Sample[]>()
    const add = (name: string, sample: Sample): void => {
      samples.set(name, [...(samples.get(name) ?? []), sample])
      const secs = sample.sessions.reduce((n, s) => n + s.seconds, 0)
      const bytes = sample.sessions.reduce((n, s) => n + s.bytes, 0)
      log(`  ${name}: ${(bytes / MB / secs).toFixed(1)} MB/s (${sample.sessions.map((s) => `${(s.bytes / MB / s.seconds).toFixed(1)}`).join(' + ')}), peak RSS ${sample.senderRssMb.toFixed(0)} / ${sample.receiverRssMb.toFixed(0)} MB`)
    }
    const barePairs = new Map<PairKind, BarePair>()
    for (const row of PAIR_ROWS.filter((r) => wanted(r.name) && !barePairs.has(r.kind))) {
      const barePair = await startBare(work, workers, row.kind)
      // Warm-up, as for the nodes: the connection is open and the code paths ran before anything is timed.
      await bareSession(barePair, scenarioOf('ct', ctStudy, ctStudy.instances.slice(0, 50)), true)
      barePairs.set(row.kind, barePair)
    }
    const nodePids = pair === undefined ? [] : [pair.sender.pid, pair.receiver.pid]
    for (let round = 1; round <= rounds; round++) {
      log(`round ${round} of ${rounds}: CT study, then the 1 GB instance, each way ...`)
      const idle = await cpuOf(...nodePids)
      for (const row of PAIR_ROWS) {
        const barePair = barePairs.get(row.kind)
        if (barePair !== undefined && wanted(row.name)) add(row.name, await bareRound(barePair, scenarios, row.fsync))
      }
      const idleCpu = await cpuOf(...nodePids) - idle
      if (idleCpu > 0.5) log(`  note: the idle nodes used ${idleCpu.toFixed(1)} s CPU during the bare rounds`)
      if (pair !== undefined && wanted('beeldnet')) add('beeldnet', await beeldnetRound(pair, scenarios, log))
      if (wanted('dimse-nodelay')) add('dimse-nodelay', await dimseRound(scenarios, work, true))
    }
    if (wanted('dimse-default')) {
      // Nagle and delayed ACKs cost ~40 ms per instance: one round is slow enough.
      log('dcmtk without TCP_NODELAY (one round) ...')
      add('dimse-default', await dimseRound(scenarios, work, false))
    }

    const rows: BenchRow[] = []
    const fsyncOf: Record<string, string> = { beeldnet: 'each file', 'dimse-nodelay': 'none', 'dimse-default': 'none' }
    for (const row of PAIR_ROWS) fsyncOf[row.name] = row.fsync ? 'each file' : 'none'
    for (const name of ['beeldnet', ...PAIR_ROWS.map((r) => r.name), 'dimse-nodelay', 'dimse-default']) {
      const s = samples.get(name)
      if (s !== undefined) rows.push(toRow(name, s, fsyncOf[name]!))
    }

    if (pair !== undefined && big !== undefined) {
      log(`the 4 GB study (${big.files.length} instances, ${(big.bytes / MB).toFixed(0)} MB) through the same two nodes ...`)
      const session = await push(pair, big, log)
      const [s, r] = await Promise.all([procStats(pair.sender.pid), procStats(pair.receiver.pid)])
      const row = toRow('beeldnet-4gb', [{ sessions: [session], senderRssMb: s.peakRssMb, receiverRssMb: r.peakRssMb }], 'each file')
      row.rssLimitMb = NODE_RSS_LIMIT_MB
      row.withinLimit = (row.peakRssMb ?? Infinity) < NODE_RSS_LIMIT_MB ? 'yes' : 'NO'
      log(`  beeldnet-4gb: ${row.mbPerS.toFixed(1)} MB/s, peak RSS ${s.peakRssMb.toFixed(0)} / ${r.peakRssMb.toFixed(0)} MB`)
      rows.push(row)
    }

    const byName = new Map(rows.map((r) => [r.name, r]))
    const bare = byName.get('bare-libp2p')
    const dimseDefault = byName.get('dimse-default')
    for (const row of rows) {
      if (row.name === 'beeldnet-4gb') continue
      row.ofBareLibp2p = bare === undefined ? null : row.mbPerS / bare.mbPerS
      row.vsDimseDefault = dimseDefault === undefined ? null : row.mbPerS / dimseDefault.mbPerS
    }
    log(`done in ${since(benchStarted).toFixed(0)} s`)
    return rows
  } finally {
    watch?.close()
    for (const worker of workers) await worker.stop().catch(() => {})
    await registry?.stop().catch(() => {})
    await rm(work, { recursive: true, force: true })
  }
}
