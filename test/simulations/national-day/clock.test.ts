import { describe, expect, it } from 'vitest'
import { createPrng } from '../../../simulations/generator/prng.ts'
import {
  allocateMaxMin, capacityBytesPerSec, FIXED_PUSH_SECONDS, percentile, REPORT_BYTES, RTT_SECONDS, runClock, summarise,
  UTILISATION, type ExchangeFacts
} from '../../../simulations/national-day/clock.ts'
import { ciDay, type Exchange, type Institution, type LinkMbit } from '../../../simulations/national-day/model.ts'

const GiB = 1024 ** 3
/** Beeldnet's bytes/s on each line, by hand from the bench:wan ratios. */
const C100 = 100e6 * 0.94 / 8 // 11.75e6
const C1G = 1000e6 * 0.83 / 8 // 103.75e6

function node (ura: string, linkMbit: LinkMbit): Institution {
  return { ura, name: ura, kind: 'hospital', region: 'Utrecht', referralCentre: ura, linkMbit }
}

function exchange (from: string, to: string, at: number, realBytes: number, kind: Exchange['kind'] = 'push', reports = 1): Exchange {
  return { at, kind, from, to, modality: 'CT', variant: 'CT', instances: 1, reports, realBytes, bytes: realBytes }
}

describe('the simulated clock', () => {
  it('takes the bench:wan ratios and the fixed cost from the README', () => {
    expect(UTILISATION[100].ratio).toBe(0.94)
    expect(UTILISATION[1000].ratio).toBe(0.83)
    expect(UTILISATION[10000]).toMatchObject({ ratio: 0.83, measured: false })
    expect(FIXED_PUSH_SECONDS).toBe(0.2)
    expect(capacityBytesPerSec(1000)).toBeCloseTo(C1G, 6)
  })

  it('puts one 1 GiB push on 1 Gbit/s at fixed + 8.59 s / 0.83, the report ahead of it', () => {
    const { timings } = runClock([node('A', 1000), node('B', 1000)], [exchange('A', 'B', 100, GiB, 'push', 2)])
    const t = timings[0]!
    expect(t.startedAt).toBe(100)
    expect(t.imagesAvailableAt! - 100).toBeCloseTo(0.2 + (GiB * 8 / 1e9) / 0.83, 9) // 0.2 + 10.349 s
    expect(t.imagesAvailableAt! - 100).toBeCloseTo(t.aloneSeconds, 9)
    expect(t.timeToAvailableMin).toBeCloseTo((0.2 + 8.589934592 / 0.83) / 60, 9)
    expect(t.reportAvailableAt! - 100).toBeCloseTo(0.2 + 2 * REPORT_BYTES / C1G, 9)
    expect(t.linkClass).toBe('1 Gbit')
    expect(t.utilisationMeasured).toBe(true)
  })

  it('gives a pull one round trip more than a push', () => {
    const { timings } = runClock([node('A', 1000), node('B', 1000)], [exchange('A', 'B', 0, GiB, 'pull')])
    expect(timings[0]!.imagesAvailableAt).toBeCloseTo(0.2 + RTT_SECONDS + GiB / C1G, 9)
  })

  it('shares a receiver between two overlapping transfers', () => {
    // 10 s of bytes each alone. A alone 0.2-5.2 s (half done), then both at half the line: A's second half takes
    // 10 s (ends 15.2), by then B has half; B's rest alone takes 5 s (ends 20.2).
    const S = 10 * C1G
    const { timings, nodes } = runClock(
      [node('A', 1000), node('B', 1000), node('R', 1000)],
      [exchange('A', 'R', 0, S), exchange('B', 'R', 5, S)]
    )
    expect(timings[0]!.imagesAvailableAt).toBeCloseTo(15.2, 9)
    expect(timings[1]!.imagesAvailableAt).toBeCloseTo(20.2, 9)
    expect(timings[1]!.initialRate).toBeCloseTo(C1G / 2, 3)
    expect(nodes.find((n) => n.ura === 'R')).toEqual({ ura: 'R', peakOut: 0, peakIn: 2, peakTotal: 2 })
    expect(summarise({ timings, nodes }).busiest?.ura).toBe('R')
  })

  it('binds a fast receiver to its slow sender', () => {
    const { timings } = runClock([node('S', 100), node('R', 10000)], [exchange('S', 'R', 0, 100 * C100)])
    expect(timings[0]!.initialRate).toBeCloseTo(C100, 3)
    expect(timings[0]!.imagesAvailableAt).toBeCloseTo(100.2, 9)
    expect(timings[0]!.linkClass).toBe('100 Mbit')
    expect(timings[0]!.utilisationMeasured).toBe(true)
  })

  it('is max-min fair: a flow held back by its slow sender leaves the rest of the receiver to the other', () => {
    // Into R (1 Gbit): from S (100 Mbit) and from F (1 Gbit). Equal shares would give F half of R; max-min gives
    // S its whole 100 Mbit line and F everything R has left.
    const { timings } = runClock(
      [node('S', 100), node('F', 1000), node('R', 1000)],
      [exchange('S', 'R', 0, 10 * C100), exchange('F', 'R', 0, 1000 * C1G)]
    )
    expect(timings[0]!.initialRate).toBeCloseTo(C100, 3)
    expect(timings[1]!.initialRate).toBeCloseTo(C1G - C100, 3)
    expect(timings[0]!.imagesAvailableAt).toBeCloseTo(10.2, 9)
  })

  it('shifts the start by an extra delay and counts it in the time to available', () => {
    const facts: ExchangeFacts[] = [{ outcome: 'delivered', extraDelaySec: 30 }]
    const { timings } = runClock([node('A', 1000), node('B', 1000)], [exchange('A', 'B', 10, 10 * C1G)], facts)
    expect(timings[0]!.startedAt).toBe(40)
    expect(timings[0]!.imagesAvailableAt).toBeCloseTo(40 + 10.2, 9)
    expect(timings[0]!.timeToAvailableMin).toBeCloseTo(40.2 / 60, 9)
  })

  it('gives a refused exchange no availability and none of the line', () => {
    const { timings } = runClock(
      [node('A', 1000), node('B', 1000), node('R', 1000)],
      [exchange('A', 'R', 0, 10 * C1G), exchange('B', 'R', 0, 10 * C1G)],
      [{ outcome: 'refused', code: 'BEELDNET_ERR_POLICY_REFUSED' }]
    )
    expect(timings[0]).toMatchObject({ delivered: false, code: 'BEELDNET_ERR_POLICY_REFUSED', reportAvailableAt: null, imagesAvailableAt: null, timeToAvailableMin: null, movedBytes: 0 })
    expect(timings[1]!.imagesAvailableAt).toBeCloseTo(10.2, 9)
    const summary = summarise({ timings, nodes: [] })
    expect(summary).toMatchObject({ exchanges: 2, delivered: 1, notDelivered: 1 })
  })

  it('refuses bad input with a stable code', () => {
    const two = [node('A', 1000), node('B', 1000)]
    const code = { code: 'BEELDNET_ERR_INVALID_GENERATOR_SPEC' }
    expect(() => runClock(two, [exchange('A', 'X', 0, 1)])).toThrow(expect.objectContaining(code))
    expect(() => runClock(two, [exchange('A', 'B', -1, 1)])).toThrow(expect.objectContaining(code))
    expect(() => runClock(two, [exchange('A', 'B', 0, 0)])).toThrow(expect.objectContaining(code))
    expect(() => runClock(two, [exchange('A', 'B', 0, 1)], [{ outcome: 'delivered', extraDelaySec: Number.NaN }])).toThrow(expect.objectContaining(code))
    expect(() => runClock(two, [exchange('A', 'B', 0, 1)], [{ outcome: 'ended', code: '' }])).toThrow(expect.objectContaining(code))
    expect(() => runClock([...two, node('A', 100)], [])).toThrow(expect.objectContaining(code))
    expect(() => runClock([node('A', 42 as LinkMbit)], [])).toThrow(expect.objectContaining(code))
  })

  // The CI plan's 60 studies hardly meet in a day, so the property also runs on the plan squeezed into one minute
  // (at / 1440), where most of them share a line.
  it.each([1, 1440])('on the CI plan with times / %i: no delivered exchange beats its time alone on the line, and every byte is moved once', (squeeze) => {
    const ci = ciDay(18)
    const plan = { ...ci, exchanges: ci.exchanges.map((e) => ({ ...e, at: e.at / squeeze })) }
    // A few faults, so the property holds with delays and gaps too.
    const facts: Array<ExchangeFacts | undefined> = plan.exchanges.map((_, i) =>
      i % 7 === 3 ? { outcome: 'refused', code: 'BEELDNET_ERR_POLICY_REFUSED' } : i % 5 === 1 ? { outcome: 'delivered', extraDelaySec: 60 } : undefined)
    const { timings, nodes } = runClock(plan.institutions, plan.exchanges, facts)
    const delivered = timings.filter((t) => t.delivered)
    expect(delivered.length).toBe(plan.exchanges.length - facts.filter((f) => f?.outcome === 'refused').length)
    let moved = 0
    let real = 0
    for (const t of delivered) {
      const e = plan.exchanges[t.index]!
      // A nanosecond's slack: times near 86,400 s carry about 1e-11 s of floating-point rounding.
      expect(t.imagesAvailableAt! - t.startedAt).toBeGreaterThanOrEqual(t.aloneSeconds - 1e-9)
      expect(t.reportAvailableAt!).toBeLessThanOrEqual(t.imagesAvailableAt!)
      expect(Math.abs(t.movedBytes - e.realBytes) / e.realBytes).toBeLessThan(1e-9)
      moved += t.movedBytes
      real += e.realBytes
    }
    expect(moved / real).toBeCloseTo(1, 9)
    const summary = summarise({ timings, nodes })
    expect(summary.overall.count).toBe(delivered.length)
    expect(Object.values(summary.byHour).reduce((n, s) => n + s.count, 0)).toBe(delivered.length)
    expect(summary.busiest!.peakTotal).toBe(Math.max(...nodes.map((n) => n.peakTotal)))
    if (squeeze > 1) {
      expect(delivered.filter((t) => t.imagesAvailableAt! - t.startedAt > t.aloneSeconds + 1e-6).length).toBeGreaterThan(delivered.length / 2)
      expect(summary.busiest!.peakTotal).toBeGreaterThan(2)
    }
  })

  it('allocates max-min fairly: no endpoint over capacity, every flow has a full endpoint where none gets more', () => {
    const prng = createPrng(18)
    const links: LinkMbit[] = [100, 1000, 10000]
    for (let round = 0; round < 50; round++) {
      const n = 6
      const capacity = [...Array.from({ length: n }, () => capacityBytesPerSec(prng.pick(links)))]
      const all = [...capacity, ...capacity.map((_, i) => capacity[i]!)]
      const flows = Array.from({ length: 1 + prng.int(0, 12) }, () => ({ up: prng.int(0, n - 1), down: n + prng.int(0, n - 1), rate: 0 }))
      allocateMaxMin(flows, all)
      const load = new Map<number, number>()
      for (const f of flows) for (const r of [f.up, f.down]) load.set(r, (load.get(r) ?? 0) + f.rate)
      for (const [r, l] of load) expect(l).toBeLessThanOrEqual(all[r]! * (1 + 1e-9))
      for (const f of flows) {
        const bottleneck = [f.up, f.down].some((r) => load.get(r)! >= all[r]! * (1 - 1e-9) &&
          flows.every((g) => (g.up !== r && g.down !== r) || g.rate <= f.rate * (1 + 1e-9)))
        expect(bottleneck).toBe(true)
      }
    }
  })

  it('takes nearest-rank percentiles', () => {
    expect(percentile([1, 2, 3, 4], 0.5)).toBe(2)
    expect(percentile([1, 2, 3, 4], 0.95)).toBe(4)
    expect(percentile([], 0.5)).toBeNull()
  })
})
