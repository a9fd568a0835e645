import { readFile, stat } from 'node:fs/promises'
import { ConfigError } from '../errors.ts'
import type { LocalIdentity } from './coerce.ts'

/*
 * Finds this hospital's patient for a BSN. The mapping table is the first implementation; an EPD
 * or a FHIR `Patient?identifier=http://fhir.nl/fhir/NamingSystem/bsn|<bsn>` lookup implements the
 * same interface. A lookup never guesses: no match is undefined, and the study is held.
 */

export interface PatientLookup {
  findByBsn (bsn: string): Promise<LocalIdentity | undefined>
}

/**
 * A CSV file `bsn,patientId,issuer[,accessionNumber]` (a header line, # comments), re-read when it
 * changes. A BSN listed twice with different patients is an error, not a choice.
 */
export class MappingTableLookup implements PatientLookup {
  private readonly path: string
  private table = new Map<string, LocalIdentity>()
  private loadedMtime = -1

  constructor (path: string) {
    this.path = path
  }

  async findByBsn (bsn: string): Promise<LocalIdentity | undefined> {
    await this.refresh()
    return this.table.get(bsn)
  }

  private async refresh (): Promise<void> {
    const info = await stat(this.path).catch((err: NodeJS.ErrnoException) => { throw new ConfigError(`the patient mapping table ${this.path} cannot be read: ${err.message}`) })
    if (info.mtimeMs === this.loadedMtime) return
    const text = await readFile(this.path, 'utf8')
    const table = new Map<string, LocalIdentity>()
    for (const [i, line] of text.split(/\r?\n/).entries()) {
      const trimmed = line.trim()
      if (trimmed === '' || trimmed.startsWith('#') || (i === 0 && /^bsn\s*,/i.test(trimmed))) continue
      const [bsn = '', patientId = '', issuer = '', accessionNumber] = trimmed.split(',').map((f) => f.trim())
      if (!/^[0-9]{9}$/.test(bsn) || patientId === '') throw new ConfigError(`${this.path} line ${i + 1}: expected bsn,patientId,issuer[,accessionNumber]`)
      const local: LocalIdentity = { patientId, issuer, ...(accessionNumber === undefined || accessionNumber === '' ? {} : { accessionNumber }) }
      const known = table.get(bsn)
      if (known !== undefined && (known.patientId !== patientId || known.issuer !== issuer)) {
        throw new ConfigError(`${this.path} line ${i + 1}: BSN ${bsn} is mapped to two patients`)
      }
      table.set(bsn, local)
    }
    this.table = table
    this.loadedMtime = info.mtimeMs
  }
}

/** No table configured: every study is held for a person to reconcile. */
export const noLookup: PatientLookup = { findByBsn: async () => undefined }
