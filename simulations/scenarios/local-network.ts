import { rename, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { pino, type Logger } from 'pino'
import { BeeldnetNode } from '../../node/beeldnet-node.ts'
import { loadConfig, updateConfigFile } from '../../node/config/config.ts'
import { nodePaths } from '../../node/paths.ts'
import { createRegistry, type Registry } from '../../registry/registry.ts'
import type { Directory, Institution } from '../../protocol/registry/documents.ts'
import { NetworkNotReadyError, ScenarioOptionError } from './errors.ts'
import { loadGovernanceMembers, LocalGovernance } from './governance.ts'
import { ensureDemoAccounts, type DemoAccount } from './demo-accounts.ts'
import { DUTCH_HOSPITALS } from './hospitals.ts'
import { DIRECTORY_FORMAT, readManifest, writeManifest, type LocalNetworkManifest, type SampleSizeName } from './manifest.ts'
import { nodeEnv } from './node-env.ts'
import { findFreePortRange } from './ports.ts'
import { ensureSamples, samplePlan } from './samples.ts'
import { setUpLocalNetwork } from './setup.ts'
import { assertFreeForSetup, commitStaging, prepareStaging } from './staging.ts'
import { listsAllActive, waitForDirectory } from './wait-for-directory.ts'

/*
 * A whole Beeldnet network on loopback: a registry, its governance (5 keys, 3 needed) and
 * hospital nodes enrolled, admitted and holding sample studies. The first start in a data
 * directory sets it all up through the real workflow (see setup.ts); later starts reuse it:
 * same keys, same root, same directory, same studies. `npm start` runs it; suites and
 * benchmarks start it in a temp directory.
 */

/** Governance keys made for a new network, and how many must sign. */
export const GOVERNANCE_THRESHOLD = 3

export interface LocalNetworkInit {
  /** where the network lives; a directory holding a network made here is reused, an absent or empty one is set up */
  dataDir: string
  /** hospital nodes of a new network (default 3, at most 8); a reused network keeps the ones it was made with */
  nodeCount?: number
  /** the network name in every signed document of a new network (default 'beeldnet-local') */
  network?: string
  /** the registry's HTTP port (default 0: a free one each start; nodes are pointed at wherever it is) */
  registryPort?: number
  /** HTTP port of the first node, the others count up (default 0: every node a free port) */
  httpBasePort?: number
  /**
   * libp2p TCP port of the first node of a new network, the others count up (default: a free
   * range found at setup). Enrolments carry these addresses, so a reused network keeps its own.
   */
  p2pBasePort?: number
  /** when given, each node runs its DIMSE service on dimseBasePort + i (AE title BEELDNET, calling AE PACS accepted) */
  dimseBasePort?: number
  /** how often nodes ask the registry for a newer directory (default 5) */
  pollIntervalSeconds?: number
  /** samples for a new network: 'demo' (a week of referrals) or 'test' (two tiny studies a node) (default 'demo') */
  sampleSize?: SampleSizeName
  /** registry requests a minute per address; every node shares 127.0.0.1 (default 10000) */
  rateLimitPerMinute?: number
  /** make the demo accounts (clinician, IT admin, auditor; see demo-accounts.ts) on every node (default false) */
  demoAccounts?: boolean
  /** how long to wait for every node to hold the directory listing all of them (default 30 s) */
  readyTimeoutMs?: number
  /** logs of the registry and nodes (default: silent) */
  logger?: Logger
  /** progress lines for people (default: none) */
  onProgress?: (line: string) => void
  /** environment the registry and nodes read overrides from; the scenario's own overrides win (default process.env) */
  env?: NodeJS.ProcessEnv
  signal?: AbortSignal
}

export interface LocalNetworkNode {
  /** directory name under <dataDir>/nodes/ */
  slug: string
  name: string
  ura: string
  departments: LocalNetworkManifest['nodes'][number]['departments']
  dataDir: string
  peerId: string
  /** the libp2p multiaddrs it enrolled with and listens on */
  addresses: string[]
  node: BeeldnetNode
  /** its HTTP API, e.g. http://127.0.0.1:8470 */
  url: string
  /** StudyInstanceUIDs of its sample studies */
  sampleStudies: string[]
  /** sample studies imported by this start (0 when the store already held them) */
  imported: number
  /** the demo accounts, when the network was started with them */
  accounts: DemoAccount[]
  /** its institution's state in the directory the nodes hold at start ('unlisted' if governance dropped it) */
  state: Institution['status']['state'] | 'unlisted'
}

export interface LocalNetwork {
  dataDir: string
  network: string
  /** true when this start set the network up; false when it reused one */
  created: boolean
  registry: {
    url: string
    dir: string
    /** hash of root v1, the one every node pinned */
    rootHash: string
    registry: Registry
  }
  /** key files, keys and a client that proposes and signs through the registry */
  governance: LocalGovernance
  nodes: LocalNetworkNode[]
  /** stops the nodes, then the registry */
  stop: () => Promise<void>
}

/** Directories expiring sooner than this are renewed at start, as governance would before a holiday. */
const RENEW_WITHIN_MS = 7 * 86_400_000

export async function startLocalNetwork (init: LocalNetworkInit): Promise<LocalNetwork> {
  const dataDir = resolve(init.dataDir)
  const logger = init.logger ?? pino({ level: 'silent' })
  const report = init.onProgress ?? (() => {})
  const env = init.env ?? process.env
  const rateLimitPerMinute = init.rateLimitPerMinute ?? 10_000
  const registryPort = init.registryPort ?? 0
  const { signal } = init

  let manifest = await readManifest(dataDir)
  if (manifest !== undefined && manifest.directoryFormat !== DIRECTORY_FORMAT) {
    // A demo network from before the directory's signed header: its registry would refuse its own
    // store. Keep it aside (nothing is deleted) and set up a new one.
    const aside = await moveAside(dataDir)
    report(`the local network in ${dataDir} was made with the old directory format, which this version does not take: moved to ${aside}; setting up a new one`)
    manifest = undefined
  }
  const created = manifest === undefined
  if (manifest === undefined) {
    const nodeCount = init.nodeCount ?? 3
    if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > DUTCH_HOSPITALS.length) {
      throw new ScenarioOptionError(`nodeCount must be 1 to ${DUTCH_HOSPITALS.length}, not ${nodeCount}`)
    }
    checkPortRange('p2pBasePort', init.p2pBasePort, nodeCount)
    checkPortRange('httpBasePort', init.httpBasePort, nodeCount)
    checkPortRange('dimseBasePort', init.dimseBasePort, nodeCount)
    await assertFreeForSetup(dataDir)
    report(`setting up a new local network in ${dataDir}`)
    const staging = await prepareStaging(dataDir)
    const made = await setUpLocalNetwork({
      dir: staging,
      network: init.network ?? 'beeldnet-local',
      hospitals: DUTCH_HOSPITALS.slice(0, nodeCount),
      threshold: GOVERNANCE_THRESHOLD,
      p2pBasePort: init.p2pBasePort ?? await findFreePortRange(nodeCount),
      registryPort,
      rateLimitPerMinute,
      sampleSize: init.sampleSize ?? 'demo',
      logger,
      report,
      env,
      signal
    })
    await writeManifest(staging, made)
    await commitStaging(staging, dataDir)
    manifest = made
  } else {
    checkPortRange('httpBasePort', init.httpBasePort, manifest.nodes.length)
    checkPortRange('dimseBasePort', init.dimseBasePort, manifest.nodes.length)
    const kept = init.nodeCount !== undefined && init.nodeCount !== manifest.nodes.length ? ` with its ${manifest.nodes.length} nodes (nodeCount ${init.nodeCount} applies to a new one)` : ''
    report(`reusing the local network in ${dataDir}${kept} (made ${manifest.created})`)
  }

  const registry = createRegistry({ logger: logger.child({ component: 'registry' }) }, {
    dir: join(dataDir, manifest.registry.dir), env, host: '127.0.0.1', port: registryPort, rateLimitPerMinute
  })
  const started: BeeldnetNode[] = []
  const stopAll = async (): Promise<void> => {
    const results = await Promise.allSettled(started.splice(0).map((n) => n.stop()))
    await registry.stop()
    const failed = results.find((r) => r.status === 'rejected')
    if (failed !== undefined) throw failed.reason
  }
  try {
    await registry.start()
    const governance = new LocalGovernance({
      registryUrl: registry.url,
      network: manifest.network,
      threshold: manifest.governance.threshold,
      members: await loadGovernanceMembers(manifest.governance.members.map((m) => join(dataDir, m.file)))
    })
    const version = await renewIfExpiring(governance, report, signal)

    const nodes: LocalNetworkNode[] = []
    for (const [i, entry] of manifest.nodes.entries()) {
      signal?.throwIfAborted()
      const nodeDir = join(dataDir, entry.dir)
      const imported = created ? entry.samples.length : await topUpSamples(dataDir, manifest, i, report, signal)
      // The config file names the registry too, for the CLI verbs run by hand on this directory.
      const configPath = nodePaths(nodeDir).config
      if ((await loadConfig(configPath, {})).registry.url !== registry.url) await updateConfigFile(configPath, ['registry', 'url'], registry.url)
      const node = new BeeldnetNode({
        dataDir: nodeDir,
        logger: logger.child({ node: entry.slug }),
        env: nodeEnv(env, {
          httpPort: init.httpBasePort === undefined || init.httpBasePort === 0 ? 0 : init.httpBasePort + i,
          registryUrl: registry.url,
          pollIntervalSeconds: init.pollIntervalSeconds ?? 5,
          p2pListen: entry.addresses,
          ...(init.dimseBasePort === undefined ? {} : { dimsePort: init.dimseBasePort + i })
        })
      })
      const accounts = init.demoAccounts === true ? await ensureDemoAccounts(nodeDir, i) : []
      await startNode(node)
      started.push(node)
      nodes.push({
        slug: entry.slug,
        name: entry.name,
        ura: entry.ura,
        departments: entry.departments,
        dataDir: nodeDir,
        peerId: entry.peerId,
        addresses: entry.addresses,
        node,
        url: node.url,
        sampleStudies: entry.samples,
        imported,
        accounts,
        state: 'unlisted'
      })
      report(`${entry.name} started at ${node.url}`)
    }

    // A fresh network is ready when every node lists all of them; a reused one when every node
    // holds what governance last published (it may have suspended or revoked someone since).
    const expected = manifest.nodes.map((n) => ({ ura: n.ura, peerId: n.peerId }))
    const ready = (d: Directory): boolean => d.version >= version && (!created || listsAllActive(d, expected))
    const held = await Promise.all(nodes.map((n) => waitForDirectory(n.node.directory, ready, { name: n.name, timeoutMs: init.readyTimeoutMs, signal })))
    for (const n of nodes) n.state = held[0]!.institutions.find((i) => i.ura === n.ura)?.status.state ?? 'unlisted'
    const active = nodes.filter((n) => n.state === 'active').length
    report(`every node holds directory v${held[0]!.version}: ${active} of ${nodes.length} institutions active`)

    let stopping: Promise<void> | undefined
    return {
      dataDir,
      network: manifest.network,
      created,
      registry: { url: registry.url, dir: join(dataDir, manifest.registry.dir), rootHash: manifest.registry.rootHash, registry },
      governance,
      nodes,
      stop: () => { stopping ??= stopAll(); return stopping }
    }
  } catch (err) {
    await stopAll().catch((stopErr: unknown) => { logger.error({ err: stopErr }, 'stopping after a failed start failed') })
    throw err
  }
}

/** Renames `dir` to the first free `<dir>.old-<n>` and returns that name. */
async function moveAside (dir: string): Promise<string> {
  for (let n = 1; ; n++) {
    const target = `${dir}.old-${n}`
    if (await stat(target).then(() => false, () => true)) {
      await rename(dir, target)
      return target
    }
  }
}

/** A base port (0 or absent: none) leaves room for `count` ports. */
function checkPortRange (name: string, base: number | undefined, count: number): void {
  if (base === undefined || base === 0) return
  if (!Number.isInteger(base) || base < 1 || base + count - 1 > 65_535) throw new ScenarioOptionError(`${name} ${base} leaves no room for ${count} port(s)`)
}

/** A node whose start fails half way is stopped again, so its store lock is released. */
async function startNode (node: BeeldnetNode): Promise<void> {
  try {
    await node.start()
  } catch (err) {
    await node.stop().catch(() => {})
    throw err
  }
}

/** Samples come back only to a store that lost them all (the retention sweep purges after 30 days). */
async function topUpSamples (dataDir: string, manifest: LocalNetworkManifest, index: number, report: (line: string) => void, signal?: AbortSignal): Promise<number> {
  const entry = manifest.nodes[index]!
  const loaded = await ensureSamples({
    nodeDir: join(dataDir, entry.dir), workDir: join(dataDir, 'samples', entry.slug), plan: samplePlan(manifest.sampleSize, index, entry.issuer), signal
  })
  if (loaded.studies.length > 0) report(`${entry.name}: its store was empty; imported its ${loaded.studies.length} sample studies again`)
  return loaded.studies.length
}

/** Renews the directory in force when it expires soon; returns the version nodes should end up holding. */
async function renewIfExpiring (governance: LocalGovernance, report: (line: string) => void, signal?: AbortSignal): Promise<number> {
  const status = await governance.client.status(signal) as { directory?: { version: number, expires: string } | null }
  const directory = status.directory ?? undefined
  if (directory === undefined) throw new NetworkNotReadyError(`the registry at ${governance.client.registryUrl} has no directory, though this network was set up with one`)
  if (Date.parse(directory.expires) - Date.now() > RENEW_WITHIN_MS) return directory.version
  const renewed = await governance.publish([{ action: 'renew' }], signal)
  report(`directory v${directory.version} expires ${directory.expires}: governance renewed it as v${renewed.version}`)
  return renewed.version
}
