// UIDs under the 2.25 arc (PS3.5 B.2): the decimal form of a version-4 UUID whose bits come from the seeded
// PRNG. At most 5 + 39 = 44 characters, no leading zeros, so always valid and reproducible.
import type { Prng } from './prng.ts'

export const IMPLEMENTATION_CLASS_UID = '2.25.229741815310178939364786327613926522934'
export const IMPLEMENTATION_VERSION_NAME = 'BEELDNET_SIM_1'

export function uidFrom (prng: Prng): string {
  const words = [prng.u32(), prng.u32(), prng.u32(), prng.u32()]
  // UUID version 4 and RFC 4122 variant bits, so the value is a well-formed UUID too.
  words[1] = ((words[1] as number) & 0xFFFF0FFF | 0x00004000) >>> 0
  words[2] = ((words[2] as number) & 0x3FFFFFFF | 0x80000000) >>> 0
  let value = 0n
  for (const w of words) value = (value << 32n) | BigInt(w)
  return `2.25.${value.toString(10)}`
}

const UID_PATTERN = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/

export function isValidUid (uid: string): boolean {
  return uid.length <= 64 && UID_PATTERN.test(uid)
}
