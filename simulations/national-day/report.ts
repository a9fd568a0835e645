import type { BenchRow } from '../bench/table.ts'
import { aloneSeconds, runClock, summarise, type ClockResult, type ExchangeFacts } from './clock.ts'
import { excused, type DayResult, type ExchangeRecord } from './day.ts'
import { FAULT_TIMES } from './faults.ts'
import type { LinkMbit } from './model.ts'
import { tenTimesBusiest, tenTimesRows } from './sizing.ts'

/*
 * What the national day says (issue 18 point 3), as bench rows: `--json` prints them, the table
 * shows them. Time-to-available comes from the simulated clock (clock.ts) fed with what really
 * happened to each exchange; the invariants (nothing lost, byte-identical, trails intact, faults
 * honoured) from the run itself.
 */

export const REPORT_COLUMNS = [
  'institutions', 'studies', 'delivered', 'endedByFault', 'lost', 'realGb', 'movedMb', 'p50Min', 'p95Min', 'maxMin',
  'busiestPeakConcurrent', 'cpuS', 'peakRssMbPerProcess', 'rssMbPerNode',
  'seconds', 'nodesRefusing', 'requests', 'perSecond', 'peakPerSecond', 'perNodePerSimHour', 'ended', 'codes', 'refusals', 'recovered',
  'institution', 'inGiBPerDay', 'outGiBPerDay', 'peakHourGiB', 'peakHourGbit', 'peakHourCores', 'diskTiB', 'peakConcurrent'
]

const round = (x: number, digits = 1): number => Number(x.toFixed(digits))

/** An exchange is lost when nothing excuses its absence, or when what arrived is not what was sent. */
export function isLost (r: ExchangeRecord, result: DayResult): boolean {
  if (r.outcome?.state === 'complete') return r.byteIdentical !== true
  return !excused(r, result.actors, 86_400)
}

function linkOf (result: DayResult, ura: string): LinkMbit {
  return result.plan.institutions.find((i) => i.ura === ura)!.linkMbit
}

/** What the clock needs of each exchange: delivered (with the wait a fault or a retry added) or not, with its code. */
export function factsOf (result: DayResult): ExchangeFacts[] {
  return result.records.map((r) => {
    const code = r.outcome?.code ?? r.dispatchError ?? r.outcome?.codes.at(-1) ?? 'BEELDNET_ERR_NOT_DELIVERED'
    if (r.outcome?.state !== 'complete') return { outcome: r.outcome === undefined && r.dispatchError === undefined ? 'ended' : 'refused', code }
    // A retried or deferred exchange starts on the simulated clock when its last try began in wall
    // time: its wall end, on the simulated clock, less the time it takes alone on its path.
    const retried = r.outcome.attempts > 1 || r.deferredSec > 0
    const endedSim = (r.outcome.wallAt - result.t0) / 1000 * result.compression
    const alone = aloneSeconds(r.exchange, linkOf(result, r.exchange.from), linkOf(result, r.exchange.to))
    return { outcome: 'delivered', extraDelaySec: retried ? Math.max(r.deferredSec, endedSim - r.exchange.at - alone) : 0 }
  })
}

export function reportRows (result: DayResult): { rows: BenchRow[], clock: ClockResult } {
  const { records, plan } = result
  const clock = runClock(plan.institutions, plan.exchanges, factsOf(result))
  const summary = summarise(clock)
  const delivered = records.filter((r) => r.outcome?.state === 'complete')
  const cpuS = result.hosts.reduce((n, h) => n + h.cpuSeconds, 0)
  const peakRss = Math.max(...result.hosts.map((h) => h.peakRssMb))
  const rssTotal = result.hosts.reduce((n, h) => n + h.rssMb, 0)
  const nodes = plan.institutions.length

  const day: BenchRow = {
    name: 'national-day',
    mbPerS: Number.NaN,
    peakRssMb: round(peakRss),
    institutions: nodes,
    studies: records.length,
    delivered: delivered.length,
    endedByFault: records.filter((r) => r.outcome?.state !== 'complete' && excused(r, result.actors, 86_400)).length,
    lost: records.filter((r) => isLost(r, result)).length,
    realGb: round(plan.exchanges.reduce((n, e) => n + e.realBytes, 0) / 2 ** 30),
    movedMb: round(delivered.reduce((n, r) => n + r.exchange.bytes, 0) / 2 ** 20),
    p50Min: round(summary.overall.p50 ?? Number.NaN, 2),
    p95Min: round(summary.overall.p95 ?? Number.NaN, 2),
    maxMin: round(summary.overall.max ?? Number.NaN, 2),
    busiestPeakConcurrent: summary.busiest?.peakTotal ?? null,
    cpuS: round(cpuS),
    peakRssMbPerProcess: round(peakRss),
    rssMbPerNode: round(rssTotal / nodes, 2)
  }

  // Every node but the revoked one, and but the suspended institution's: peers no longer talk to it, so it
  // learns only from the registry (down at the time), and refuses nobody anyone could reach it through.
  const others = nodes - 1
  const revokedBy = [...result.revocation.refusedAt].filter(([ura]) => ura !== result.actors.suspended.ura).map(([, at]) => at)
  const revocation: BenchRow = {
    name: 'revocation',
    mbPerS: Number.NaN,
    peakRssMb: null,
    nodesRefusing: `${revokedBy.length}/${others - 1}`,
    seconds: revokedBy.length === others - 1 ? round((Math.max(...revokedBy) - result.revocation.handedAt) / 1000, 2) : null
  }
  const suspendedBy = [...result.suspension.refusedAt.values()]
  const ended = records.filter((r) => (r.exchange.from === result.actors.suspended.ura || r.exchange.to === result.actors.suspended.ura) && r.exchange.at >= FAULT_TIMES.suspendAt - 3600 && r.outcome?.state !== 'complete')
  const codes = new Map<string, number>()
  for (const r of ended) {
    const code = r.outcome?.code ?? r.dispatchError ?? r.outcome?.codes.at(-1) ?? (r.lastState === undefined ? 'NOT_DISPATCHED' : `${r.lastState.state}:${r.lastState.code ?? 'no error yet'}`)
    codes.set(code, (codes.get(code) ?? 0) + 1)
  }
  const suspension: BenchRow = {
    name: 'suspension',
    mbPerS: Number.NaN,
    peakRssMb: null,
    nodesRefusing: `${suspendedBy.length}/${others}`,
    seconds: suspendedBy.length === others ? round((Math.max(...suspendedBy) - result.suspension.at) / 1000, 2) : null,
    ended: ended.length,
    codes: [...codes].map(([c, n]) => `${c.replace('BEELDNET_ERR_', '')} ${n}`).join(', ')
  }
  const registry: BenchRow = {
    name: 'registry',
    mbPerS: Number.NaN,
    peakRssMb: null,
    requests: result.registry.requests,
    perSecond: round(result.registry.perSecond, 2),
    peakPerSecond: result.registry.peakPerSecond,
    perNodePerSimHour: round(result.registry.perNodePerSimHour, 2)
  }
  const toFull = records.filter((r) => r.exchange.to === result.actors.diskFull.ura)
  const refused = toFull.filter((r) => r.outcome?.codes.includes('BEELDNET_ERR_DISK_FULL') === true)
  const diskFull: BenchRow = {
    name: 'disk-full',
    mbPerS: Number.NaN,
    peakRssMb: null,
    studies: toFull.length,
    refusals: refused.length,
    recovered: refused.filter((r) => r.outcome?.state === 'complete').length,
    lost: toFull.filter((r) => isLost(r, result)).length
  }
  const crash = records.filter((r) => r.exchange.from === result.actors.crash.ura || r.exchange.to === result.actors.crash.ura)
  const crashRow: BenchRow = {
    name: 'crash-restart',
    mbPerS: Number.NaN,
    peakRssMb: null,
    studies: crash.length,
    delivered: crash.filter((r) => r.outcome?.state === 'complete').length,
    lost: crash.filter((r) => isLost(r, result)).length
  }
  return { rows: [day, revocation, suspension, registry, diskFull, crashRow, ...tenTimesRows(tenTimesBusiest(plan))], clock }
}
