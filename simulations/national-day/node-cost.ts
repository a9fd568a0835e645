import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { pino } from 'pino'
import { formatTable, type BenchRow } from '../bench/table.ts'
import type { HospitalProfile } from '../scenarios/hospitals.ts'
import { DUTCH_HOSPITALS } from '../scenarios/hospitals.ts'
import { startLocalNetwork } from '../scenarios/local-network.ts'
import { writeManifest } from '../scenarios/manifest.ts'
import { findFreePortRange } from '../scenarios/ports.ts'
import { setUpLocalNetwork } from '../scenarios/setup.ts'
import { commitStaging, prepareStaging } from '../scenarios/staging.ts'

/*
 * What a Beeldnet node costs when several run in one process (issue 18, point 1: 120 nodes running
 * the real node code on a machine of 24 GiB and 2 cores).
 *
 *   node_modules/.bin/node simulations/national-day/node-cost.ts [N ...] [--json]
 *   (default N: 1 5 10 20; NODE_COST_IDLE_SECONDS, default 30, is the idle window)
 *
 * Each N runs in a fresh child process: a registry with governance (3 of 5) and N enrolled,
 * admitted BeeldnetNodes holding the 'test' samples, all started by startLocalNetwork in that one
 * process (poll interval 3600 s, so the registry poll is not part of the idle cost). The network
 * is set up first through the real workflow (setUpLocalNetwork: keys, root v1, N enrolments, one
 * admitting directory) with made-up hospitals beyond the 8 real ones, because startLocalNetwork
 * itself refuses nodeCount > 8 (DUTCH_HOSPITALS.length, local-network.ts) for a *new* network but
 * reuses any network.json it finds, whatever its size. Then: every node holds the directory
 * listing all N (startLocalNetwork waits for that); every node connects to every other (full mesh,
 * N(N-1)/2 libp2p connections, the worst case of a national day where any hospital may send to any
 * other; nodes do not dial by themselves); GC; idle NODE_COST_IDLE_SECONDS; GC; measure.
 *
 * Columns: setupS (keys, enrolment, admission, samples: once per network), baseRssMb (the process
 * with the registry and setup done, before any node starts: not a node's cost), startSPerNode
 * (startLocalNetwork's start of the N nodes / N), meshS, rssMb / anonMb (VmRSS, RssAnon of the
 * process after the idle window and a GC), heapUsedMb, externalMb (Buffers, level's and libp2p's
 * native memory), rssPerNodeMb (the slope: RSS added per node against the previous N),
 * dialRetries (mesh dials refused by libp2p's per-IP inbound rate limit and tried again), rssNoMeshMb
 * (2 s after the start, before the mesh; higher than rssMb because the setup's garbage is not yet
 * returned: compare rssMb), fds (open file descriptors), p2pConnections (libp2p connections
 * open, each counted once), idleCpuS / idleCpuPct (user+system CPU of the process during the idle
 * window, % of one core), cpuPctPerNode.
 *
 * Figures on this VM (2 cores, 23 GiB, Node 24, 30 s idle, 2026-12-07):
 *   name      setupS  startSPerNode  meshS  dialRetries  baseRssMb  rssNoMeshMb   rssMb  anonMb  heapUsedMb  externalMb  rssPerNodeMb   fds  p2pConnections  idleCpuS  idleCpuPct  cpuPctPerNode
 *   --------  ------  -------------  -----  -----------  ---------  -----------  ------  ------  ----------  ----------  ------------  ----  --------------  --------  ----------  -------------
 *   nodes-1     0.37           0.11      0            0        188       193.60  149.70   89.50       49.10       13.10             -    56               0      0.37        1.23           1.23
 *   nodes-5     0.69           0.09   0.12            0        211       222.50  168.80  108.10       58.20       13.40          4.80   172              10      0.68        2.26           0.45
 *   nodes-10    1.10           0.11   1.94            9     220.90       261.30  195.20  134.40       62.40       13.80          5.30   362              45      1.05        3.49           0.35
 *   nodes-20    1.87           0.10   3.84           38     233.30       321.70  250.70  189.80       80.20       15.50          5.50   892             190      2.95        9.83           0.49
 *   nodes-40    4.60           0.11  10.07           77     225.50       355.40  431.10  370.20      136.90       21.20             9  2552             780      6.82       22.75           0.57
 *   nodes-60    5.87           0.11  15.88          113     297.90       426.20  878.50  817.40      218.90       27.90             -  5012            1770      9.57       31.89           0.53   (run alone: slope column empty)
 *
 * A single row's rssMb moves by up to ~50 MB between runs (1 node: 150 MB here, 206 MB with a 3 s
 * idle window: whether malloc has handed the setup's garbage back yet); read the slopes.
 *
 * What a node costs (fits to these rows):
 *   - unconnected: ~5 MB RSS (the slope 5->10->20: 4.8, 5.3, 5.5 MB; ~1.5 MB of it JS heap), 24 file
 *     descriptors (its level stores, listeners: fds = 32 + 24 N + 2 x connections, exact for every
 *     row), 0.11 s to start (flat from 1 to 60 nodes), 0.1 s to set up (keys, enrolment, samples).
 *   - each open libp2p connection end: ~0.06-0.13 MB RSS (20->40 and 40->60, after the per-node
 *     5 MB), 1 fd, and CPU: libp2p 3's connection monitor pings every connection every 10 s
 *     (/ipfs/ping) and yamux keeps it alive every 30 s. Idle CPU stays ~0.5 % of a core per node
 *     (0.45-0.57 % from 5 to 60 nodes, with 4 to 59 peers each); the process's own floor (registry
 *     included) is ~1 % of a core.
 *   So a connected node's cost is dominated by its connections, not by its parts: at 59 peers a
 *   node is ~12 MB RSS ((879 - 150) / 60), less than half of it the node itself.
 *
 * 120 nodes: 3 processes of 40 nodes (40 measured: 4.3 s to start, 431 MB with 39 peers each).
 * With a full mesh each node has 119 peers, i.e. 4,760 connection ends per process: ~0.5-1 GB RSS
 * and ~5,800 fds per process (raise `ulimit -n`: a 1024 default is far too few), ~2-3 GB for all 120,
 * a tenth of the 24 GiB. Memory is not the bound; CPU is: 120 idle nodes take ~60-100 % of one
 * of the 2 cores in background pings (0.5 % a node, more with 119 peers), which leaves about one
 * core for the day's transfers. Three processes rather than two keep both cores busy while one
 * process's event loop is stuck in a large hash or JSON parse; 60 per process also works (879 MB).
 *
 * What breaks on the way:
 *   - startLocalNetwork refuses nodeCount > 8 for a new network (DUTCH_HOSPITALS has 8,
 *     local-network.ts); this script sets the network up with setUpLocalNetwork and made-up
 *     hospitals, then lets startLocalNetwork reuse it (it accepts a network.json of any size).
 *   - libp2p's connection manager accepts at most 5 inbound connections a second from one IP
 *     (inboundConnectionThreshold; also maxIncomingPendingConnections 10, maxConnections 300):
 *     on loopback every node is 127.0.0.1, so mesh dials fail with ECONNRESET (113 retries at 60
 *     nodes, the mesh took 16 s). node/p2p/host.ts passes no connectionManager options; a
 *     simulation of 120 nodes on one host either retries (as here) or needs them configurable.
 *     maxConnections 300 a node is enough for 120 peers, not for a network of 300+ nodes.
 *   - ports, directory size and enrolment time do not: 60 nodes set up in 5.9 s.
 */

const args = process.argv.slice(2)
const idleSeconds = Number(process.env.NODE_COST_IDLE_SECONDS ?? 30)

export const NODE_COST_COLUMNS = ['setupS', 'startSPerNode', 'meshS', 'dialRetries', 'baseRssMb', 'rssNoMeshMb', 'rssMb', 'anonMb', 'heapUsedMb', 'externalMb', 'rssPerNodeMb', 'fds', 'p2pConnections', 'idleCpuS', 'idleCpuPct', 'cpuPctPerNode']

function gcNow (): void {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  gc(); gc()
}

async function procStatusMb (field: string): Promise<number> {
  const status = await readFile('/proc/self/status', 'utf8')
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024
}

/** The first 8 are the real demo hospitals; the rest are made up (URA 02xxxxxx). */
function hospitals (n: number): HospitalProfile[] {
  const list = DUTCH_HOSPITALS.slice(0, n).map((h) => ({ ...h }))
  for (let i = list.length; i < n; i++) {
    list.push({ slug: `ziekenhuis-${i + 1}`, name: `Ziekenhuis ${i + 1}`, ura: `02${String(i + 1).padStart(6, '0')}`, issuer: `ZH${i + 1}`, departments: [{ code: 'RAD', name: 'Radiologie' }] })
  }
  return list
}

const round = (x: number, digits = 1): number => Number(x.toFixed(digits))

/** One N, in this process. */
async function measure (n: number): Promise<BenchRow> {
  const log = (line: string): void => { process.stderr.write(`[nodes-${n}] ${line}\n`) }
  const work = await mkdtemp(join(tmpdir(), 'beeldnet-node-cost-'))
  const dataDir = join(work, 'network')
  const logger = pino({ level: 'silent' })
  try {
    let t = process.hrtime.bigint()
    const since = (): number => Number(process.hrtime.bigint() - t) / 1e9
    log('setting up: governance, registry, enrolment and admission, test samples ...')
    const staging = await prepareStaging(dataDir)
    const made = await setUpLocalNetwork({
      dir: staging, network: 'beeldnet-node-cost', hospitals: hospitals(n), threshold: 3,
      p2pBasePort: await findFreePortRange(n), registryPort: 0, rateLimitPerMinute: 100_000,
      sampleSize: 'test', logger, report: () => {}, env: process.env
    })
    await writeManifest(staging, made)
    await commitStaging(staging, dataDir)
    const setupS = since()

    gcNow()
    const baseRss = await procStatusMb('VmRSS')
    log(`starting ${n} nodes in this process ...`)
    t = process.hrtime.bigint()
    const network = await startLocalNetwork({ dataDir, pollIntervalSeconds: 3600, rateLimitPerMinute: 100_000, readyTimeoutMs: 120_000, logger })
    const startS = since()
    try {
      await delay(2000)
      gcNow()
      const rssNoMeshMb = await procStatusMb('VmRSS')
      log(`started in ${startS.toFixed(1)} s; connecting the full mesh ...`)
      t = process.hrtime.bigint()
      const nodes = network.nodes
      let dialRetries = 0
      await Promise.all(nodes.map(async (a, i) => {
        for (const b of nodes.slice(i + 1)) {
          // libp2p's connection manager drops more than inboundConnectionThreshold (default 5) inbound
          // connections a second from one IP, and every node here is 127.0.0.1: such a dial fails
          // with ECONNRESET and is tried again a moment later.
          for (let attempt = 1; ; attempt++) {
            try {
              await a.node.p2p.connect(b.peerId, { signal: AbortSignal.timeout(30_000) })
              break
            } catch (err) {
              if (attempt >= 20) throw err
              dialRetries++
              await delay(250 + Math.random() * 750)
            }
          }
        }
      }))
      const meshS = since()
      await delay(2000)
      gcNow()
      log(`mesh in ${meshS.toFixed(1)} s; idle for ${idleSeconds} s ...`)
      const cpu0 = process.cpuUsage()
      const wall0 = process.hrtime.bigint()
      await delay(idleSeconds * 1000)
      const cpu = process.cpuUsage(cpu0)
      const wallS = Number(process.hrtime.bigint() - wall0) / 1e9
      gcNow()
      const mem = process.memoryUsage()
      const idleCpuS = (cpu.user + cpu.system) / 1e6
      const connections = nodes.reduce((s, x) => s + x.node.p2p.connectedPeers().reduce((c, p) => c + p.connections, 0), 0) / 2
      const fds = (await readdir('/proc/self/fd')).length
      const rssMb = await procStatusMb('VmRSS')
      log(`RSS ${rssMb.toFixed(0)} MB, ${connections} connections, ${fds} fds, ${idleCpuS.toFixed(2)} CPU s idle`)
      return {
        name: `nodes-${n}`,
        mbPerS: Number.NaN,
        peakRssMb: round(await procStatusMb('VmHWM')),
        nodes: n,
        setupS: round(setupS, 2),
        startSPerNode: round(startS / n, 3),
        meshS: round(meshS, 2),
        dialRetries,
        baseRssMb: round(baseRss),
        rssNoMeshMb: round(rssNoMeshMb),
        rssMb: round(rssMb),
        anonMb: round(await procStatusMb('RssAnon')),
        heapUsedMb: round(mem.heapUsed / 2 ** 20),
        externalMb: round(mem.external / 2 ** 20),
        rssPerNodeMb: null,
        fds,
        p2pConnections: connections,
        idleCpuS: round(idleCpuS, 2),
        idleCpuPct: round(100 * idleCpuS / wallS, 2),
        cpuPctPerNode: round(100 * idleCpuS / wallS / n, 3)
      }
    } finally {
      await network.stop()
    }
  } finally {
    await rm(work, { recursive: true, force: true })
    await rm(`${dataDir}.setup`, { recursive: true, force: true })
  }
}

/** Runs one N in a child process (fresh heap, fresh RSS) and returns its row. */
async function measureInChild (n: number): Promise<BenchRow> {
  const child = spawn(process.execPath, [...process.execArgv, import.meta.filename, '--child', String(n)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  if (code !== 0) throw new Error(`nodes-${n} failed (exit ${code})`)
  return JSON.parse(out.trim().split('\n').at(-1)!) as BenchRow
}

if (args[0] === '--child') {
  const row = await measure(Number(args[1]))
  process.stdout.write(JSON.stringify(row) + '\n')
  // libp2p and level leave nothing that should hold the process, but do not wait to find out.
  process.exit(0)
} else if (import.meta.filename === process.argv[1]) {
  const counts = args.filter((a) => !a.startsWith('--')).map(Number)
  const rows: BenchRow[] = []
  for (const n of counts.length > 0 ? counts : [1, 5, 10, 20]) {
    const row = await measureInChild(n)
    const prev = rows.at(-1)
    if (prev !== undefined) row.rssPerNodeMb = round(((row.rssMb as number) - (prev.rssMb as number)) / (n - (prev.nodes as number)))
    rows.push(row)
  }
  if (args.includes('--json')) process.stdout.write(JSON.stringify({ rows }) + '\n')
  else process.stdout.write(formatTable(rows, NODE_COST_COLUMNS) + '\n')
}
