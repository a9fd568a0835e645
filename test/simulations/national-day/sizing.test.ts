import { describe, expect, it } from 'vitest'
import { aloneSeconds } from '../../../simulations/national-day/clock.ts'
import { ciDay } from '../../../simulations/national-day/model.ts'
import { CPU_SECONDS_PER_GIB, RETENTION_DAYS, tenTimesBusiest } from '../../../simulations/national-day/sizing.ts'

describe('what one node needs for ten times the busiest hospital', () => {
  it('takes the institution with most bytes, ten times its exchanges, and sizes line, CPU and disk from them', () => {
    const plan = ciDay(18)
    const t = tenTimesBusiest(plan)
    const bytes = new Map<string, number>()
    for (const e of plan.exchanges) for (const ura of [e.from, e.to]) bytes.set(ura, (bytes.get(ura) ?? 0) + e.realBytes)
    const most = Math.max(...bytes.values())
    const busiest = plan.institutions.find((i) => bytes.get(i.ura) === most)!
    expect(t.busiest).toBe(busiest.name)
    const own = plan.exchanges.filter((e) => e.from === busiest.ura || e.to === busiest.ura)
    expect(t.exchanges).toBe(10 * own.length)
    const received = own.filter((e) => e.to === busiest.ura).reduce((n, e) => n + e.realBytes, 0)
    expect(t.inGiBPerDay).toBeCloseTo(10 * received / 2 ** 30, 6)
    expect(t.diskTiB).toBeCloseTo(10 * received * RETENTION_DAYS / 2 ** 40, 6)
    expect(t.peakHourCores).toBeCloseTo(t.peakHourGiB * CPU_SECONDS_PER_GIB / 3600, 9)
    expect(t.peakHourGiB).toBeLessThanOrEqual(t.inGiBPerDay + t.outGiBPerDay)

    expect(t.byLink.map((l) => l.link)).toEqual([1000, 10_000])
    for (const l of t.byLink) {
      // none is faster than alone on its path
      expect(l.peakConcurrent).toBeGreaterThanOrEqual(1)
      const fastest = Math.min(...own.map((e) => aloneSeconds(e, l.link, l.link))) / 60
      expect(l.maxMin!).toBeGreaterThanOrEqual(fastest)
    }
  })
})
