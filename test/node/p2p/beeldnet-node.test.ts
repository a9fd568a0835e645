import { describe, expect, it } from 'vitest'
import { BeeldnetNode } from '../../../node/beeldnet-node.ts'
import type { DirectoryUpdate } from '../../../node/directory/directory-service.ts'
import { buildEnrolment } from '../../../node/directory/enrol.ts'
import { createTrustStore, trustDir } from '../../../node/directory/trust-store.ts'
import { initNode } from '../../../node/init.ts'
import type { Change } from '../../../protocol/registry/documents.ts'
import { makeGovernance, nextDirectory } from '../../helpers/registry-fixtures.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { eventually, silent } from './p2p-fixtures.ts'

const tempDir = useTempDirs()

describe('the node runs the p2p host', () => {
  it('listens where the config says, gossips its directory, and /health lists the connected peers', async () => {
    const gov = makeGovernance(2, 3)
    const nodes: BeeldnetNode[] = []
    try {
      for (const name of ['Noord', 'Zuid']) {
        const dataDir = await tempDir(`node-${name}`)
        await initNode(dataDir, { name })
        await createTrustStore({ dir: trustDir(dataDir) }).pinRoot(gov.signedRoot)
        const node = new BeeldnetNode({ dataDir, env: { BEELDNET_HTTP_PORT: '0', BEELDNET_P2P_LISTEN: '/ip4/127.0.0.1/tcp/0' }, logger: silent })
        await node.start()
        nodes.push(node)
      }
      const [noord, zuid] = nodes as [BeeldnetNode, BeeldnetNode]
      const address = (node: BeeldnetNode): string => node.p2p.multiaddrs[0]!.replace(/\/p2p\/[^/]+$/, '')
      const admit = async (node: BeeldnetNode, ura: string): Promise<Change> => ({
        action: 'admit',
        enrolment: await buildEnrolment(node.identity, { network: gov.root.network, ura, name: node.config.node.name, addresses: [address(node)] })
      })
      const v1 = nextDirectory(gov, undefined, [await admit(noord, '10000001'), await admit(zuid, '10000002')])
      const v2 = nextDirectory(gov, v1.signed, [{ action: 'renew' }])
      await noord.directory.acceptDirectory(v1.envelope, 'test')
      await noord.directory.acceptDirectory(v2.envelope, 'test')
      await zuid.directory.acceptDirectory(v1.envelope, 'test')
      const updates: DirectoryUpdate[] = []
      zuid.directory.on('update', (u) => updates.push(u))

      // Zuid connects (for a protocol nobody serves): the connection alone brings it Noord's v2
      await expect(zuid.p2p.dialProtocol(noord.identity.peerId, '/beeldnet-test/none/1.0.0')).rejects.toMatchObject({ code: 'BEELDNET_ERR_PROTOCOL_UNSUPPORTED' })
      await eventually(updates, (u) => u.current.version === 2, 'Zuid adopts v2 from Noord')
      expect(updates[0]!.source).toBe(`peer:${noord.identity.peerId}`)

      const health = await (await fetch(`${noord.url}/health`)).json() as { p2p: unknown }
      expect(health.p2p).toMatchObject({
        running: true,
        peerId: noord.identity.peerId,
        listening: [expect.stringMatching(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)],
        peers: [{ peerId: zuid.identity.peerId, ura: '10000002', name: 'Zuid', connections: 1 }],
        refusals: []
      })
    } finally {
      for (const node of nodes.reverse()) await node.stop()
    }
  })
})
