import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll } from 'vitest'
import { pino } from 'pino'
import { BeeldnetNode } from '../../node/beeldnet-node.ts'
import { updateConfigFile } from '../../node/config/config.ts'
import { nodePaths } from '../../node/paths.ts'
import { nodeEnv } from '../../simulations/scenarios/node-env.ts'
import type { Role } from '../../node/users/user-store.ts'
import { fetchAs } from './api-caller.ts'
import { startLocalNetwork, type LocalNetwork, type LocalNetworkNode } from '../../simulations/scenarios/local-network.ts'

const liveSuites = new Set<SuiteNetwork>()

export interface SuiteNetwork {
  net: LocalNetwork
  /** the network's temp directory (room for a suite's own files too) */
  dir: string
  nodes: LocalNetworkNode[]
  /** nodes a test starts itself (a restart on a network node's directory): stopped before the network */
  restarted: BeeldnetNode[]
}

/**
 * One local network (registry, governance, `nodeCount` admitted nodes with test samples) for the
 * whole suite: its directory outlives each test's temp dirs. Filled in before the suite's tests,
 * stopped (with the nodes in `restarted`) and removed after them.
 */
export function useLocalNetwork (label: string, nodeCount: number, options: { demoAccounts?: boolean } = {}): SuiteNetwork {
  const suite = { restarted: [] as BeeldnetNode[] } as SuiteNetwork
  beforeAll(async () => {
    suite.dir = await mkdtemp(join(tmpdir(), `${label}-`))
    suite.net = await startLocalNetwork({ dataDir: join(suite.dir, 'net'), nodeCount, sampleSize: 'test', pollIntervalSeconds: 1, demoAccounts: options.demoAccounts ?? false })
    suite.nodes = suite.net.nodes
    liveSuites.add(suite)
  })
  afterAll(async () => {
    liveSuites.delete(suite)
    // The network stops only the nodes it started; one left running writes into the directory removed below.
    for (const node of suite.restarted.splice(0)) await node.stop().catch(() => {})
    await suite.net?.stop()
    if (suite.dir !== undefined) await rm(suite.dir, { recursive: true, force: true })
  })
  return suite
}

/** Starts a stopped network node again on its directory and addresses (its config as the file says). */
export async function startAgain (suite: SuiteNetwork, node: LocalNetworkNode): Promise<BeeldnetNode> {
  const restarted = new BeeldnetNode({
    dataDir: node.dataDir,
    logger: pino({ level: 'silent' }),
    env: nodeEnv(process.env, { httpPort: 0, registryUrl: suite.net.registry.url, pollIntervalSeconds: 1, p2pListen: node.addresses })
  })
  suite.restarted.push(restarted)
  await restarted.start()
  node.node = restarted
  node.url = restarted.url
  return restarted
}

/**
 * Stops a network node, sets `changes` (key path, value) in its config file and starts it again:
 * how a test gives one hospital a DIMSE service, a PACS or rules.
 */
export async function restartWithConfig (suite: SuiteNetwork, node: LocalNetworkNode, changes: Array<[string[], unknown]>): Promise<BeeldnetNode> {
  await node.node.stop()
  for (const [keyPath, value] of changes) await updateConfigFile(nodePaths(node.dataDir).config, keyPath, value)
  return startAgain(suite, node)
}

/**
 * fetch as `role` (default clinician) on whichever node of a running suite network the URL points
 * at: Authorization: Bearer with a token of that node, the way an integration calls a hospital.
 */
export async function networkFetch (url: string, init?: RequestInit, role: Role = 'clinician'): Promise<Response> {
  const node = [...liveSuites].flatMap((suite) => suite.nodes).find((n) => url === n.url || url.startsWith(`${n.url}/`))
  if (node === undefined) throw new Error(`no node of a running test network serves ${url}`)
  return fetchAs(node, role)(url, init)
}
