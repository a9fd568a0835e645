import { readFile, rm } from 'node:fs/promises'
import { writeFileAtomic } from '../directory/atomic-file.ts'
import { nodePaths } from '../paths.ts'
import { readCliToken } from '../users/cli-token.ts'
import { NodeUnreachableError } from './errors.ts'
import { createNodeApi, type NodeApi } from './node-api-client.ts'

/*
 * Whether `beeldnet node start` runs on this data directory, and where its API answers: it writes
 * running.json (its API's address and its pid) once it listens and removes it when it stops. While
 * it runs it holds the store, so the CLI's verbs on the store go through its API instead. A file
 * left by a node that crashed names a pid that is gone (or the store opens after all) and is ignored.
 */

export interface RunningNode { url: string, pid: number }

export async function markRunning (dataDir: string, node: RunningNode): Promise<void> {
  await writeFileAtomic(nodePaths(dataDir).running, `${JSON.stringify({ url: node.url, pid: node.pid, startedAt: new Date().toISOString() })}\n`, 0o600)
}

export async function markStopped (dataDir: string): Promise<void> {
  await rm(nodePaths(dataDir).running, { force: true })
}

/** The node running on this data directory, by its file, when the process it names is alive. */
export async function runningNode (dataDir: string): Promise<RunningNode | undefined> {
  const text = await readFile(nodePaths(dataDir).running, 'utf8').catch(() => undefined)
  if (text === undefined) return undefined
  let found: Partial<RunningNode>
  try { found = JSON.parse(text) as Partial<RunningNode> } catch { return undefined }
  if (typeof found.url !== 'string' || typeof found.pid !== 'number' || !alive(found.pid)) return undefined
  return { url: found.url, pid: found.pid }
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists, it is just not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Whether the API answers at all (/health answers 503 while the node is degraded: that is an answer). */
export async function answers (url: string): Promise<Error | undefined> {
  try {
    await fetch(`${url}/health`, { signal: AbortSignal.timeout(10_000) }).then(async (r) => r.body?.cancel())
    return undefined
  } catch (err) {
    return err as Error
  }
}

/** The running node's API with this data directory's CLI token (or BEELDNET_TOKEN). */
export async function apiOf (dataDir: string, node: RunningNode): Promise<NodeApi> {
  return createNodeApi(node.url, process.env.BEELDNET_TOKEN ?? await readCliToken(nodePaths(dataDir).cliToken))
}

/** The node runs (it holds the store) but its API does not answer: neither way can serve the verb. */
export function unreachableRunningNode (node: RunningNode, cause: Error): NodeUnreachableError {
  return new NodeUnreachableError(`the node runs (pid ${node.pid}, it holds the store) but its API at ${node.url} does not answer (${cause.message}): look at its log; the verb needs one or the other`, cause)
}
