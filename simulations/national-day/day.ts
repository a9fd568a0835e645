import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { pino, type Logger } from 'pino'
import { createRegistry, type Registry } from '../../registry/registry.ts'
import { LocalGovernance, loadGovernanceMembers } from '../scenarios/governance.ts'
import type { HospitalProfile } from '../scenarios/hospitals.ts'
import type { LocalNetworkManifest } from '../scenarios/manifest.ts'
import { findFreePortRange } from '../scenarios/ports.ts'
import { setUpLocalNetwork } from '../scenarios/setup.ts'
import { prepareStaging, commitStaging } from '../scenarios/staging.ts'
import { writeManifest } from '../scenarios/manifest.ts'
import { busiestWindow, chooseFaultActors, DISK_FULL_RETENTION_SECONDS, FAULT_TIMES, type FaultActors } from './faults.ts'
import type { HostEvent, HostStats, HostedNode, PreparedStudy, StudyToPrepare } from './host-protocol.ts'
import { HostProcess } from './hosts.ts'
import { nationalDay, type DayPlan, type Exchange } from './model.ts'
import { RegistryLoad } from './registry-load.ts'

/*
 * The national day on real nodes (issue 18): the plan's institutions enrolled and admitted in one
 * directory through the real workflow, their nodes spread over a few processes, the day's exchanges
 * replayed in compressed wall time (push or pull, each through every protocol step), the faults at
 * their simulated times, and what happened to every exchange collected for the simulated clock and
 * the invariants. README.md says what is simulated and what is real.
 */

export interface DayOptions {
  seed: number
  institutions: number
  studies: number
  /** factor on every study's bytes (model.ts) */
  scale: number
  /** factor on every study's image count (at least one image); reports are never scaled */
  instanceScale: number
  /** processes that host the nodes (the crashing node gets one more of its own) */
  processes: number
  /** wall seconds the 24 simulated hours are replayed in */
  daySeconds: number
  /** wall seconds to wait, after the last exchange, for transfers still under way */
  drainSeconds: number
  /** keep the network directory afterwards (printed) */
  keep: boolean
  onProgress: (line: string) => void
  logger?: Logger
}

export interface ExchangeRecord {
  exchange: Exchange
  index: number
  studyInstanceUID?: string
  sha256?: string[]
  /** wall ms of the dispatch, and why it waited (the acting node was down) */
  dispatchedAt?: number
  deferredSec: number
  /** the final state at the node that drives it, with every code met on the way */
  outcome?: Extract<HostEvent, { type: 'outcome' }>
  /** a dispatch that failed before a transfer existed (the code of the refusal) */
  dispatchError?: string
  /** for a push that never ended: where it stood at the end of the day, and the last error it met */
  lastState?: { state: string, code?: string, attempts: number }
  /** the receiver's read-back of the arrived study matches the sender's instance by instance */
  byteIdentical?: boolean
}

export interface DayResult {
  plan: DayPlan
  actors: FaultActors
  compression: number
  t0: number
  records: ExchangeRecord[]
  /** wall seconds from handing the revocation to one node until each other node refused the key */
  revocation: { handedAt: number, refusedAt: Map<string, number> }
  suspension: { at: number, refusedAt: Map<string, number> }
  registry: ReturnType<RegistryLoad['summary']>
  hosts: HostStats[]
  trails: Array<{ ura: string, ok: boolean, records: number }>
  nodesPerProcess: number
  wallSeconds: number
  dataDir: string
}

const simToWallMs = (sim: number, compression: number): number => sim / compression * 1000

function profiles (plan: DayPlan): HospitalProfile[] {
  return plan.institutions.map((inst, i) => ({ slug: `${inst.kind}-${inst.ura}`, name: inst.name, ura: inst.ura, issuer: `SIM${i + 1}`, departments: [{ code: 'RAD', name: 'Radiologie' }] }))
}

export async function runDay (options: DayOptions): Promise<DayResult> {
  const say = options.onProgress
  const logger = options.logger ?? pino({ level: 'silent' })
  const plan = nationalDay({ seed: options.seed, institutions: options.institutions, studies: options.studies, scale: options.scale })
  const actors = chooseFaultActors(plan)
  const compression = 86_400 / options.daySeconds
  const work = await mkdtemp(join(tmpdir(), 'beeldnet-national-day-'))
  const dataDir = join(work, 'network')
  const started = Date.now()
  say(`${plan.institutions.length} institutions, ${plan.exchanges.length} exchanges; the day replayed in ${options.daySeconds} s (x${compression.toFixed(0)}); work in ${work}`)
  say(`faults: crash ${actors.crash.name}, disk full ${actors.diskFull.name}, suspended ${actors.suspended.name}, key revoked ${actors.revoked.name}`)

  // 1. The network, set up as it happens for real: keys, root, enrolments, one admitting directory.
  const registryPort = await findFreePortRange(1)
  const staging = await prepareStaging(dataDir)
  const manifest: LocalNetworkManifest = await setUpLocalNetwork({
    dir: staging, network: 'beeldnet-national-day', hospitals: profiles(plan), threshold: 3,
    p2pBasePort: await findFreePortRange(plan.institutions.length), registryPort, rateLimitPerMinute: 1_000_000,
    sampleSize: 'test', logger, report: () => {}, env: {}
  })
  await writeManifest(staging, manifest)
  await commitStaging(staging, dataDir)
  say(`set up in ${((Date.now() - started) / 1000).toFixed(1)} s: governance admitted ${manifest.nodes.length} institutions`)

  const registryDir = join(dataDir, manifest.registry.dir)
  const makeRegistry = (port: number): Registry => createRegistry({ logger: logger.child({ component: 'registry' }) }, { dir: registryDir, env: {}, host: '127.0.0.1', port, rateLimitPerMinute: 1_000_000 })
  let registry: Registry | undefined = makeRegistry(registryPort)
  await registry.start()
  const registryUrl = registry.url
  const members = await loadGovernanceMembers(manifest.governance.members.map((m) => join(dataDir, m.file)))
  const governanceAt = (url: string): LocalGovernance => new LocalGovernance({ registryUrl: url, network: manifest.network, threshold: manifest.governance.threshold, members })
  const registryLoad = new RegistryLoad(registryUrl)
  registryLoad.start()

  // 2. The nodes, a few processes of many; the one that will crash alone in its own.
  const diskWindow = busiestWindow(plan.exchanges, actors.diskFull.ura, DISK_FULL_RETENTION_SECONDS)
  const retentionDays = simToWallMs(DISK_FULL_RETENTION_SECONDS, compression) / 86_400_000
  const hosted = (entry: LocalNetworkManifest['nodes'][number]): HostedNode => ({
    slug: entry.slug, ura: entry.ura, name: entry.name, issuer: entry.issuer, dir: join(dataDir, entry.dir), peerId: entry.peerId, addresses: entry.addresses,
    env: entry.ura !== actors.diskFull.ura
      ? {}
      : { BEELDNET_STORE_RETENTION_DAYS: String(retentionDays), BEELDNET_STORE_RETENTION_INTERVAL_MINUTES: String(Math.max(0.05, simToWallMs(900, compression) / 60_000)) }
  })
  const env = {
    // every node is 127.0.0.1 here: libp2p's 5 new connections a second per address would drop most dials
    BEELDNET_P2P_INBOUND_CONNECTIONS_PER_SECOND: '10000',
    // a retry pause of 10 simulated minutes at most, not 10 wall minutes (hours of the simulated day)
    BEELDNET_TRANSFERS_RETRY_PAUSE_MAX_SECONDS: String(Math.max(0.5, 600 / compression)),
    BEELDNET_LOG_LEVEL: 'warn'
  }
  const pollIntervalSeconds = Math.max(1, Math.round(300 / compression))
  const others = manifest.nodes.filter((n) => n.ura !== actors.crash.ura)
  const groups: HostedNode[][] = Array.from({ length: options.processes }, () => [])
  others.forEach((n, i) => groups[i % options.processes]!.push(hosted(n)))
  const crashEntry = manifest.nodes.find((n) => n.ura === actors.crash.ura)!
  const hostInit = (name: string, nodes: HostedNode[]): HostProcess => new HostProcess({ name, nodes, env, registryUrl, pollIntervalSeconds, workDir: join(work, 'generated', name) })
  const hosts = [...groups.map((g, i) => hostInit(`host-${i + 1}`, g)), hostInit('host-crash', [hosted(crashEntry)])]
  const crashHost = hosts.at(-1)!
  const hostOf = new Map<string, HostProcess>()
  for (const h of hosts) for (const ura of h.uras) hostOf.set(ura, h)

  const records: ExchangeRecord[] = plan.exchanges.map((exchange, index) => ({ exchange, index, deferredSec: 0 }))
  const arrivals = new Map<string, string[]>()
  const revocation = { handedAt: 0, refusedAt: new Map<string, number>() }
  const suspension = { at: 0, refusedAt: new Map<string, number>() }
  const peerOf = (ura: string): string => manifest.nodes.find((n) => n.ura === ura)!.peerId
  const onEvent = (e: HostEvent): void => {
    if (e.type === 'outcome') records[e.exchange]!.outcome = e
    else if (e.type === 'arrived') arrivals.set(`${e.ura}|${e.studyInstanceUID}`, e.sha256)
    else {
      const target = e.peerId === peerOf(actors.revoked.ura) ? revocation.refusedAt : e.peerId === peerOf(actors.suspended.ura) ? suspension.refusedAt : undefined
      if (target !== undefined && !target.has(e.ura)) target.set(e.ura, e.wallAt)
    }
  }
  for (const h of hosts) h.on('event', onEvent)

  try {
    await Promise.all(hosts.map(async (h) => h.start()))
    say(`${manifest.nodes.length} nodes started in ${hosts.length} processes (${groups[0]!.length} a process, the crashing node alone)`)
    await waitForDirectories(hosts, (await governanceAt(registryUrl).client.status() as { directory: { version: number } }).directory.version)

    // 3. Every study at its holder before the day.
    const t = Date.now()
    const wanted = new Map<HostProcess, StudyToPrepare[]>()
    for (const r of records) {
      const e = r.exchange
      const images = Math.max(1, Math.round(e.instances * options.instanceScale))
      const list = wanted.get(hostOf.get(e.from)!) ?? []
      list.push({ exchange: r.index, holder: e.from, modality: e.modality, variant: e.variant, images, reports: e.reports, bytes: e.bytes })
      wanted.set(hostOf.get(e.from)!, list)
    }
    await Promise.all([...wanted].map(async ([h, list]) => {
      for (let i = 0; i < list.length; i += 25) {
        for (const p of await h.request<PreparedStudy[]>({ type: 'prepare', studies: list.slice(i, i + 25) })) {
          const r = records[p.exchange]!
          r.studyInstanceUID = p.studyInstanceUID
          r.sha256 = p.sha256
        }
      }
    }))
    // IT gives the disk-full node a quota: what it holds now and what its busiest two hours bring, twice.
    const diskHost = hostOf.get(actors.diskFull.ura)!
    const held = await diskHost.request<number>({ type: 'stored-bytes', ura: actors.diskFull.ura })
    const quota = Math.round(held + 2 * diskWindow.bytes)
    await diskHost.request({ type: 'restart-node', ura: actors.diskFull.ura, env: { BEELDNET_STORE_MAX_BYTES: String(quota) } })
    say(`${records.length} studies generated and imported at their holders in ${((Date.now() - t) / 1000).toFixed(1)} s`)

    // 4. The day.
    const t0 = Date.now()
    const wallAt = (sim: number): number => t0 + simToWallMs(sim, compression)
    const simNow = (): number => (Date.now() - t0) / 1000 * compression
    let crashed = false
    const deferred: ExchangeRecord[] = []
    const inFlight: Array<Promise<void>> = []
    const dispatch = (r: ExchangeRecord, wasDeferred = false): void => {
      const e = r.exchange
      const actor = e.kind === 'push' ? e.from : e.to
      if (crashed && (actor === actors.crash.ura || (e.kind === 'pull' && e.from === actors.crash.ura))) { deferred.push(r); return }
      r.dispatchedAt = Date.now()
      // a push whose node was down goes when it is back (the clinician's send waits for it)
      if (wasDeferred) r.deferredSec = Math.max(0, simNow() - e.at)
      const request = e.kind === 'push'
        ? { type: 'push' as const, exchange: r.index, from: e.from, to: e.to, study: r.studyInstanceUID! }
        : { type: 'pull' as const, exchange: r.index, requester: e.to, source: e.from, study: r.studyInstanceUID! }
      inFlight.push(hostOf.get(actor)!.request(request).then(() => {}, (err: { code?: string }) => { r.dispatchError = err.code ?? 'BEELDNET_ERR_INTERNAL' }))
    }

    const faults: Array<{ at: number, name: string, run: () => Promise<void> }> = [
      { at: FAULT_TIMES.crashAt, name: `kill -9 ${actors.crash.name}`, run: async () => { crashed = true; await crashHost.kill() } },
      {
        at: FAULT_TIMES.restartAt,
        name: `restart ${actors.crash.name}`,
        run: async () => {
          await crashHost.start()
          crashed = false
          for (const r of deferred.splice(0)) dispatch(r, true)
        }
      },
      {
        at: FAULT_TIMES.suspendAt,
        name: `suspend ${actors.suspended.name}`,
        run: async () => {
          suspension.at = Date.now()
          const peerId = peerOf(actors.suspended.ura)
          await Promise.all(hosts.map(async (h) => h.request({ type: 'watch-refusal', peerId }).catch(() => {})))
          await governanceAt(registryUrl).publish([{ action: 'suspend', ura: actors.suspended.ura, reason: 'national day: suspended at noon' }])
        }
      },
      { at: FAULT_TIMES.registryDownAt, name: 'registry down', run: async () => { registryLoad.pause(); await registry?.stop(); registry = undefined } },
      {
        at: FAULT_TIMES.revokeAt,
        name: `revoke the node key of ${actors.revoked.name} (registry down: gossip only)`,
        run: async () => {
          const file = await signRevocationOffline(makeRegistry, governanceAt, manifest, actors, join(work, 'revocation.json'))
          const peerId = peerOf(actors.revoked.ura)
          await Promise.all(hosts.map(async (h) => h.request({ type: 'watch-refusal', peerId }).catch(() => {})))
          revocation.handedAt = Date.now()
          await hostOf.get(actors.revocationEntry.ura)!.request({ type: 'accept-directory', ura: actors.revocationEntry.ura, file })
        }
      },
      {
        at: FAULT_TIMES.registryUpAt,
        name: 'registry up',
        run: async () => { registry = makeRegistry(registryPort); await registry.start(); registryLoad.resume() }
      }
    ]
    const faultRuns: Array<Promise<void>> = []
    for (const f of faults) {
      faultRuns.push((async () => {
        await delay(Math.max(0, wallAt(f.at) - Date.now()))
        say(`${clock(f.at)} ${f.name}`)
        await f.run()
      })())
    }
    let next = 0
    // The disk fills just before the first study of the full node's busiest hours is sent, in line
    // with the dispatches: on a loaded machine a timer could fire after that study had arrived.
    const fillBefore = records.find((r) => r.exchange.to === actors.diskFull.ura && r.exchange.at >= diskWindow.at)
    for (const r of records) {
      await delay(Math.max(0, wallAt(r.exchange.at) - Date.now()))
      if (r === fillBefore) {
        say(`${clock(r.exchange.at)} the disk of ${actors.diskFull.name} fills up (${diskWindow.studies} studies due in its busiest ${DISK_FULL_RETENTION_SECONDS / 3600} h)`)
        const left = await diskHost.request<number>({ type: 'fill', ura: actors.diskFull.ura, quota })
        say(`  ${(left / 1024).toFixed(0)} KiB left under its quota`)
      }
      dispatch(r)
      if (++next % Math.max(1, Math.round(records.length / 10)) === 0) say(`${clock(r.exchange.at)} ${next} of ${records.length} exchanges started, ${records.filter((x) => x.outcome !== undefined).length} ended`)
    }
    await Promise.all(faultRuns)
    await Promise.all(inFlight)

    // 5. What is still under way gets drainSeconds.
    const drainUntil = Date.now() + options.drainSeconds * 1000
    while (Date.now() < drainUntil && records.some((r) => r.outcome === undefined && r.dispatchError === undefined && !excused(r, actors, simNow()))) await delay(250)
    const handed = revocation.handedAt
    say(`revocation refused by: ${[...revocation.refusedAt].map(([u, at]) => `${u.slice(-3)} +${((at - handed) / 1000).toFixed(2)} s`).join(', ')}`)
    say(`day over after ${((Date.now() - t0) / 1000).toFixed(0)} s; ${records.filter((r) => r.outcome?.state === 'complete').length} of ${records.length} delivered`)

    for (const r of records) {
      if (r.outcome?.state !== 'complete' || r.sha256 === undefined) continue
      const got = arrivals.get(`${r.exchange.to}|${r.studyInstanceUID}`)
      r.byteIdentical = got !== undefined && got.join() === r.sha256.join()
    }
    for (const h of hosts) {
      for (const t of await h.request<Array<{ exchange: number, state: string, code?: string, attempts: number }>>({ type: 'transfer-states' })) {
        const r = records[t.exchange]!
        if (r.outcome === undefined) r.lastState = t
      }
    }
    const stats = await Promise.all(hosts.map(async (h) => h.request<HostStats>({ type: 'stats' })))
    const trails = (await Promise.all(hosts.map(async (h) => h.request<Array<{ ura: string, ok: boolean, records: number }>>({ type: 'verify-trails' })))).flat()
    return {
      plan, actors, compression, t0, records, revocation, suspension,
      registry: registryLoad.summary(compression, plan.institutions.length),
      hosts: stats, trails, nodesPerProcess: groups[0]!.length, wallSeconds: (Date.now() - started) / 1000, dataDir
    }
  } finally {
    registryLoad.stop()
    await Promise.allSettled(hosts.map(async (h) => h.stop()))
    await registry?.stop()
    if (!options.keep) await rm(work, { recursive: true, force: true })
    else say(`kept: ${work}`)
  }
}

/** An exchange a fault ended by design: one end suspended or its key revoked before or while it ran. */
export function excused (r: ExchangeRecord, actors: FaultActors, simNow: number): boolean {
  const e = r.exchange
  const involves = (ura: string): boolean => e.from === ura || e.to === ura
  if (involves(actors.suspended.ura) && simNow >= FAULT_TIMES.suspendAt) return true
  if (involves(actors.revoked.ura) && simNow >= FAULT_TIMES.revokeAt) return true
  return false
}

/** "HH:MM" of a simulated time. */
export function clock (sim: number): string {
  const minutes = Math.floor(sim / 60) + 7 * 60
  return `${String(Math.floor(minutes / 60) % 24).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`
}

async function waitForDirectories (hosts: HostProcess[], version: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const versions = (await Promise.all(hosts.map(async (h) => h.request<Array<{ version?: number }>>({ type: 'directory-versions' })))).flat()
    if (versions.every((v) => (v.version ?? 0) >= version)) return
    await delay(100)
  }
  throw new Error(`not every node holds directory v${version} after 60 s`)
}

/**
 * With the registry down for the nodes, governance still signs: the registry's store is run on a
 * port no node knows (the operators' console), the revocation proposed and signed by the threshold,
 * and the directory it publishes written to a file, for an IT admin to hand to one node.
 */
async function signRevocationOffline (
  makeRegistry: (port: number) => Registry,
  governanceAt: (url: string) => LocalGovernance,
  manifest: LocalNetworkManifest,
  actors: FaultActors,
  file: string
): Promise<string> {
  const operators = makeRegistry(0)
  await operators.start()
  try {
    const peerId = manifest.nodes.find((n) => n.ura === actors.revoked.ura)!.peerId
    await governanceAt(operators.url).publish([{ action: 'revoke-node-key', ura: actors.revoked.ura, peerId, reason: 'national day: key leaked' }])
    const response = await fetch(`${operators.url}/v1/directory`)
    await mkdir(join(file, '..'), { recursive: true })
    await writeFile(file, await response.text())
    return file
  } finally {
    await operators.stop()
  }
}
