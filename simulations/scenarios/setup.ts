import { join } from 'node:path'
import type { Logger } from 'pino'
import { updateConfigFile } from '../../node/config/config.ts'
import { buildEnrolment, sendEnrolment } from '../../node/directory/enrol.ts'
import { createRegistryClient } from '../../node/directory/registry-client.ts'
import { createTrustStore, trustDir } from '../../node/directory/trust-store.ts'
import { initNode } from '../../node/init.ts'
import type { Change } from '../../protocol/registry/documents.ts'
import { initRegistry } from '../../registry/init.ts'
import { createRegistry } from '../../registry/registry.ts'
import { createGovernanceMembers, describeMembers, LocalGovernance } from './governance.ts'
import { GOVERNANCE_MEMBERS, type HospitalProfile } from './hospitals.ts'
import { DIRECTORY_FORMAT, type LocalNetworkManifest, type SampleSizeName } from './manifest.ts'
import { loopbackMultiaddrs } from './node-env.ts'
import { ensureSamples, samplePlan } from './samples.ts'

/*
 * First run of a local network, the way it happens for real: governance members make their keys,
 * the operator inits the registry with them, a threshold signs root v1 (checked against the hash
 * `registry init` printed), every hospital inits its node, pins root v1 by that hash and enrols
 * with its own key, governance admits them all in directory v1. Then each node gets its samples.
 * Everything lands in `dir`; the caller moves it into place once this returns.
 */

export interface SetUpInit {
  /** an empty directory to build in */
  dir: string
  network: string
  hospitals: readonly HospitalProfile[]
  /** governance signatures needed (of GOVERNANCE_MEMBERS.length keys) */
  threshold: number
  /** libp2p port of the first hospital; the others count up. Written into the enrolments. */
  p2pBasePort: number
  /** where the registry listens while setting up (0: a free port) */
  registryPort: number
  rateLimitPerMinute: number
  sampleSize: SampleSizeName
  logger: Logger
  report: (line: string) => void
  env: NodeJS.ProcessEnv
  signal?: AbortSignal
}

export async function setUpLocalNetwork (init: SetUpInit): Promise<LocalNetworkManifest> {
  const { dir, network, signal, report } = init
  const members = await createGovernanceMembers(join(dir, 'governance'), GOVERNANCE_MEMBERS)
  const registryDir = join(dir, 'registry')
  const made = await initRegistry(registryDir, {
    network,
    threshold: init.threshold,
    governanceKeys: members.map((m) => ({ publicKey: m.key.publicKey, name: m.name })),
    host: '127.0.0.1',
    port: init.registryPort,
    rateLimitPerMinute: init.rateLimitPerMinute
  })
  report(`registry initialised: network ${network}, ${init.threshold} of ${members.length} governance keys, root v1 ${made.rootHash.slice(0, 16)}`)

  const registry = createRegistry({ logger: init.logger.child({ component: 'registry' }) }, {
    dir: registryDir, env: init.env, host: '127.0.0.1', port: init.registryPort, rateLimitPerMinute: init.rateLimitPerMinute
  })
  await registry.start()
  const nodes: LocalNetworkManifest['nodes'] = []
  try {
    const governance = new LocalGovernance({ registryUrl: registry.url, network, threshold: init.threshold, members })
    await governance.signCandidate(made.rootHash, signal)
    report(`root v1 signed by ${init.threshold} governance members and published`)

    const client = createRegistryClient({ url: registry.url })
    const enrolmentIds: string[] = []
    for (const [i, hospital] of init.hospitals.entries()) {
      signal?.throwIfAborted()
      const nodeDir = join(dir, 'nodes', hospital.slug)
      const identity = await initNode(nodeDir, { name: hospital.name })
      // `beeldnet node enrol --root-hash`: pin root v1 only if it is the one governance announced.
      await createTrustStore({ dir: trustDir(nodeDir) }).pinRoot(await client.get('/v1/roots/1', signal), made.rootHash)
      await updateConfigFile(identity.configPath, ['registry', 'url'], client.url)
      const addresses = loopbackMultiaddrs(init.p2pBasePort + i)
      const enrolment = await buildEnrolment(identity, { network, ura: hospital.ura, name: hospital.name, kind: 'hospital', departments: hospital.departments, addresses })
      enrolmentIds.push((await sendEnrolment(client, enrolment, signal)).id)
      nodes.push({ slug: hospital.slug, name: hospital.name, ura: hospital.ura, issuer: hospital.issuer, departments: hospital.departments, dir: join('nodes', hospital.slug), peerId: identity.peerId, addresses, samples: [] })
      report(`${hospital.name} (URA ${hospital.ura}) initialised and enrolled: peer id ${identity.peerId}`)
    }

    // The demo hospitals let each other pull for care; a second opinion waits for approval.
    for (const [i, hospital] of init.hospitals.entries()) {
      const others = init.hospitals.filter((h) => h.ura !== hospital.ura)
      await updateConfigFile(join(dir, nodes[i]!.dir, 'beeldnet.yaml'), ['policy', 'pull'], [
        ...others.map((h) => ({ ura: h.ura, purposes: ['treatment', 'referral', 'emergency'], decision: 'allow' })),
        ...others.map((h) => ({ ura: h.ura, purposes: ['second-opinion'], decision: 'queue' }))
      ])
    }

    const admits: Change[] = []
    for (const id of enrolmentIds) admits.push({ action: 'admit', enrolment: await governance.client.enrolment(id, signal) })
    const published = await governance.publish(admits, signal)
    report(`governance admitted ${admits.length} institutions: directory v${published.version}`)
  } finally {
    await registry.stop()
  }

  for (const [i, hospital] of init.hospitals.entries()) {
    const loaded = await ensureSamples({
      nodeDir: join(dir, nodes[i]!.dir), workDir: join(dir, 'samples', hospital.slug), plan: samplePlan(init.sampleSize, i, hospital.issuer), signal
    })
    nodes[i]!.samples = loaded.studies
    report(`${hospital.name}: imported ${loaded.instances} instances in ${loaded.studies.length} sample studies`)
  }

  return {
    type: 'beeldnet/local-network',
    directoryFormat: DIRECTORY_FORMAT,
    network,
    created: new Date().toISOString(),
    registry: { dir: 'registry', rootHash: made.rootHash },
    governance: { threshold: init.threshold, members: describeMembers(dir, members) },
    sampleSize: init.sampleSize,
    nodes
  }
}
