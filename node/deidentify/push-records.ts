import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Replacement } from './deidentification-map.ts'
import type { StudyDeidentificationRecord } from './export.ts'

/*
 * What a de-identified push leaves at the source: one JSON file per push (<data-dir>/deidentified/
 * records/<id>.json, mode 0600) with the de-identification record and the UID map, which turn the
 * copy back into the patient and so never leave this node. The derived study it names is in the
 * store only until its transfer has ended; the file stays.
 */

export interface DeidentifiedPushRecord {
  id: string
  createdAt: string
  /** preparing: the copy is being made and imported; queued: its transfer runs; removed: the copy is gone from the store; abandoned: it was never queued */
  state: 'preparing' | 'queued' | 'removed' | 'abandoned'
  original: { studyInstanceUID: string }
  derived: { studyInstanceUID: string }
  profile: string
  destination: { ura: string, department: string }
  transferId?: string
  /** the transfer's final state (complete, failed, declined, cancelled), or why it was never queued */
  outcome?: string
  removedAt?: string
  record: StudyDeidentificationRecord
  map: Replacement[]
}

export interface PushRecords {
  save: (record: DeidentifiedPushRecord) => Promise<void>
  list: () => Promise<DeidentifiedPushRecord[]>
  get: (id: string) => Promise<DeidentifiedPushRecord | undefined>
}

export function createPushRecords (dir: string): PushRecords {
  const file = (id: string): string => join(dir, `${id}.json`)
  return {
    async save (record) {
      await mkdir(dir, { recursive: true, mode: 0o700 })
      // Aside, then renamed: a crash leaves the old record or the new one.
      const tmp = `${file(record.id)}.tmp`
      await writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600, flush: true })
      await rename(tmp, file(record.id))
    },
    async list () {
      const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return []; throw err })
      const out: DeidentifiedPushRecord[] = []
      for (const name of names.filter((n) => n.endsWith('.json')).sort()) out.push(JSON.parse(await readFile(join(dir, name), 'utf8')) as DeidentifiedPushRecord)
      return out
    },
    async get (id) {
      return readFile(file(id), 'utf8').then((text) => JSON.parse(text) as DeidentifiedPushRecord, (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined
        throw err
      })
    }
  }
}
