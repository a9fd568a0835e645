import type { DayPlan, Exchange, Institution } from './model.ts'

/*
 * The faults of the national day (issue 18 point 2), on the simulated clock (seconds since 07:00),
 * and which institutions suffer them. Chosen from the plan so that each fault meets traffic: a
 * crashed node that nobody sends to proves nothing.
 */

const HOUR = 3600

export const FAULT_TIMES = {
  /** one node killed (SIGKILL) at 09:00 and started again at 09:30 */
  crashAt: 2 * HOUR,
  restartAt: 2.5 * HOUR,
  /** one institution suspended at noon, through the registry (nodes learn it by polling and gossip) */
  suspendAt: 5 * HOUR,
  /** the registry unreachable 13:00-17:00 */
  registryDownAt: 6 * HOUR,
  registryUpAt: 10 * HOUR,
  /** one node key revoked at 14:00, while the registry is down: the new directory travels by gossip only */
  revokeAt: 7 * HOUR
} as const

export interface FaultActors {
  /** killed and restarted */
  crash: Institution
  /** its store fills up just before its busiest two hours: it refuses offers with BEELDNET_ERR_DISK_FULL until retention frees space */
  diskFull: Institution
  suspended: Institution
  /** its node key is revoked */
  revoked: Institution
  /** the node governance hands the revocation to, by hand (an IT admin imports the file) */
  revocationEntry: Institution
}

/** Retention at the disk-full node: studies untouched this long (simulated) are purged. */
export const DISK_FULL_RETENTION_SECONDS = 2 * HOUR

/** The window of `seconds` (simulated) in which `ura` receives most bytes: when its disk filling up hurts most. */
export function busiestWindow (exchanges: readonly Exchange[], ura: string, seconds: number): { at: number, bytes: number, studies: number } {
  const arrivals = exchanges.filter((e) => e.to === ura)
  let best = { at: 0, bytes: 0, studies: 0 }
  for (const first of arrivals) {
    const inside = arrivals.filter((e) => e.at >= first.at && e.at < first.at + seconds)
    const bytes = inside.reduce((n, e) => n + e.bytes, 0)
    if (bytes > best.bytes) best = { at: first.at, bytes, studies: inside.length }
  }
  return best
}

function count (exchanges: readonly Exchange[], ura: string, from: number, to: number, role: 'from' | 'to' | 'any'): number {
  return exchanges.filter((e) => e.at >= from && e.at < to && (role === 'any' ? e.from === ura || e.to === ura : e[role] === ura)).length
}

/** The hospital with most traffic in [from, to), not one of `taken`; ties go to the lower URA. */
function busiest (plan: DayPlan, taken: Set<string>, from: number, to: number, role: 'from' | 'to' | 'any'): Institution {
  const candidates = plan.institutions.filter((i) => i.kind === 'hospital' && !taken.has(i.ura))
  if (candidates.length === 0) throw new RangeError('the plan has too few hospitals for the faults')
  const scored = candidates.map((i) => ({ i, n: count(plan.exchanges, i.ura, from, to, role) }))
  scored.sort((a, b) => b.n - a.n || a.i.ura.localeCompare(b.i.ura))
  return scored[0]!.i
}

export function chooseFaultActors (plan: DayPlan): FaultActors {
  const taken = new Set<string>()
  const take = (i: Institution): Institution => { taken.add(i.ura); return i }
  const t = FAULT_TIMES
  const crash = take(busiest(plan, taken, t.crashAt - HOUR, t.restartAt + HOUR, 'any'))
  // the hospital whose arrivals bunch most within a retention period: its quota fills and then frees
  const diskFull = take(plan.institutions
    .filter((i) => i.kind === 'hospital' && !taken.has(i.ura))
    .map((i) => ({ i, bytes: busiestWindow(plan.exchanges, i.ura, DISK_FULL_RETENTION_SECONDS).bytes }))
    .sort((a, b) => b.bytes - a.bytes || a.i.ura.localeCompare(b.i.ura))[0]!.i)
  const suspended = take(busiest(plan, taken, t.suspendAt, 86_400, 'any'))
  const revoked = take(busiest(plan, taken, t.revokeAt, 86_400, 'any'))
  const umc = plan.institutions.find((i) => i.kind === 'umc' && !taken.has(i.ura))
  if (umc === undefined) throw new RangeError('the plan has no UMC to hand the revocation to')
  return { crash, diskFull, suspended, revoked, revocationEntry: umc }
}
