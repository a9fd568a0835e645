import { createWriteStream } from 'node:fs'
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { readHeader } from '../dicom/dataset-reader.ts'
import type { StudyEntries } from '../store/study-index.ts'
import type { InstanceBytes } from '../store/study-export.ts'
import { MediaTargetNotEmptyError } from './errors.ts'
import { planMedium, type MediumPlan } from './pdi-layout.ts'
import { DICOMDIR_NAME, INDEX_NAME, README_NAME, RECORD_VALUE_BYTES, mediumFilePrefix, mediumRootFiles, type MediumRootInit } from './pdi-medium.ts'

/*
 * `beeldnet node export --pdi`: the studies as an IHE PDI medium in a folder, ready to be burnt to
 * a CD/DVD or copied to a USB stick. Each instance is written aside and renamed, its bytes as
 * stored (a bare dataset gets the File Meta a medium's file must have); the DICOMDIR is written
 * last, from the headers of the files written, so a cut-off export is never a medium that looks
 * whole. The folder must be empty: a DICOMDIR describes everything on its medium.
 */

export interface PdiFolderResult {
  /** every file written, the DICOMDIR last */
  files: string[]
  plan: MediumPlan
}

export async function writePdiFolder (studies: StudyEntries[], dir: string, bytesOf: InstanceBytes, init: MediumRootInit): Promise<PdiFolderResult> {
  const present = await readdir(dir).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return []; throw err })
  if (present.length > 0) throw new MediaTargetNotEmptyError(dir)
  await mkdir(dir, { recursive: true })
  const plan = planMedium(studies)
  const files: string[] = []
  for (const { fileId, instance } of plan.instances) {
    init.signal?.throwIfAborted()
    const target = join(dir, ...fileId)
    await mkdir(join(dir, ...fileId.slice(0, -1)), { recursive: true })
    await writeAside(target, async (partial) => {
      const prefix = mediumFilePrefix(instance)
      const out = createWriteStream(partial)
      if (prefix !== undefined) out.write(prefix)
      await pipeline(await bytesOf(instance), out, { signal: init.signal })
    })
    files.push(target)
  }
  const root = await mediumRootFiles(plan, (m) => readHeader(join(dir, ...m.fileId), { maxValueBytes: RECORD_VALUE_BYTES }), init)
  for (const [name, bytes] of [[README_NAME, root.readme], [INDEX_NAME, root.index], [DICOMDIR_NAME, root.dicomdir]] as const) {
    const target = join(dir, name)
    await writeAside(target, async (partial) => { await writeFile(partial, bytes) })
    files.push(target)
  }
  return { files, plan }
}

/** Writes to `<target>.partial` and renames: the file is complete or absent. */
async function writeAside (target: string, write: (partial: string) => Promise<void>): Promise<void> {
  const partial = `${target}.partial`
  try {
    await write(partial)
  } catch (err) {
    await rm(partial, { force: true })
    throw err
  }
  await rename(partial, target)
}
