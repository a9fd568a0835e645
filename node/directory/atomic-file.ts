import { randomBytes } from 'node:crypto'
import { open, readdir, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { fsyncPath } from '../store/durable-fs.ts'

/*
 * Writes that a crash cannot leave half done: the bytes go to a temp file in the same directory,
 * are fsynced, renamed over the target, and the directory is fsynced so the rename itself is durable.
 * A reader sees the old file or the new one, never a mix.
 */

const TEMP_SUFFIX = '.tmp'

export async function writeFileAtomic (path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  await swapIn(path, data, mode, true)
  await fsyncDir(dirname(path))
}

/**
 * The same swap without the fsyncs: a reader still sees the old file or the new one, but after a
 * crash the old one may be back. For files that may lag behind (a trail's head, an export cursor,
 * a config file a person edits).
 */
export async function replaceFile (path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  await swapIn(path, data, mode, false)
}

async function swapIn (path: string, data: string | Uint8Array, mode: number, sync: boolean): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`)
  try {
    const handle = await open(tmp, 'wx', mode)
    try {
      await handle.writeFile(data)
      if (sync) await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

/** fsyncs a directory, so renames into it are durable. */
export const fsyncDir = fsyncPath

/** Temp files left by a process that died mid-write: never visible under their real name, so safe to drop. */
export async function removeLeftoverTemps (dir: string): Promise<string[]> {
  const names = (await readdir(dir).catch(() => [])).filter((n) => n.startsWith('.') && n.endsWith(TEMP_SUFFIX))
  for (const name of names) await rm(join(dir, name), { force: true })
  return names
}
