import type { BenchRow } from '../bench/table.ts'
import { runClock, summarise, timeStats, UTILISATION } from './clock.ts'
import type { DayPlan, Exchange, LinkMbit } from './model.ts'

/*
 * What one node would need to serve ten times the busiest hospital of the day (issue 18 point 3).
 * The busiest is the institution with most bytes in and out. Its exchanges are taken ten times
 * (each copy a few minutes after the one before, so the busy hours stay busy) and the simulated
 * clock runs that day on its own line and on faster ones; the rest is arithmetic on the day's bytes
 * and on what the benchmarks measured (constants below, each with its source).
 */

/** CPU seconds per GiB moved at one node (README, bench:transfer: 'beeldnet' 5.9-7.4 CPU s/GiB; the higher figure) */
export const CPU_SECONDS_PER_GIB = 7.4
/** days a received study stays (the node's default store.retentionDays) */
export const RETENTION_DAYS = 30
/** peak RSS of a node receiving a 4 GB study alone (README, bench:transfer 'beeldnet-4gb': 165 MB) */
export const RECEIVER_PEAK_RSS_MB = 165
/** the copies of each exchange of the busiest node are this far apart (simulated seconds) */
const COPY_SPACING_SECONDS = 240

export interface TenTimes {
  busiest: string
  link: LinkMbit
  exchanges: number
  inGiBPerDay: number
  outGiBPerDay: number
  peakHourGiB: number
  /** the line the peak hour needs at bench:wan's utilisation, Gbit/s */
  peakHourGbit: number
  /** CPU cores busy on average in the peak hour */
  peakHourCores: number
  /** disk for RETENTION_DAYS of received studies, TiB */
  diskTiB: number
  /** on a 1 and a 10 Gbit/s line: most transfers at once at the node and the p95 / max time-to-available of its exchanges */
  byLink: Array<{ link: LinkMbit, peakConcurrent: number, p95Min: number | null, maxMin: number | null }>
}

const GiB = 2 ** 30

export function tenTimesBusiest (plan: DayPlan, factor = 10): TenTimes {
  const bytesOf = new Map<string, number>()
  for (const e of plan.exchanges) for (const ura of [e.from, e.to]) bytesOf.set(ura, (bytesOf.get(ura) ?? 0) + e.realBytes)
  const [busiestUra] = [...bytesOf].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]!
  const busiest = plan.institutions.find((i) => i.ura === busiestUra)!
  const own = plan.exchanges.filter((e) => e.from === busiestUra || e.to === busiestUra)
  const copies: Exchange[] = []
  for (const e of own) for (let k = 0; k < factor; k++) copies.push({ ...e, at: (e.at + k * COPY_SPACING_SECONDS) % 86_400 })
  const others = plan.exchanges.filter((e) => e.from !== busiestUra && e.to !== busiestUra)
  const day = [...others, ...copies].sort((a, b) => a.at - b.at)

  const hourly = new Array<number>(24).fill(0)
  for (const e of copies) hourly[Math.floor(e.at / 3600)]! += e.realBytes
  const peakHourBytes = Math.max(...hourly)
  const inBytes = copies.filter((e) => e.to === busiestUra).reduce((n, e) => n + e.realBytes, 0)
  const outBytes = copies.filter((e) => e.from === busiestUra).reduce((n, e) => n + e.realBytes, 0)

  const byLink = ([1000, 10_000] as LinkMbit[]).map((link) => {
    const institutions = plan.institutions.map((i) => i.ura === busiestUra ? { ...i, linkMbit: link } : i)
    const clock = runClock(institutions, day)
    const load = summarise(clock).nodes.find((n) => n.ura === busiestUra)
    const times = timeStats(clock.timings.filter((t) => (t.from === busiestUra || t.to === busiestUra) && t.timeToAvailableMin !== null).map((t) => t.timeToAvailableMin!))
    return { link, peakConcurrent: load?.peakTotal ?? 0, p95Min: times.p95, maxMin: times.max }
  })
  return {
    busiest: busiest.name,
    link: busiest.linkMbit,
    exchanges: copies.length,
    inGiBPerDay: inBytes / GiB,
    outGiBPerDay: outBytes / GiB,
    peakHourGiB: peakHourBytes / GiB,
    peakHourGbit: peakHourBytes * 8 / 3600 / 1e9 / UTILISATION[1000].ratio,
    peakHourCores: peakHourBytes / GiB * CPU_SECONDS_PER_GIB / 3600,
    diskTiB: inBytes * RETENTION_DAYS / 2 ** 40,
    byLink
  }
}

export function tenTimesRows (t: TenTimes): BenchRow[] {
  const round = (x: number | null, d = 2): number | null => x === null ? null : Number(x.toFixed(d))
  return t.byLink.map((l) => ({
    name: `10x-busiest-${l.link >= 10_000 ? '10g' : l.link >= 1000 ? '1g' : '100m'}`,
    mbPerS: Number.NaN,
    peakRssMb: null,
    institution: t.busiest,
    studies: t.exchanges,
    inGiBPerDay: round(t.inGiBPerDay, 0),
    outGiBPerDay: round(t.outGiBPerDay, 0),
    peakHourGiB: round(t.peakHourGiB, 1),
    peakHourGbit: round(t.peakHourGbit),
    peakHourCores: round(t.peakHourCores),
    diskTiB: round(t.diskTiB, 1),
    peakConcurrent: l.peakConcurrent,
    p95Min: round(l.p95Min),
    maxMin: round(l.maxMin)
  }))
}
