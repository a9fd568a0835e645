import { mkdir, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { MANIFEST_FILE } from './manifest.ts'
import { NotALocalNetworkError } from './errors.ts'

/*
 * A network is built next to its data directory (`<dataDir>.setup`) and renamed into place when
 * complete, so an interrupted first run never leaves a half network that a later run would
 * reuse. A leftover build directory is removed only if it carries our marker.
 */

const MARKER = '.beeldnet-setup-in-progress'

export function stagingDirOf (dataDir: string): string {
  return `${dataDir}.setup`
}

/** Refuses a data directory that holds anything but a network made here. */
export async function assertFreeForSetup (dataDir: string): Promise<void> {
  const entries = await readdir(dataDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return []
    throw err
  })
  if (entries.length > 0) throw new NotALocalNetworkError(dataDir, `holds files but no ${MANIFEST_FILE} (made by an older \`npm start\`, or not a local network)`)
}

/** An empty build directory, with the marker. */
export async function prepareStaging (dataDir: string): Promise<string> {
  const staging = stagingDirOf(dataDir)
  if (await exists(staging)) {
    if (!await exists(`${staging}/${MARKER}`)) throw new NotALocalNetworkError(staging, 'exists and was not made by an interrupted setup')
    await rm(staging, { recursive: true, force: true })
  }
  await mkdir(dirname(staging), { recursive: true })
  await mkdir(staging, { mode: 0o700 })
  await writeFile(`${staging}/${MARKER}`, 'a local network being set up; removed by the next run if left behind\n')
  return staging
}

/** Moves the finished build into place (the data directory is absent or empty). */
export async function commitStaging (staging: string, dataDir: string): Promise<void> {
  await rm(`${staging}/${MARKER}`)
  if (await exists(dataDir)) await rmdir(dataDir)
  await rename(staging, dataDir)
}

async function exists (path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false)
}
