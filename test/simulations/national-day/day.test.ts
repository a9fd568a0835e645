import { beforeAll, describe, expect, it } from 'vitest'
import { excused, runDay, type DayResult, type ExchangeRecord } from '../../../simulations/national-day/day.ts'
import { FAULT_TIMES } from '../../../simulations/national-day/faults.ts'
import { CI_PRESET } from '../../../simulations/national-day/model.ts'
import { isLost, reportRows } from '../../../simulations/national-day/report.ts'

/*
 * The national day in its CI size (issue 18): 12 institutions, 60 studies, every fault, on real
 * nodes in real processes. One run, many invariants: what the full day (`npm run
 * simulate:national-day`) reports is checked here on the small one.
 */

/** Wall seconds within which every node must refuse a suspended institution or a revoked key. */
const REFUSAL_BOUND_SECONDS = 10

let result: DayResult
const describeRecord = (r: ExchangeRecord): string => `exchange ${r.index} (${r.exchange.kind} ${r.exchange.from} -> ${r.exchange.to} at ${r.exchange.at.toFixed(0)} s): ${JSON.stringify({ outcome: r.outcome, dispatchError: r.dispatchError, lastState: r.lastState, byteIdentical: r.byteIdentical })}`

beforeAll(async () => {
  result = await runDay({
    seed: 18, ...CI_PRESET, scale: 0.0005, instanceScale: 0.01, processes: 2, daySeconds: 90, drainSeconds: 90, keep: false,
    onProgress: () => {}
  })
})

describe('a national day, CI size', () => {
  it('loses nothing: every exchange no fault excuses is delivered, byte for byte as its holder had it', () => {
    const lost = result.records.filter((r) => isLost(r, result))
    expect(lost.map(describeRecord)).toEqual([])
    const delivered = result.records.filter((r) => r.outcome?.state === 'complete')
    expect(delivered.length).toBeGreaterThan(result.records.length / 2)
    for (const r of delivered) expect(r.byteIdentical, describeRecord(r)).toBe(true)
    // what a fault ended is only what involves the suspended or the revoked institution after its fault
    for (const r of result.records.filter((x) => x.outcome?.state !== 'complete')) expect(excused(r, result.actors, 86_400), describeRecord(r)).toBe(true)
  })

  it('the crashed node loses nothing: what was sent to it or by it around the crash arrives', () => {
    const around = result.records.filter((r) => (r.exchange.from === result.actors.crash.ura || r.exchange.to === result.actors.crash.ura) && !excused(r, result.actors, 86_400))
    expect(around.length).toBeGreaterThan(0)
    for (const r of around) expect(r.outcome?.state, describeRecord(r)).toBe('complete')
  })

  it('the full node refuses with BEELDNET_ERR_DISK_FULL and takes the study once retention frees space', () => {
    const refused = result.records.filter((r) => r.exchange.to === result.actors.diskFull.ura && r.outcome?.codes.includes('BEELDNET_ERR_DISK_FULL') === true)
    expect(refused.length).toBeGreaterThan(0)
    for (const r of refused) {
      expect(r.outcome?.state, describeRecord(r)).toBe('complete')
      expect(r.byteIdentical).toBe(true)
    }
  })

  it('every node refuses the suspended institution and the revoked key within the bound, the revocation by gossip alone', () => {
    const others = result.plan.institutions.filter((i) => i.ura !== result.actors.suspended.ura)
    expect([...result.suspension.refusedAt.keys()].sort()).toEqual(others.map((i) => i.ura).sort())
    for (const at of result.suspension.refusedAt.values()) expect((at - result.suspension.at) / 1000).toBeLessThan(REFUSAL_BOUND_SECONDS)

    // the registry was down (13:00-17:00) when the revoked directory was handed to one node at 14:00
    expect(FAULT_TIMES.revokeAt).toBeGreaterThan(FAULT_TIMES.registryDownAt)
    expect(FAULT_TIMES.revokeAt).toBeLessThan(FAULT_TIMES.registryUpAt)
    const active = others.filter((i) => i.ura !== result.actors.revoked.ura)
    const revokedBy = [...result.revocation.refusedAt].filter(([ura]) => ura !== result.actors.suspended.ura)
    expect(revokedBy.map(([ura]) => ura).sort()).toEqual(active.map((i) => i.ura).sort())
    const handedAt = result.revocation.handedAt
    const registryUpAt = result.t0 + FAULT_TIMES.registryUpAt / result.compression * 1000
    for (const [, at] of revokedBy) {
      expect((at - handedAt) / 1000).toBeLessThan(REFUSAL_BOUND_SECONDS)
      expect(at).toBeLessThan(registryUpAt)
    }
  })

  it('every node\'s audit trail verifies', () => {
    expect(result.trails).toHaveLength(result.plan.institutions.length)
    for (const t of result.trails) expect(t, t.ura).toMatchObject({ ok: true })
    expect(result.trails.every((t) => t.records > 0)).toBe(true)
  })

  it('reports the rows the issue names, with the figures the run measured', () => {
    const { rows } = reportRows(result)
    expect(rows.map((r) => r.name)).toEqual(['national-day', 'revocation', 'suspension', 'registry', 'disk-full', 'crash-restart', '10x-busiest-1g', '10x-busiest-10g'])
    const day = rows[0]!
    expect(day).toMatchObject({ institutions: CI_PRESET.institutions, studies: CI_PRESET.studies, lost: 0 })
    expect(day.p50Min as number).toBeGreaterThan(0)
    expect(day.p95Min as number).toBeGreaterThanOrEqual(day.p50Min as number)
    expect(day.maxMin as number).toBeGreaterThanOrEqual(day.p95Min as number)
    expect(day.cpuS as number).toBeGreaterThan(0)
    expect(rows[3]!.requests as number).toBeGreaterThan(0)
    expect(rows[4]!.refusals as number).toBeGreaterThan(0)
    expect(rows[4]!.recovered).toBe(rows[4]!.refusals)
    expect(JSON.parse(JSON.stringify({ rows })).rows).toHaveLength(8)
  })
})
