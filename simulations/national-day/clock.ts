// The simulated clock of a national day (issue 18): when each exchange's report and images would be available at
// the receiver on the institutions' real lines, rather than in the run's compressed wall time. Pure code, no I/O
// (the CLI at the end runs only when this file is the program). The method is README "Time-to-available (how it is
// computed)", steps 1-5; every number below is a constant exported with its source, so text and code can be checked.

import { InvalidSpecError } from '../generator/errors.ts'
import type { BenchRow } from '../bench/table.ts'
import { hourOf, type Exchange, type ExchangeModality, type Institution, type LinkMbit } from './model.ts'

/**
 * Share of the line a Beeldnet push reaches, by line rate: README "bench:wan", the `beeldnet` rows' `utilisation`
 * ("0.94 on 100 Mbit/s at 50 ms", "0.83 on 1 Gbit/s at 20 ms"). 10 Gbit/s is not measured there: it takes the
 * 1 Gbit/s ratio and is flagged (`measured: false`) in every result that depends on it.
 */
export const UTILISATION: Record<LinkMbit, { ratio: number, measured: boolean, source: string }> = {
  100: { ratio: 0.94, measured: true, source: 'README "bench:wan": beeldnet, 100 Mbit/s, 50 ms RTT, utilisation 0.94' },
  1000: { ratio: 0.83, measured: true, source: 'README "bench:wan": beeldnet, 1000 Mbit/s, 20 ms RTT, utilisation 0.83' },
  10000: { ratio: 0.83, measured: false, source: 'not measured: the 1 Gbit/s ratio (README "bench:wan", 0.83 at 20 ms) until bench:wan runs at 10 Gbit/s' }
}

/**
 * Fixed cost of one push, seconds: README "bench:wan", "about 0.2 s of that is fixed per push (the offer, the answer,
 * the data connection's handshake: 3-4 round trips; then the study's commit and the receipt, about 0.13 s)".
 */
export const FIXED_PUSH_SECONDS = 0.2

/**
 * Round trip between two nodes, seconds (assumption): bench:wan's 1 Gbit/s row runs at 20 ms; two Dutch hospitals
 * are usually closer (under 10 ms), so 20 ms is on the slow side. A pull costs one more of these (its request).
 */
export const RTT_SECONDS = 0.02

/**
 * Bytes of one report instance (assumption): a Basic Text SR is a few KiB, an encapsulated PDF report tens to a few
 * hundred KiB; 100 KiB each. It only sets how soon the report is there (milliseconds on any line).
 */
export const REPORT_BYTES = 100 * 1024

/** What the run says happened to one exchange; an exchange without facts counts as delivered without delay. */
export type ExchangeFacts =
  | {
    outcome: 'delivered'
    /** Seconds added before the push starts: a retry after a refusal, the sender's node down, a pull's policy wait. */
    extraDelaySec?: number
  }
  | {
    /** Refused at the offer or ended (failed, cancelled) with a stable code: never available at the receiver. */
    outcome: 'refused' | 'ended'
    code: string
    extraDelaySec?: number
  }

export type LinkClass = '100 Mbit' | '1 Gbit' | '10 Gbit'
export const LINK_CLASSES: readonly LinkClass[] = ['100 Mbit', '1 Gbit', '10 Gbit']

export interface ExchangeTiming {
  /** Index of the exchange in the plan. */
  index: number
  at: number
  modality: ExchangeModality
  kind: Exchange['kind']
  from: string
  to: string
  /** The path's line: the slower of the two links. */
  linkClass: LinkClass
  /** False when the path's line has no measured utilisation (10 Gbit/s: the 1 Gbit/s ratio). */
  utilisationMeasured: boolean
  delivered: boolean
  /** The refusal's or end's code when not delivered. */
  code: string | null
  /** Seconds since 07:00 (simulated): `at` plus the extra delay. */
  startedAt: number
  /** Seconds since 07:00 (simulated) when the bytes begin to flow: startedAt + fixed (+ RTT for a pull). */
  dataStartedAt: number | null
  reportAvailableAt: number | null
  imagesAvailableAt: number | null
  /** (imagesAvailableAt - at) / 60: from the moment the plan asks for the exchange, delays included. */
  timeToAvailableMin: number | null
  /** The same exchange's time alone on its path (no sharing, no extra delay), seconds. */
  aloneSeconds: number
  /** Bytes/s the images got when they started (after sharing). */
  initialRate: number | null
  /** Bytes moved, rate x time integrated over the simulation (realBytes up to rounding for a delivered exchange: the fluid model's check). */
  movedBytes: number
}

export interface NodeLoad {
  ura: string
  /** Most transfers at once whose bytes leave this node / arrive at it, and both together (simulated time). */
  peakOut: number
  peakIn: number
  peakTotal: number
}

export interface ClockResult {
  timings: ExchangeTiming[]
  nodes: NodeLoad[]
}

/** The path's line class, from the slower link. */
export function linkClassOf (linkMbit: LinkMbit): LinkClass {
  return linkMbit === 100 ? '100 Mbit' : linkMbit === 1000 ? '1 Gbit' : '10 Gbit'
}

/** What one endpoint carries at most for Beeldnet, bytes/s: link x utilisation(link). */
export function capacityBytesPerSec (linkMbit: LinkMbit): number {
  const u = UTILISATION[linkMbit]
  if (u === undefined) throw new InvalidSpecError(`link ${String(linkMbit)} Mbit/s is not one of 100, 1000, 10000`)
  return linkMbit * 1e6 * u.ratio / 8
}

/** Setup before the bytes: the per-push cost, and for a pull one more round trip (the request). */
export function setupSeconds (kind: Exchange['kind']): number {
  return FIXED_PUSH_SECONDS + (kind === 'pull' ? RTT_SECONDS : 0)
}

/** README step 3: `fixed + realBytes x 8 / (line x 10^6 x utilisation)`, line = min of the two links (alone on it). */
export function aloneSeconds (e: Pick<Exchange, 'kind' | 'realBytes'>, fromLink: LinkMbit, toLink: LinkMbit): number {
  const line = Math.min(fromLink, toLink) as LinkMbit
  return setupSeconds(e.kind) + e.realBytes / capacityBytesPerSec(line)
}

interface Flow {
  index: number
  /** Resource ids: the sender's uplink and the receiver's downlink. */
  up: number
  down: number
  remaining: number
  rate: number
  moved: number
}

/**
 * Runs the clock. Processor sharing by an event-driven fluid simulation with a max-min fair allocation by progressive
 * filling: every node has an uplink and a downlink of capacity link x utilisation(link); at each event (a transfer's
 * bytes start, a transfer's bytes end) all active rates are raised together until some endpoint is full, the flows
 * through it are frozen, and the rest go on rising. Max-min rather than "each flow gets the least of its two equal
 * shares": that simpler rule leaves capacity unused (a flow held back by its slow sender keeps the receiver's share
 * it cannot use, and its neighbours at the receiver do not get it), so it would overstate the times; max-min fair is
 * the allocation TCP flows sharing bottlenecks tend to, and it is work-conserving. Exact up to floating point,
 * deterministic (ties in exchange order), O(events x active x bottleneck rounds).
 */
export function runClock (
  institutions: readonly Institution[],
  exchanges: readonly Exchange[],
  facts: ReadonlyArray<ExchangeFacts | undefined> = []
): ClockResult {
  const nodeIndex = new Map<string, number>()
  institutions.forEach((inst, i) => {
    if (nodeIndex.has(inst.ura)) throw new InvalidSpecError(`institution ${inst.ura} is listed twice`)
    capacityBytesPerSec(inst.linkMbit)
    nodeIndex.set(inst.ura, i)
  })
  if (facts.length > exchanges.length) throw new InvalidSpecError(`${facts.length} facts for ${exchanges.length} exchanges`)
  const n = institutions.length
  // Resource r < n: node r's uplink; r >= n: node r - n's downlink.
  const capacity = [...institutions.map((i) => capacityBytesPerSec(i.linkMbit)), ...institutions.map((i) => capacityBytesPerSec(i.linkMbit))]

  const timings: ExchangeTiming[] = exchanges.map((e, index) => {
    const from = nodeIndex.get(e.from)
    const to = nodeIndex.get(e.to)
    if (from === undefined || to === undefined) throw new InvalidSpecError(`exchange ${index}: ${from === undefined ? e.from : e.to} is not among the institutions`)
    if (!(Number.isFinite(e.at) && e.at >= 0)) throw new InvalidSpecError(`exchange ${index}: at must be a finite number >= 0, not ${e.at}`)
    if (!(Number.isFinite(e.realBytes) && e.realBytes > 0)) throw new InvalidSpecError(`exchange ${index}: realBytes must be > 0, not ${e.realBytes}`)
    if (!(Number.isInteger(e.reports) && e.reports >= 0)) throw new InvalidSpecError(`exchange ${index}: reports must be an integer >= 0, not ${e.reports}`)
    const f = facts[index] ?? { outcome: 'delivered' }
    const delay = f.extraDelaySec ?? 0
    if (!(Number.isFinite(delay) && delay >= 0)) throw new InvalidSpecError(`exchange ${index}: extraDelaySec must be a finite number >= 0, not ${delay}`)
    if (f.outcome !== 'delivered' && !(typeof f.code === 'string' && f.code !== '')) throw new InvalidSpecError(`exchange ${index}: a ${f.outcome} exchange needs its code`)
    const fromLink = institutions[from]!.linkMbit
    const toLink = institutions[to]!.linkMbit
    const line = Math.min(fromLink, toLink) as LinkMbit
    const delivered = f.outcome === 'delivered'
    const startedAt = e.at + delay
    return {
      index,
      at: e.at,
      modality: e.modality,
      kind: e.kind,
      from: e.from,
      to: e.to,
      linkClass: linkClassOf(line),
      utilisationMeasured: UTILISATION[line].measured,
      delivered,
      code: f.outcome === 'delivered' ? null : f.code,
      startedAt,
      dataStartedAt: delivered ? startedAt + setupSeconds(e.kind) : null,
      reportAvailableAt: null,
      imagesAvailableAt: null,
      timeToAvailableMin: null,
      aloneSeconds: aloneSeconds(e, fromLink, toLink),
      initialRate: null,
      movedBytes: 0
    }
  })

  // Arrivals of bytes, in time order, ties in exchange order.
  const arrivals = timings.filter((t) => t.delivered).sort((a, b) => a.dataStartedAt! - b.dataStartedAt! || a.index - b.index)
  const active: Flow[] = []
  const outNow = new Array<number>(n).fill(0)
  const inNow = new Array<number>(n).fill(0)
  const loads: NodeLoad[] = institutions.map((i) => ({ ura: i.ura, peakOut: 0, peakIn: 0, peakTotal: 0 }))
  let next = 0
  let now = 0

  while (next < arrivals.length || active.length > 0) {
    // The next event: the earliest finish at current rates, or the next arrival.
    let finishAt = Infinity
    let ending = new Set<Flow>()
    for (const f of active) {
      const at = now + f.remaining / f.rate
      if (at < finishAt) {
        finishAt = at
        ending = new Set([f])
      } else if (at === finishAt) {
        ending.add(f)
      }
    }
    const arriveAt = next < arrivals.length ? arrivals[next]!.dataStartedAt! : Infinity
    const t = Math.min(finishAt, arriveAt)
    const dt = t - now
    for (const f of active) {
      // rate x dt, integrated as it is (not clipped to what was left), so movedBytes checks the model
      f.remaining -= f.rate * dt
      f.moved += f.rate * dt
    }
    now = t
    // Ends first (a transfer that ends as another starts does not share with it). The flows that set this event end
    // whatever floating point left of their bytes, and so does any other within a part in 10^9 of its end.
    if (finishAt <= arriveAt) {
      for (let i = active.length - 1; i >= 0; i--) {
        const f = active[i]!
        if (ending.has(f) || f.remaining <= exchanges[f.index]!.realBytes * 1e-9) {
          const timing = timings[f.index]!
          timing.imagesAvailableAt = now
          timing.movedBytes = f.moved
          active.splice(i, 1)
          outNow[f.up]!--
          inNow[f.down - n]!--
        }
      }
    }
    const joined: Flow[] = []
    while (next < arrivals.length && arrivals[next]!.dataStartedAt! === now) {
      const timing = arrivals[next++]!
      const e = exchanges[timing.index]!
      const flow: Flow = { index: timing.index, up: nodeIndex.get(e.from)!, down: n + nodeIndex.get(e.to)!, remaining: e.realBytes, rate: 0, moved: 0 }
      active.push(flow)
      joined.push(flow)
      outNow[flow.up]!++
      inNow[flow.down - n]!++
      const upLoad = loads[flow.up]!
      const downLoad = loads[flow.down - n]!
      upLoad.peakOut = Math.max(upLoad.peakOut, outNow[flow.up]!)
      downLoad.peakIn = Math.max(downLoad.peakIn, inNow[flow.down - n]!)
      for (const node of [flow.up, flow.down - n]) loads[node]!.peakTotal = Math.max(loads[node]!.peakTotal, outNow[node]! + inNow[node]!)
    }
    allocateMaxMin(active, capacity)
    for (const f of joined) {
      const timing = timings[f.index]!
      const e = exchanges[f.index]!
      timing.initialRate = f.rate
      // The report goes ahead of the images at the rate the transfer starts with; never after the images.
      timing.reportAvailableAt = e.reports === 0 ? null : timing.dataStartedAt! + e.reports * REPORT_BYTES / f.rate
    }
  }

  for (const t of timings) {
    if (t.imagesAvailableAt === null) continue
    if (t.reportAvailableAt !== null) t.reportAvailableAt = Math.min(t.reportAvailableAt, t.imagesAvailableAt)
    t.timeToAvailableMin = (t.imagesAvailableAt - t.at) / 60
  }
  return { timings, nodes: loads }
}

/**
 * Max-min fair rates by progressive filling: raise every unfrozen flow's rate by the same amount until an endpoint is
 * full (the smallest remaining capacity / unfrozen flows through it), freeze the flows through every full endpoint,
 * repeat. Each round freezes at least one endpoint, so at most (active endpoints) rounds of O(active) each.
 */
export function allocateMaxMin (flows: ReadonlyArray<{ up: number, down: number, rate: number }>, capacity: readonly number[]): void {
  const remaining = new Map<number, number>()
  const users = new Map<number, number>()
  for (const f of flows) {
    f.rate = 0
    for (const r of [f.up, f.down]) {
      remaining.set(r, capacity[r]!)
      users.set(r, (users.get(r) ?? 0) + 1)
    }
  }
  let unfrozen = flows.slice()
  while (unfrozen.length > 0) {
    let inc = Infinity
    for (const [r, u] of users) if (u > 0) inc = Math.min(inc, remaining.get(r)! / u)
    for (const f of unfrozen) f.rate += inc
    const full = new Set<number>()
    for (const [r, u] of users) {
      if (u === 0) continue
      const left = remaining.get(r)! - inc * u
      remaining.set(r, left)
      // The endpoint that set `inc` is full; others within a part in 10^12 of full are too (floating point).
      if (left <= capacity[r]! * 1e-12) full.add(r)
    }
    const still: typeof unfrozen = []
    for (const f of unfrozen) {
      if (full.has(f.up) || full.has(f.down)) {
        users.set(f.up, users.get(f.up)! - 1)
        users.set(f.down, users.get(f.down)! - 1)
      } else {
        still.push(f)
      }
    }
    unfrozen = still
  }
}

export interface TimeStats {
  count: number
  p50: number | null
  p95: number | null
  max: number | null
}

export interface ClockSummary {
  exchanges: number
  delivered: number
  notDelivered: number
  /** Minutes, delivered exchanges. */
  overall: TimeStats
  byModality: Record<string, TimeStats>
  byLinkClass: Record<string, TimeStats>
  /** By the clock hour (0-23) of `at`. */
  byHour: Record<string, TimeStats>
  busiest: NodeLoad | null
  nodes: NodeLoad[]
  /** True when some delivered exchange ran on a path whose utilisation is assumed (10 Gbit/s). */
  assumedUtilisation: boolean
}

/** Nearest-rank percentile of sorted values: the smallest value with at least p of them at or below it. */
export function percentile (sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!
}

export function timeStats (minutes: readonly number[]): TimeStats {
  const sorted = minutes.slice().sort((a, b) => a - b)
  return { count: sorted.length, p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), max: sorted.length === 0 ? null : sorted[sorted.length - 1]! }
}

/** Count, p50, p95 and max time-to-available (minutes) overall, per modality, link class and hour, and node peaks. */
export function summarise (result: ClockResult): ClockSummary {
  const done = result.timings.filter((t) => t.timeToAvailableMin !== null)
  const group = (key: (t: ExchangeTiming) => string, order: (k: string) => number | string = (k) => k): Record<string, TimeStats> => {
    const groups = new Map<string, number[]>()
    for (const t of done) {
      const k = key(t)
      const list = groups.get(k) ?? []
      list.push(t.timeToAvailableMin!)
      groups.set(k, list)
    }
    const keys = [...groups.keys()].sort((a, b) => { const x = order(a); const y = order(b); return x < y ? -1 : x > y ? 1 : 0 })
    return Object.fromEntries(keys.map((k) => [k, timeStats(groups.get(k)!)]))
  }
  const busiest = result.nodes.reduce<NodeLoad | null>((b, l) => b === null || l.peakTotal > b.peakTotal ? l : b, null)
  return {
    exchanges: result.timings.length,
    delivered: done.length,
    notDelivered: result.timings.length - done.length,
    overall: timeStats(done.map((t) => t.timeToAvailableMin!)),
    byModality: group((t) => t.modality),
    byLinkClass: group((t) => t.linkClass, (k) => LINK_CLASSES.indexOf(k as LinkClass)),
    // Keys '07:00' ... '06:00': the day's order (07:00 to 07:00), which is the order the entries are made in.
    byHour: group((t) => String(hourOf(t.at)).padStart(2, '0') + ':00', (k) => (Number(k.slice(0, 2)) + 17) % 24),
    busiest,
    nodes: result.nodes,
    assumedUtilisation: done.some((t) => !t.utilisationMeasured)
  }
}

/** The summary as table rows (simulations/bench/table.ts): one per group, minutes to 3 significant digits. */
export function summaryRows (summary: ClockSummary): BenchRow[] {
  const row = (name: string, s: TimeStats): BenchRow => ({
    name,
    mbPerS: 0,
    peakRssMb: null,
    count: s.count,
    'p50 min': s.p50 === null ? null : s.p50.toPrecision(3),
    'p95 min': s.p95 === null ? null : s.p95.toPrecision(3),
    'max min': s.max === null ? null : s.max.toPrecision(3)
  })
  return [
    row('all', summary.overall),
    ...Object.entries(summary.byModality).map(([k, s]) => row(`modality ${k}`, s)),
    ...Object.entries(summary.byLinkClass).map(([k, s]) => row(`path ${k}${k === '10 Gbit' ? ' *' : ''}`, s)),
    ...Object.entries(summary.byHour).map(([k, s]) => row(`hour ${k}`, s))
  ]
}
export const SUMMARY_COLUMNS = ['count', 'p50 min', 'p95 min', 'max min']

// The CLI: the clock on the model's plan alone (every exchange delivered, no faults, no extra delay).
if (import.meta.filename === process.argv[1]) {
  const { parseArgs } = await import('node:util')
  const { nationalDay } = await import('./model.ts')
  const { formatTable } = await import('../bench/table.ts')
  try {
    const { values } = parseArgs({
      options: {
        seed: { type: 'string', default: '18' },
        institutions: { type: 'string', default: '120' },
        studies: { type: 'string', default: '3000' },
        plot: { type: 'string' },
        png: { type: 'string' },
        by: { type: 'string', default: 'linkClass' }
      }
    })
    const int = (name: string, v: string): number => {
      if (!/^\d+$/.test(v)) throw new InvalidSpecError(`--${name} must be a whole number, not ${JSON.stringify(v)}`)
      return Number(v)
    }
    if (values.by !== 'linkClass' && values.by !== 'modality') throw new InvalidSpecError(`--by must be linkClass or modality, not ${JSON.stringify(values.by)}`)
    const plan = nationalDay({ seed: int('seed', values.seed), institutions: int('institutions', values.institutions), studies: int('studies', values.studies) })
    const result = runClock(plan.institutions, plan.exchanges)
    const summary = summarise(result)
    const byUra = new Map(plan.institutions.map((i) => [i.ura, i]))
    console.log(`National day, simulated clock: ${plan.institutions.length} institutions, ${plan.exchanges.length} studies, seed ${plan.seed}; every exchange delivered, no faults\n`)
    console.log(formatTable(summaryRows(summary), SUMMARY_COLUMNS))
    if (summary.assumedUtilisation) console.log(`\n* 10 Gbit/s paths: ${UTILISATION[10000].source}`)
    const top = summary.nodes.slice().sort((a, b) => b.peakTotal - a.peakTotal || a.ura.localeCompare(b.ura)).slice(0, 5)
    console.log('\nBusiest nodes (most transfers at once, simulated):\n')
    console.log(formatTable(top.map((l) => ({ name: byUra.get(l.ura)!.name, mbPerS: 0, peakRssMb: null, link: linkClassOf(byUra.get(l.ura)!.linkMbit), 'peak in': l.peakIn, 'peak out': l.peakOut, 'peak in+out': l.peakTotal })), ['link', 'peak in', 'peak out', 'peak in+out']))
    if (values.plot !== undefined) {
      const { writeTimeToAvailablePlot } = await import('./plot.ts')
      await writeTimeToAvailablePlot(result.timings, { institutions: plan.institutions.length, studies: plan.exchanges.length, seed: plan.seed, by: values.by, svgPath: values.plot, ...(values.png === undefined ? {} : { pngPath: values.png }) })
      console.log(`\nwrote ${values.plot}${values.png === undefined ? '' : ` and ${values.png}`}`)
    }
  } catch (err) {
    console.error(`${(err as { code?: string }).code ?? 'error'}: ${(err as Error).message}`)
    process.exitCode = 1
  }
}
