// The traffic model of a national working day (issue 18): which institutions are admitted, and which studies move
// between them, when, how large and by push or pull. Pure code, no node is started: the plan is a list that a
// runner replays later. Every rule and every number is explained in ./README.md; the constants below carry the same
// numbers so that the text and the code can be checked against each other.

import { createPrng, type Prng } from '../generator/prng.ts'

export type InstitutionKind = 'umc' | 'hospital' | 'zbc'
export type LinkMbit = 100 | 1000 | 10000
export type ExchangeModality = 'CT' | 'MR' | 'DX' | 'MG'
export type ExchangeKind = 'push' | 'pull'

export interface Institution {
  /** URA-like 8-digit number (synthetic: starts with 9, unique within the plan). */
  ura: string
  name: string
  kind: InstitutionKind
  /** One of REGIONS (a Dutch province). */
  region: string
  /** URA of the UMC this institution refers tertiary care to (a UMC: its own). */
  referralCentre: string
  /** The node's line rate, each direction. */
  linkMbit: LinkMbit
}

export interface Exchange {
  /** Seconds since 07:00 on the simulated clock, in [0, 86400). */
  at: number
  /** push: `from` offers; pull: `to` (the requester) asks and `from` serves it. Data always flows from -> to. */
  kind: ExchangeKind
  /** URA of the institution that holds the study (the sender of the bytes). */
  from: string
  /** URA of the institution that receives it. */
  to: string
  modality: ExchangeModality
  /** 'DBT' for a tomosynthesis study among MG, 'FFDM' for 2D mammography; otherwise the modality. */
  variant: string
  /** Image instances: real counts, never scaled. */
  instances: number
  /** Report instances (SR or encapsulated PDF) sent ahead of the images. */
  reports: number
  /** Study bytes before scaling (what time-to-available is computed from). */
  realBytes: number
  /** Bytes the run moves: realBytes x scale (at least 1 per instance). */
  bytes: number
}

export interface DayPlan {
  seed: number
  scale: number
  institutions: Institution[]
  /** Sorted by `at` (ties keep the order in which they were drawn). */
  exchanges: Exchange[]
}

export interface NationalDayInit {
  seed: number
  /** Institutions admitted in the directory (default 120; at least 8). */
  institutions?: number
  /** Studies exchanged over the day (default 3000). */
  studies?: number
  /** Factor on every study's bytes, in (0, 1] (default 1): shrinks the run, keeps the distribution's shape. */
  scale?: number
}

export const MiB = 1024 * 1024
export const DAY_SECONDS = 24 * 3600

/** The CI preset: the same rules on 12 institutions (2 UMCs, 7 hospitals, 3 ZBCs in 2 provinces) and 60 studies. */
export const CI_PRESET = { institutions: 12, studies: 60 } as const

/**
 * The 12 provinces, with their population (CBS, 1 January 2024, millions, rounded) used to spread hospitals and ZBCs,
 * and the UMCs their tertiary referrals go to (the UMCs' own provinces: themselves; others: the nearest).
 */
export const REGIONS: ReadonlyArray<{ name: string, population: number, umcs: readonly string[], towns: readonly string[] }> = [
  { name: 'Groningen', population: 0.60, umcs: ['UMCG'], towns: ['Groningen', 'Delfzijl', 'Winschoten', 'Stadskanaal', 'Scheemda'] },
  { name: 'Friesland', population: 0.66, umcs: ['UMCG'], towns: ['Leeuwarden', 'Drachten', 'Heerenveen', 'Sneek', 'Harlingen'] },
  { name: 'Drenthe', population: 0.50, umcs: ['UMCG'], towns: ['Assen', 'Emmen', 'Hoogeveen', 'Meppel'] },
  { name: 'Overijssel', population: 1.18, umcs: ['UMCG', 'Radboudumc'], towns: ['Zwolle', 'Enschede', 'Deventer', 'Almelo', 'Hengelo', 'Hardenberg'] },
  { name: 'Flevoland', population: 0.45, umcs: ['Amsterdam UMC', 'UMC Utrecht'], towns: ['Almere', 'Lelystad', 'Emmeloord'] },
  { name: 'Gelderland', population: 2.14, umcs: ['Radboudumc'], towns: ['Nijmegen', 'Arnhem', 'Apeldoorn', 'Ede', 'Doetinchem', 'Tiel', 'Harderwijk', 'Zutphen', 'Winterswijk'] },
  { name: 'Utrecht', population: 1.39, umcs: ['UMC Utrecht'], towns: ['Utrecht', 'Amersfoort', 'Nieuwegein', 'Zeist', 'Woerden'] },
  { name: 'Noord-Holland', population: 2.95, umcs: ['Amsterdam UMC'], towns: ['Amsterdam', 'Haarlem', 'Alkmaar', 'Hoorn', 'Den Helder', 'Hilversum', 'Zaandam', 'Purmerend', 'Beverwijk'] },
  { name: 'Zuid-Holland', population: 3.83, umcs: ['LUMC', 'Erasmus MC'], towns: ['Rotterdam', 'Den Haag', 'Leiden', 'Delft', 'Dordrecht', 'Gouda', 'Schiedam', 'Alphen aan den Rijn', 'Zoetermeer', 'Gorinchem'] },
  { name: 'Zeeland', population: 0.39, umcs: ['Erasmus MC'], towns: ['Goes', 'Vlissingen', 'Terneuzen'] },
  { name: 'Noord-Brabant', population: 2.65, umcs: ['Radboudumc', 'Erasmus MC', 'Maastricht UMC+'], towns: ['Eindhoven', 'Tilburg', 's-Hertogenbosch', 'Breda', 'Helmond', 'Roosendaal', 'Oss', 'Veldhoven', 'Uden'] },
  { name: 'Limburg', population: 1.12, umcs: ['Maastricht UMC+'], towns: ['Maastricht', 'Heerlen', 'Sittard', 'Venlo', 'Roermond', 'Weert'] }
]

/** The 7 UMCs, in the order a smaller configuration takes them (the first two in the CI preset). */
export const UMCS: ReadonlyArray<{ name: string, region: string }> = [
  { name: 'UMCG', region: 'Groningen' },
  { name: 'Radboudumc', region: 'Gelderland' },
  { name: 'UMC Utrecht', region: 'Utrecht' },
  { name: 'Amsterdam UMC', region: 'Noord-Holland' },
  { name: 'Erasmus MC', region: 'Zuid-Holland' },
  { name: 'LUMC', region: 'Zuid-Holland' },
  { name: 'Maastricht UMC+', region: 'Limburg' }
]

/** Share of institutions of each kind: 7 of 120 UMCs, 30 of 120 ZBCs, the rest hospitals. */
export const KIND_SHARE = { umc: 7 / 120, zbc: 30 / 120 } as const

/** Line rate shares per kind (assumptions, README "Links"). The remainder of each row is 1 Gbit/s. */
export const LINK_SHARE: Record<InstitutionKind, { 100: number, 10000: number }> = {
  umc: { 100: 0, 10000: 0.7 },
  hospital: { 100: 0.15, 10000: 0.15 },
  zbc: { 100: 0.7, 10000: 0 }
}

/** How much each kind sends, relative (a UMC or a large hospital produces more studies than a ZBC). */
export const SEND_WEIGHT: Record<InstitutionKind, number> = { umc: 2.5, hospital: 1.5, zbc: 0.5 }

/**
 * Where a sender's studies go, by the sender's kind (README "Who sends to whom"). `referral`: its referral UMC;
 * `region`: a hospital in its own province (for a UMC: a hospital that refers to it, the back-referral);
 * `umc`: another UMC; `national`: any institution elsewhere, a UMC weighing 3, a hospital 1, a ZBC 0.2.
 */
export const DESTINATION_SHARE: Record<InstitutionKind, { referral: number, region: number, umc: number, national: number }> = {
  zbc: { referral: 0.30, region: 0.65, umc: 0, national: 0.05 },
  hospital: { referral: 0.40, region: 0.42, umc: 0, national: 0.18 },
  umc: { referral: 0, region: 0.55, umc: 0.20, national: 0.25 }
}
export const NATIONAL_WEIGHT: Record<InstitutionKind, number> = { umc: 3, hospital: 1, zbc: 0.2 }

/** Share of exchanges that are pulls (the receiver asks), the rest pushes. */
export const PULL_SHARE = 0.2

/**
 * Relative arrival rate per clock hour (index 0 = 00:00-01:00). A morning peak 09:00-11:00, a lunch dip, an afternoon
 * peak 14:00-16:00, evening tail, a low night. README "When".
 */
export const HOURLY_RATE: readonly number[] = [
  0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 1, 3, // 00-08
  8, 11, 12, 10, 6, 9, 11, 11, // 08-16
  8, 4, 2.5, 2, 1.5, 1.2, 1, 0.8 // 16-24
]

/**
 * Modality mix by the sender's kind (README "What"). DX stands for CR/DX (plain radiography), MG for mammography
 * (FFDM) and tomosynthesis (DBT).
 */
export const MODALITY_SHARE: Record<InstitutionKind, Record<ExchangeModality, number>> = {
  umc: { CT: 0.40, MR: 0.22, DX: 0.30, MG: 0.08 },
  hospital: { CT: 0.38, MR: 0.20, DX: 0.32, MG: 0.10 },
  zbc: { CT: 0.05, MR: 0.45, DX: 0.35, MG: 0.15 }
}

/** Study size ranges in MiB (log-uniform inside), and bytes per image instance used to count instances. */
export const SIZE_MIB: Record<string, { min: number, max: number }> = {
  CT: { min: 250, max: 1024 },
  MR: { min: 100, max: 400 },
  DX: { min: 20, max: 60 },
  FFDM: { min: 80, max: 250 },
  DBT: { min: 500, max: 1843 }
}
/** Share of MG studies that are tomosynthesis (DBT). */
export const DBT_SHARE = 0.4
/** Share of studies sent with two reports (the report and an addendum or a prior's report); the rest carry one. */
export const TWO_REPORTS_SHARE = 0.15

/** The clock hour (0-23) of a plan time. */
export function hourOf (at: number): number {
  return (7 + Math.floor(at / 3600)) % 24
}

/** The CI preset's plan. */
export function ciDay (seed: number, scale = 1): DayPlan {
  return nationalDay({ seed, ...CI_PRESET, scale })
}

export function nationalDay (init: NationalDayInit): DayPlan {
  const { seed, institutions: count = 120, studies = 3000, scale = 1 } = init
  if (!Number.isInteger(count) || count < 8) throw new RangeError(`institutions must be an integer >= 8, not ${count}`)
  if (!Number.isInteger(studies) || studies < 0) throw new RangeError(`studies must be a non-negative integer, not ${studies}`)
  if (!(scale > 0 && scale <= 1)) throw new RangeError(`scale must be in (0, 1], not ${scale}`)
  const root = createPrng(seed)
  // Independent streams: the institutions do not change when the number of studies does.
  const institutions = makeInstitutions(root.fork(), count)
  const exchanges = makeExchanges(root.fork(), institutions, studies, scale)
  return { seed, scale, institutions, exchanges }
}

function makeInstitutions (prng: Prng, count: number): Institution[] {
  const umcCount = Math.min(UMCS.length, Math.max(2, Math.round(count * KIND_SHARE.umc)))
  const zbcCount = Math.round(count * KIND_SHARE.zbc)
  const hospitalCount = count - umcCount - zbcCount
  const umcs = UMCS.slice(0, umcCount)
  const umcNames = new Set(umcs.map((u) => u.name))
  // All 12 provinces when every UMC is there; a smaller configuration keeps only its UMCs' own provinces.
  const regions = umcCount === UMCS.length
    ? REGIONS
    : REGIONS.filter((r) => umcs.some((u) => u.region === r.name))
  if (hospitalCount < regions.length) throw new RangeError(`${count} institutions leave fewer hospitals than regions`)

  const hospitalsPer = apportion(hospitalCount, regions.map((r) => r.population), 1)
  const zbcsPer = apportion(zbcCount, regions.map((r) => r.population), 0)
  const usedUras = new Set<string>()
  const ura = (): string => {
    for (;;) {
      const value = String(90000000 + prng.int(0, 9999999))
      if (!usedUras.has(value)) { usedUras.add(value); return value }
    }
  }
  const umcUra = new Map<string, string>()
  const list: Array<Omit<Institution, 'linkMbit'>> = []
  for (const umc of umcs) {
    const id = ura()
    umcUra.set(umc.name, id)
    list.push({ ura: id, name: umc.name, kind: 'umc', region: umc.region, referralCentre: id })
  }
  const usedNames = new Set<string>()
  const uniqueName = (base: string): string => {
    let name = base
    for (let n = 2; usedNames.has(name); n++) name = `${base} ${n}`
    usedNames.add(name)
    return name
  }
  regions.forEach((region, r) => {
    const served = region.umcs.filter((name) => umcNames.has(name))
    const referral = (): string => umcUra.get(prng.pick(served.length > 0 ? served : [...umcNames])) as string
    for (let i = 0; i < (hospitalsPer[r] ?? 0); i++) {
      const town = region.towns[i % region.towns.length] as string
      list.push({ ura: ura(), name: uniqueName(`Ziekenhuis ${town}`), kind: 'hospital', region: region.name, referralCentre: referral() })
    }
    for (let i = 0; i < (zbcsPer[r] ?? 0); i++) {
      const town = region.towns[(i * 2 + 1) % region.towns.length] as string
      const speciality = prng.pick(['Orthopedie', 'Mammapoli', 'Beeldvorming', 'Dermatologie', 'Oogkliniek', 'Sportmedisch'])
      list.push({ ura: ura(), name: uniqueName(`ZBC ${speciality} ${town}`), kind: 'zbc', region: region.name, referralCentre: referral() })
    }
  })

  // Links: exact quotas per kind (rounded), given to a seeded shuffle of that kind's institutions.
  const links = new Map<string, LinkMbit>()
  for (const kind of ['umc', 'hospital', 'zbc'] as const) {
    const ofKind = shuffle(prng, list.filter((i) => i.kind === kind))
    const n10g = Math.round(ofKind.length * LINK_SHARE[kind][10000])
    const n100 = Math.round(ofKind.length * LINK_SHARE[kind][100])
    ofKind.forEach((inst, i) => links.set(inst.ura, i < n10g ? 10000 : i < n10g + n100 ? 100 : 1000))
  }
  return list.map((inst) => ({ ...inst, linkMbit: links.get(inst.ura) as LinkMbit }))
}

function makeExchanges (prng: Prng, institutions: Institution[], studies: number, scale: number): Exchange[] {
  // When: counts per plan hour by the rate (largest remainder), uniform times inside each hour.
  const planHours = Array.from({ length: 24 }, (_, h) => HOURLY_RATE[(7 + h) % 24] as number)
  const perHour = apportion(studies, planHours, 0)
  const times: number[] = []
  perHour.forEach((n, h) => { for (let i = 0; i < n; i++) times.push(h * 3600 + Math.floor(prng.next() * 3600)) })

  const pulls = new Set(shuffle(prng, times.map((_, i) => i)).slice(0, Math.round(studies * PULL_SHARE)))
  const senders = institutions.map((i) => SEND_WEIGHT[i.kind])
  const exchanges = times.map((at, index): Exchange => {
    const from = institutions[weightedIndex(prng, senders)] as Institution
    const to = destination(prng, from, institutions)
    const study = drawStudy(prng, from.kind, scale)
    return { at, kind: pulls.has(index) ? 'pull' : 'push', from: from.ura, to: to.ura, ...study }
  })
  // A stable sort keeps ties in drawing order.
  return exchanges.sort((a, b) => a.at - b.at)
}

function destination (prng: Prng, from: Institution, all: Institution[]): Institution {
  const share = DESTINATION_SHARE[from.kind]
  const others = all.filter((i) => i.ura !== from.ura)
  const u = prng.next()
  let candidates: Institution[] = []
  if (u < share.referral) {
    candidates = others.filter((i) => i.ura === from.referralCentre)
  } else if (u < share.referral + share.region) {
    candidates = from.kind === 'umc'
      ? others.filter((i) => i.kind === 'hospital' && i.referralCentre === from.ura)
      : others.filter((i) => i.kind === 'hospital' && i.region === from.region)
  } else if (u < share.referral + share.region + share.umc) {
    candidates = others.filter((i) => i.kind === 'umc')
  }
  if (candidates.length > 0) return prng.pick(candidates)
  // National (or a rule without candidates, such as a province with one hospital): anyone elsewhere, by weight.
  const elsewhere = others.filter((i) => i.region !== from.region)
  const pool = elsewhere.length > 0 ? elsewhere : others
  return pool[weightedIndex(prng, pool.map((i) => NATIONAL_WEIGHT[i.kind]))] as Institution
}

function drawStudy (prng: Prng, senderKind: InstitutionKind, scale: number): Pick<Exchange, 'modality' | 'variant' | 'instances' | 'reports' | 'realBytes' | 'bytes'> {
  const mix = MODALITY_SHARE[senderKind]
  const modalities = Object.keys(mix) as ExchangeModality[]
  const modality = modalities[weightedIndex(prng, modalities.map((m) => mix[m]))] as ExchangeModality
  const variant = modality === 'MG' ? (prng.next() < DBT_SHARE ? 'DBT' : 'FFDM') : modality
  const range = SIZE_MIB[variant] as { min: number, max: number }
  // Log-uniform between min and max.
  const realBytes = Math.round(range.min * MiB * Math.exp(prng.next() * Math.log(range.max / range.min)))
  let instances: number
  switch (variant) {
    case 'CT': instances = Math.round(realBytes / (512 * 512 * 2 + 4096)); break // 512x512 16-bit slices
    case 'MR': instances = Math.round(realBytes / (256 * 256 * 2 + 4096)); break // 256x256 16-bit images
    case 'DX': instances = Math.max(1, Math.round(realBytes / (15 * MiB))); break // 1-4 views of ~15 MiB
    case 'FFDM': instances = 4; break // CC and MLO of both breasts
    default: instances = 8 // DBT: 4 tomosynthesis objects and 4 synthesised 2D views
  }
  const reports = prng.next() < TWO_REPORTS_SHARE ? 2 : 1
  const bytes = Math.max(instances, Math.round(realBytes * scale))
  return { modality, variant, instances, reports, realBytes, bytes }
}

/** Splits `total` over `weights` by largest remainder, each part at least `minimum`. */
export function apportion (total: number, weights: readonly number[], minimum: number): number[] {
  const base = weights.map(() => minimum)
  const rest = total - minimum * weights.length
  if (rest < 0) throw new RangeError(`cannot give ${weights.length} parts at least ${minimum} out of ${total}`)
  const sum = weights.reduce((a, b) => a + b, 0)
  const exact = weights.map((w) => rest * w / sum)
  const parts = exact.map((x, i) => (base[i] as number) + Math.floor(x))
  let left = total - parts.reduce((a, b) => a + b, 0)
  const order = exact.map((x, i) => ({ i, r: x - Math.floor(x) })).sort((a, b) => b.r - a.r || a.i - b.i)
  for (const { i } of order) {
    if (left <= 0) break
    parts[i] = (parts[i] as number) + 1
    left--
  }
  return parts
}

function weightedIndex (prng: Prng, weights: readonly number[]): number {
  const sum = weights.reduce((a, b) => a + b, 0)
  let u = prng.next() * sum
  for (let i = 0; i < weights.length; i++) {
    u -= weights[i] as number
    if (u < 0) return i
  }
  return weights.length - 1
}

function shuffle<T> (prng: Prng, values: T[]): T[] {
  const out = [...values]
  for (let i = out.length - 1; i > 0; i--) {
    const j = prng.int(0, i)
    const tmp = out[i] as T
    out[i] = out[j] as T
    out[j] = tmp
  }
  return out
}
