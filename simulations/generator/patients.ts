// Patient identities: Dutch BSN (11-proof), default names, and the sample patients used by `npm start`.
import type { CharsetName } from './charsets.ts'
import { createPrng, type Prng } from './prng.ts'
import type { GeneratedPatient, PatientSpec } from './types.ts'

/** The BSN "elfproef": 9*d1 + 8*d2 + ... + 2*d8 - 1*d9 is a multiple of 11. */
export function isValidBsn (bsn: string): boolean {
  if (!/^[0-9]{9}$/.test(bsn)) return false
  let sum = 0
  for (let i = 0; i < 8; i++) sum += (9 - i) * Number(bsn[i])
  sum -= Number(bsn[8])
  return sum % 11 === 0
}

export function generateBsn (prng: Prng): string {
  for (;;) {
    const digits = [prng.int(1, 9), ...Array.from({ length: 7 }, () => prng.int(0, 9))]
    const weighted = digits.reduce((s, d, i) => s + (9 - i) * d, 0)
    const check = weighted % 11 // d9 must equal this for the sum to be 0 mod 11
    if (check <= 9) return digits.join('') + String(check)
  }
}

const DEFAULT_NAMES: ReadonlyArray<readonly [string, 'M' | 'F']> = [
  ['de Jong^Sanne', 'F'], ['Jansen^Daan', 'M'], ['Bakker^Emma', 'F'], ['Visser^Lucas', 'M'],
  ['Smit^Julia', 'F'], ['Meijer^Sem', 'M'], ['de Boer^Tess', 'F'], ['Mulder^Finn', 'M']
]

export function randomDate (prng: Prng, fromYear: number, toYear: number): string {
  const y = prng.int(fromYear, toYear)
  const m = prng.int(1, 12)
  const d = prng.int(1, 28)
  return `${y}${String(m).padStart(2, '0')}${String(d).padStart(2, '0')}`
}

export function randomTime (prng: Prng): string {
  return [prng.int(7, 18), prng.int(0, 59), prng.int(0, 59)].map((v) => String(v).padStart(2, '0')).join('')
}

export interface ResolvedPatient extends GeneratedPatient {
  charset: CharsetName
}

// Fill in what the spec leaves out; draws from the PRNG in a fixed order so output stays reproducible.
export function resolvePatient (spec: PatientSpec | undefined, prng: Prng): ResolvedPatient {
  const [defaultName, defaultSex] = prng.pick(DEFAULT_NAMES)
  const id = String(prng.int(1_000_000, 9_999_999))
  const bsn = generateBsn(prng)
  const birthDate = randomDate(prng, 1935, 2015)
  const name = spec?.name ?? defaultName
  // eslint-disable-next-line no-control-regex
  const charset = spec?.charset ?? (/^[\x00-\x7F]*$/.test(name) ? 'ascii' : 'utf8')
  return {
    name,
    id: spec?.id ?? id,
    issuer: spec?.issuer ?? 'BEELDNET',
    bsn: spec?.bsn ?? bsn,
    birthDate: spec?.birthDate ?? birthDate,
    sex: spec?.sex ?? (spec?.name === undefined ? defaultSex : 'O'),
    charset
  }
}

/** A handful of varied patients, one or more per charset, for sample data. Fixed values: stable across runs. */
export function samplePatients (): PatientSpec[] {
  const prng = createPrng(20240611)
  const p = (name: string, sex: 'M' | 'F', birthDate: string, charset: CharsetName, id: string): PatientSpec =>
    ({ name, sex, birthDate, charset, id, issuer: 'BEELDNET', bsn: generateBsn(prng) })
  return [
    p('de Vries^Johanna^M.', 'F', '19580312', 'ascii', '4002117'),
    p('Müller^Jürgen', 'M', '19671103', 'latin1', '4002118'),
    p('Ørsted^Zoë', 'F', '19890527', 'latin1', '4002119'),
    p('Öztürk^Ayşe', 'F', '19750919', 'utf8', '4002120'),
    p('Dionysios=Διονυσιος', 'M', '19440101', 'greek', '4002121'),
    p('Yamada^Tarou=山田^太郎=やまだ^たろう', 'M', '19810704', 'japanese', '4002122')
  ]
}
