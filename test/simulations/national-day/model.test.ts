import { describe, expect, it } from 'vitest'
import {
  apportion, ciDay, CI_PRESET, DAY_SECONDS, hourOf, MiB, nationalDay, PULL_SHARE, REGIONS, SIZE_MIB,
  type DayPlan, type Institution
} from '../../../simulations/national-day/model.ts'

interface Stats {
  byUra: Map<string, Institution>
  sameRegion: number
  local: number
  perInstitutionReceived: Record<Institution['kind'], number>
  hours: number[]
  pulls: number
}

function stats (plan: DayPlan): Stats {
  const byUra = new Map(plan.institutions.map((i) => [i.ura, i]))
  const received = { umc: 0, hospital: 0, zbc: 0 }
  const counts = { umc: 0, hospital: 0, zbc: 0 }
  for (const i of plan.institutions) counts[i.kind]++
  const hours = new Array<number>(24).fill(0)
  let sameRegion = 0
  let local = 0
  for (const e of plan.exchanges) {
    const from = byUra.get(e.from) as Institution
    const to = byUra.get(e.to) as Institution
    if (from.region === to.region) sameRegion++
    if (from.region === to.region || from.referralCentre === to.ura) local++
    received[to.kind]++
    hours[hourOf(e.at)] = (hours[hourOf(e.at)] as number) + 1
  }
  const n = plan.exchanges.length
  return {
    byUra,
    sameRegion: sameRegion / n,
    local: local / n,
    perInstitutionReceived: {
      umc: received.umc / counts.umc, hospital: received.hospital / counts.hospital, zbc: received.zbc / Math.max(1, counts.zbc)
    },
    hours,
    pulls: plan.exchanges.filter((e) => e.kind === 'pull').length
  }
}

const full = nationalDay({ seed: 18 })
const small = ciDay(18)

describe('nationalDay', () => {
  it('gives the same plan for the same seed and another plan for another seed', () => {
    expect(nationalDay({ seed: 18 })).toEqual(full)
    expect(ciDay(18)).toEqual(small)
    const other = nationalDay({ seed: 19 })
    expect(other.exchanges.map((e) => [e.at, e.from, e.to])).not.toEqual(full.exchanges.map((e) => [e.at, e.from, e.to]))
  })

  it('keeps the institutions when only the number of studies changes', () => {
    expect(nationalDay({ seed: 18, studies: 10 }).institutions).toEqual(full.institutions)
  })

  it('admits 120 institutions: 7 UMCs, 83 hospitals, 30 ZBCs over the 12 provinces, unique 8-digit URAs and names', () => {
    const { institutions } = full
    expect(institutions).toHaveLength(120)
    expect(institutions.filter((i) => i.kind === 'umc')).toHaveLength(7)
    expect(institutions.filter((i) => i.kind === 'zbc')).toHaveLength(30)
    expect(institutions.filter((i) => i.kind === 'hospital')).toHaveLength(83)
    expect(new Set(institutions.map((i) => i.region))).toEqual(new Set(REGIONS.map((r) => r.name)))
    for (const region of REGIONS) {
      expect(institutions.some((i) => i.region === region.name && i.kind === 'hospital')).toBe(true)
    }
    expect(new Set(institutions.map((i) => i.ura)).size).toBe(120)
    expect(new Set(institutions.map((i) => i.name)).size).toBe(120)
    for (const i of institutions) {
      expect(i.ura).toMatch(/^\d{8}$/)
      expect([100, 1000, 10000]).toContain(i.linkMbit)
      const centre = institutions.find((c) => c.ura === i.referralCentre)
      expect(centre?.kind).toBe('umc')
    }
  })

  it('gives links by kind: most UMCs 10 Gbit/s, most hospitals 1 Gbit/s, most ZBCs 100 Mbit/s', () => {
    const share = (kind: Institution['kind'], mbit: number): number =>
      full.institutions.filter((i) => i.kind === kind && i.linkMbit === mbit).length / full.institutions.filter((i) => i.kind === kind).length
    expect(share('umc', 10000)).toBeGreaterThan(0.5)
    expect(share('hospital', 1000)).toBeGreaterThan(0.5)
    expect(share('zbc', 100)).toBeGreaterThan(0.5)
    expect(share('zbc', 10000)).toBe(0)
  })

  it('plans 3,000 exchanges, sorted by time inside the day, each between two different admitted institutions', () => {
    expect(full.exchanges).toHaveLength(3000)
    const uras = new Set(full.institutions.map((i) => i.ura))
    let previous = 0
    for (const e of full.exchanges) {
      expect(e.at).toBeGreaterThanOrEqual(previous)
      expect(e.at).toBeLessThan(DAY_SECONDS)
      previous = e.at
      expect(e.from).not.toBe(e.to)
      expect(uras.has(e.from) && uras.has(e.to)).toBe(true)
      expect(e.reports).toBeGreaterThanOrEqual(1)
      expect(e.instances).toBeGreaterThanOrEqual(1)
    }
  })

  it('keeps most traffic within the region or to the referral UMC, and UMCs receive more per institution', () => {
    const s = stats(full)
    expect(s.sameRegion).toBeGreaterThan(0.55)
    expect(s.local).toBeGreaterThan(0.7)
    expect(s.perInstitutionReceived.umc).toBeGreaterThan(5 * s.perInstitutionReceived.hospital)
    expect(s.perInstitutionReceived.hospital).toBeGreaterThan(s.perInstitutionReceived.zbc)
  })

  it('lets ZBCs send mostly to hospitals of their own region', () => {
    const byUra = new Map(full.institutions.map((i) => [i.ura, i]))
    const fromZbc = full.exchanges.filter((e) => byUra.get(e.from)?.kind === 'zbc')
    expect(fromZbc.length).toBeGreaterThan(50)
    const toOwnHospitals = fromZbc.filter((e) => byUra.get(e.to)?.kind === 'hospital' && byUra.get(e.to)?.region === byUra.get(e.from)?.region)
    expect(toOwnHospitals.length / fromZbc.length).toBeGreaterThan(0.5)
  })

  it('follows the working-day curve: peaks in working hours, a lunch dip, few at night', () => {
    const { hours } = stats(full)
    const working = hours.slice(8, 17).reduce((a, b) => a + b, 0)
    const night = [0, 1, 2, 3, 4, 5].reduce((a, h) => a + (hours[h] as number), 0)
    expect(working / 3000).toBeGreaterThan(0.7)
    expect(night / 3000).toBeLessThan(0.05)
    const peak = hours.indexOf(Math.max(...hours))
    expect(peak).toBeGreaterThanOrEqual(9)
    expect(peak).toBeLessThanOrEqual(15)
    const morning = Math.max(...hours.slice(9, 12))
    const afternoon = Math.max(...hours.slice(13, 17))
    expect(hours[12]).toBeLessThan(morning)
    expect(hours[12]).toBeLessThan(afternoon)
  })

  it('draws sizes inside each modality range, every modality present, and scales bytes without changing counts', () => {
    const seen = new Set<string>()
    for (const e of full.exchanges) {
      seen.add(e.variant)
      const range = SIZE_MIB[e.variant] as { min: number, max: number }
      expect(e.realBytes).toBeGreaterThanOrEqual(range.min * MiB - 1)
      expect(e.realBytes).toBeLessThanOrEqual(range.max * MiB + 1)
      expect(e.bytes).toBe(e.realBytes)
    }
    expect(seen).toEqual(new Set(['CT', 'MR', 'DX', 'FFDM', 'DBT']))
    const scaled = nationalDay({ seed: 18, scale: 0.01 })
    scaled.exchanges.forEach((e, i) => {
      const original = full.exchanges[i]
      expect(e.instances).toBe(original?.instances)
      expect(e.realBytes).toBe(original?.realBytes)
      expect(Math.abs(e.bytes - e.realBytes * 0.01)).toBeLessThanOrEqual(1)
    })
  })

  it('makes a fifth of the exchanges pulls', () => {
    expect(stats(full).pulls).toBe(3000 * PULL_SHARE)
  })

  it('rejects a configuration it cannot shape', () => {
    expect(() => nationalDay({ seed: 1, institutions: 4 })).toThrow(RangeError)
    expect(() => nationalDay({ seed: 1, scale: 0 })).toThrow(RangeError)
    expect(() => nationalDay({ seed: 1, studies: -1 })).toThrow(RangeError)
  })
})

describe('the CI preset', () => {
  it('keeps the shape on 12 institutions and 60 studies', () => {
    expect(small.institutions).toHaveLength(CI_PRESET.institutions)
    expect(small.exchanges).toHaveLength(CI_PRESET.studies)
    expect(small.institutions.filter((i) => i.kind === 'umc')).toHaveLength(2)
    expect(small.institutions.filter((i) => i.kind === 'zbc')).toHaveLength(3)
    expect(new Set(small.institutions.map((i) => i.region)).size).toBe(2)
    for (const e of small.exchanges) expect(e.from).not.toBe(e.to)
    const s = stats(small)
    expect(s.local).toBeGreaterThan(0.6)
    expect(s.perInstitutionReceived.umc).toBeGreaterThan(s.perInstitutionReceived.hospital)
    expect(s.pulls).toBe(12)
    const working = s.hours.slice(8, 17).reduce((a, b) => a + b, 0)
    expect(working / 60).toBeGreaterThan(0.7)
  })

  it('holds its properties for other seeds too', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const s = stats(ciDay(seed))
      expect(s.perInstitutionReceived.umc).toBeGreaterThan(s.perInstitutionReceived.hospital)
      expect(s.local).toBeGreaterThan(0.5)
    }
  })
})

describe('apportion', () => {
  it('splits by largest remainder with a minimum per part', () => {
    expect(apportion(10, [1, 1, 1], 0)).toEqual([4, 3, 3])
    expect(apportion(5, [100, 1], 1)).toEqual([4, 1])
    expect(apportion(7, [3, 2, 2], 0).reduce((a, b) => a + b, 0)).toBe(7)
  })
})
