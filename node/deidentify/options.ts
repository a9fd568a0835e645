import { DeidentifyOptionError } from './errors.ts'
import type { OptionColumn } from './profile-table.ts'

/*
 * The profile and options a de-identification runs with, as the CLI names them
 * (`--deidentify basic[,retain-dates][,clean-descriptors]`), and the codes (CID 7050) that say so in
 * De-identification Method Code Sequence (0012,0064).
 */

/** The options Beeldnet applies; the others of PS3.15 E.3 are named in NOT_SUPPORTED. */
export type DeidentifyOption = 'retain-dates' | 'clean-descriptors'

export interface DeidentifyProfile {
  /** always the Basic Application Level Confidentiality Profile */
  profile: 'basic'
  options: DeidentifyOption[]
}

export interface MethodCode { value: string, scheme: 'DCM', meaning: string }

export const BASIC_PROFILE_CODE: MethodCode = { value: '113100', scheme: 'DCM', meaning: 'Basic Application Confidentiality Profile' }

export const OPTIONS: Readonly<Record<DeidentifyOption, { column: OptionColumn, code: MethodCode }>> = {
  'retain-dates': { column: 'retainLongitudinalFullDates', code: { value: '113106', scheme: 'DCM', meaning: 'Retain Longitudinal Temporal Information Full Dates Option' } },
  'clean-descriptors': { column: 'cleanDescriptors', code: { value: '113105', scheme: 'DCM', meaning: 'Clean Descriptors Option' } }
}

/** Options of PS3.15 E.3 that are not implemented (yet), by the names a caller might try. */
export const NOT_SUPPORTED: Readonly<Record<string, string>> = {
  'clean-pixel-data': 'Clean Pixel Data (burned-in text is refused instead, unless a person confirms it)',
  'clean-recognizable-visual-features': 'Clean Recognizable Visual Features',
  'clean-graphics': 'Clean Graphics',
  'clean-structured-content': 'Clean Structured Content',
  'retain-modified-dates': 'Retain Longitudinal Temporal Information with Modified Dates',
  'retain-patient-characteristics': 'Retain Patient Characteristics',
  'retain-device-identity': 'Retain Device Identity',
  'retain-institution-identity': 'Retain Institution Identity',
  'retain-uids': 'Retain UIDs',
  'retain-safe-private': 'Retain Safe Private (an explicit allow-list of private attributes is taken instead)'
}

/** `basic[,retain-dates][,clean-descriptors]` as a profile; anything else is refused with what is supported. */
export function parseProfile (text: string): DeidentifyProfile {
  const [profile, ...rest] = text.split(',').map((s) => s.trim().toLowerCase())
  if (profile !== 'basic') throw new DeidentifyOptionError(`the profile is 'basic' (PS3.15 Basic Application Level Confidentiality Profile), not ${JSON.stringify(profile)}`)
  const options: DeidentifyOption[] = []
  for (const name of rest) {
    if (name in OPTIONS) {
      if (!options.includes(name as DeidentifyOption)) options.push(name as DeidentifyOption)
      continue
    }
    const unsupported = NOT_SUPPORTED[name]
    throw new DeidentifyOptionError(unsupported === undefined
      ? `unknown option ${JSON.stringify(name)}: basic takes ${Object.keys(OPTIONS).join(', ')}`
      : `the ${unsupported} option is not supported; basic takes ${Object.keys(OPTIONS).join(', ')}`)
  }
  return { profile: 'basic', options: options.sort() }
}

/** The profile as the CLI writes it, e.g. 'basic,retain-dates'. */
export function describeProfile (p: DeidentifyProfile): string {
  return [p.profile, ...p.options].join(',')
}

/** CID 7050 codes of the profile and its options, in that order. */
export function methodCodes (p: DeidentifyProfile): MethodCode[] {
  return [BASIC_PROFILE_CODE, ...p.options.map((o) => OPTIONS[o].code)]
}
