import { open, stat } from 'node:fs/promises'

/* The two file-system facts durable writes rest on, shared by the store, transfers and the trust store. */

/** fsyncs a file or a directory (a directory's fsync makes renames into it durable). */
export async function fsyncPath (path: string): Promise<void> {
  const handle = await open(path, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** Whether `path` exists; any error but "not there" is thrown, not taken for absence. */
export async function pathExists (path: string): Promise<boolean> {
  return stat(path).then(() => true, (err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return false
    throw err
  })
}
