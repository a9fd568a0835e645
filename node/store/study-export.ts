import { createWriteStream } from 'node:fs'
import { mkdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { InstanceRecord } from './records.ts'
import type { StudyEntries } from './study-index.ts'

/*
 * The layout of an exported study, S0001/I00001.dcm ..., series and instances by number then UID:
 * one place, so an export by a stopped node and one through a running node name every file the same.
 */

export type InstanceBytes = (instance: InstanceRecord) => AsyncIterable<Uint8Array> | Promise<AsyncIterable<Uint8Array>>

/** Writes each instance's bytes under `dir`, each file complete or absent (written aside, then renamed). Returns the paths written. */
export async function writeStudyFiles (entries: StudyEntries, dir: string, bytesOf: InstanceBytes, signal?: AbortSignal): Promise<string[]> {
  const written: string[] = []
  for (const [si, series] of [...entries.series].sort(byNumberThenUid).entries()) {
    const seriesDir = join(dir, `S${String(si + 1).padStart(4, '0')}`)
    await mkdir(seriesDir, { recursive: true })
    const instances = entries.instances.filter((i) => i.seriesInstanceUID === series.seriesInstanceUID).sort(byNumberThenUid)
    for (const [ii, instance] of instances.entries()) {
      const target = join(seriesDir, `I${String(ii + 1).padStart(5, '0')}.dcm`)
      const partial = `${target}.partial`
      try {
        await pipeline(await bytesOf(instance), createWriteStream(partial), { signal })
      } catch (err) {
        await rm(partial, { force: true })
        throw err
      }
      await rename(partial, target)
      written.push(target)
    }
  }
  return written
}

/** Series and instances in the order a viewer shows them: by number (unnumbered last), then by UID. */
export function byNumberThenUid (a: { number?: number, seriesInstanceUID: string, sopInstanceUID?: string }, b: typeof a): number {
  const an = a.number ?? Number.MAX_SAFE_INTEGER
  const bn = b.number ?? Number.MAX_SAFE_INTEGER
  if (an !== bn) return an - bn
  return (a.sopInstanceUID ?? a.seriesInstanceUID).localeCompare(b.sopInstanceUID ?? b.seriesInstanceUID)
}
