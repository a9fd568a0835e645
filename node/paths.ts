import { join } from 'node:path'
import { homedir } from 'node:os'

/** Where a node keeps its things inside its data directory. */
export function nodePaths (dataDir: string): { config: string, identity: string, users: string, cliToken: string, auditTrail: string, running: string, deidentified: string, data: string } {
  return {
    config: join(dataDir, 'beeldnet.yaml'),
    identity: join(dataDir, 'identity.key'),
    users: join(dataDir, 'users.json'),
    cliToken: join(dataDir, 'cli-token'),
    auditTrail: join(dataDir, 'audit', 'trail.jsonl'),
    /** written by `beeldnet node start` while it runs: its API's address and pid, so the CLI goes through it */
    running: join(dataDir, 'running.json'),
    /** de-identified pushes: their records and UID maps (kept), and the copies being made (work/, temporary) */
    deidentified: join(dataDir, 'deidentified'),
    data: dataDir
  }
}

/** --data-dir, else BEELDNET_DATA_DIR, else ~/.beeldnet */
export function defaultDataDir (env: NodeJS.ProcessEnv = process.env): string {
  return env.BEELDNET_DATA_DIR ?? join(homedir(), '.beeldnet')
}
