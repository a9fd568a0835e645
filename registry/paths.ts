import { join } from 'node:path'

/** Where a registry keeps its things inside its data directory. */
export function registryPaths (dir: string): { config: string, timestampKey: string, db: string } {
  return {
    config: join(dir, 'registry.yaml'),
    /** the online key: signs timestamps only, never a directory */
    timestampKey: join(dir, 'timestamp.key'),
    db: join(dir, 'db')
  }
}
