import { createHmac, randomBytes } from 'node:crypto'

/*
 * What one de-identification run replaces, kept by the caller and never written into an output: each
 * original UID gets a new one (U), each patient id a pseudonym (D), the same original always the same
 * replacement within the run. Replacements come from an HMAC under the run's key, so they are
 * deterministic per key and cannot be turned back without this map (or the key).
 */

export interface DeidentificationMapInit {
  /** the run's secret (default: 32 random bytes); the same key gives the same replacements */
  key?: Uint8Array
}

export interface Replacement {
  kind: 'uid' | 'patient-id'
  original: string
  replacement: string
}

export interface DeidentificationMap {
  /** a 2.25 UID (PS3.5 B.2) from a UUID version 8 derived from the original */
  uid: (original: string) => string
  /** a pseudonym for a patient id (Patient ID is Z/D: a dummy the run keeps consistent) */
  patientId: (original: string) => string
  /** every replacement made so far, for the caller to keep with the original's audit record */
  entries: () => Replacement[]
}

class KeyedMap implements DeidentificationMap {
  private readonly key: Uint8Array
  private readonly made = new Map<string, Replacement>()

  constructor (init: DeidentificationMapInit) {
    this.key = init.key ?? randomBytes(32)
  }

  uid (original: string): string {
    return this.replace('uid', original, (digest) => {
      const uuid = Buffer.from(digest.subarray(0, 16))
      uuid[6] = (uuid[6]! & 0x0F) | 0x80 // version 8: custom (RFC 9562)
      uuid[8] = (uuid[8]! & 0x3F) | 0x80 // the RFC variant
      return `2.25.${BigInt(`0x${uuid.toString('hex')}`).toString(10)}`
    })
  }

  patientId (original: string): string {
    return this.replace('patient-id', original, (digest) => `ANON${digest.toString('hex', 0, 6).toUpperCase()}`)
  }

  entries (): Replacement[] {
    return [...this.made.values()].map((r) => ({ ...r }))
  }

  private replace (kind: Replacement['kind'], original: string, derive: (digest: Buffer) => string): string {
    const id = `${kind}\0${original}`
    const known = this.made.get(id)
    if (known !== undefined) return known.replacement
    const replacement = derive(createHmac('sha256', this.key).update(id).digest())
    this.made.set(id, { kind, original, replacement })
    return replacement
  }
}

export function createDeidentificationMap (init: DeidentificationMapInit = {}): DeidentificationMap {
  return new KeyedMap(init)
}
