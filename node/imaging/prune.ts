import { readdir, unlink } from 'node:fs/promises'
import { join } from 'node:path'

/*
 * Thumbnails are patient images: when the store no longer holds an instance (retention, delete),
 * its cached thumbnail goes too. Run after each retention sweep, and so at every start.
 */

export async function pruneThumbnails (cacheDir: string, held: (sopInstanceUID: string) => Promise<boolean>): Promise<number> {
  const names = await readdir(cacheDir).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return []; throw err })
  let removed = 0
  for (const name of names) {
    if (!name.endsWith('.png')) continue
    if (await held(name.slice(0, -'.png'.length))) continue
    await unlink(join(cacheDir, name)).catch(() => {})
    removed++
  }
  return removed
}
