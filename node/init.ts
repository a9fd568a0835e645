import { mkdir, open, stat } from 'node:fs/promises'
import { createIdentityFile, type NodeIdentity } from '../protocol/identity.ts'
import { defaultConfigText } from './config/config.ts'
import { AlreadyInitialisedError } from './errors.ts'
import { nodePaths } from './paths.ts'
import { StudyStore } from './store/study-store.ts'

/** `beeldnet node init`: data directory, commented config file, identity key (0600), empty store. */
export async function initNode (dataDir: string, init: { name?: string } = {}): Promise<NodeIdentity & { configPath: string }> {
  const paths = nodePaths(dataDir)
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  if (await exists(paths.identity) || await exists(paths.config)) throw new AlreadyInitialisedError(dataDir)
  const identity = await createIdentityFile(paths.identity)
  const handle = await open(paths.config, 'wx', 0o640)
  try {
    await handle.writeFile(defaultConfigText(init.name ?? 'Beeldnet node'))
  } finally {
    await handle.close()
  }
  const store = new StudyStore({ dir: paths.data })
  await store.start()
  await store.stop()
  return { ...identity, configPath: paths.config }
}

async function exists (path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false)
}
