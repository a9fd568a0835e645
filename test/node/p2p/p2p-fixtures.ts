import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Stream } from '@libp2p/interface'
import { pino } from 'pino'
import { afterEach } from 'vitest'
import type { NodeIdentity } from '../../../protocol/identity.ts'
import type { Change, Directory, SignedDirectory } from '../../../protocol/registry/documents.ts'
import { createDirectoryService, type DirectoryAlarm, type DirectoryService, type DirectoryUpdate } from '../../../node/directory/directory-service.ts'
import { buildEnrolment } from '../../../node/directory/enrol.ts'
import { createTrustStore } from '../../../node/directory/trust-store.ts'
import { createP2PHost, type P2PHost, type P2PHostInit, type RemotePeer } from '../../../node/p2p/host.ts'
import { createDirectoryGossip, type DirectoryExchange, type DirectoryGossip, type DirectoryGossipInit } from '../../../node/p2p/gossip.ts'
import { makeGovernance, nextDirectory, type TestGovernance } from '../../helpers/registry-fixtures.ts'
import { until } from '../../helpers/patience.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

/*
 * Real nodes on loopback for the p2p suites: each has its own identity, trust store (root pinned),
 * directory service and libp2p host, started and listening, so the directory can list its address.
 * Directories are built and signed by a test governance and handed to each node's directory service
 * as a file from anywhere would be. Everything started is stopped after each test.
 */

export const silent = pino({ level: 'silent' })

export interface TestNode {
  name: string
  identity: NodeIdentity
  peerId: string
  /** the listen address, without /p2p/<id>, as the directory lists it */
  address: string
  trustDir: string
  directory: DirectoryService
  host: P2PHost
  gossip: DirectoryGossip | undefined
  updates: DirectoryUpdate[]
  alarms: DirectoryAlarm[]
  exchanges: DirectoryExchange[]
  /** resolves with the next inbound stream of `protocol` (registers a handler that parks streams) */
  nextInbound: (protocol: string) => Promise<{ stream: Stream, peer: RemotePeer }>
  /** inbound streams `protocol` handlers have seen */
  inboundCount: (protocol: string) => number
}

export interface NodeOptions {
  gossip?: boolean | DirectoryGossipInit
  host?: P2PHostInit
  /** a registry the directory service may refresh from (it never polls by itself here) */
  registryUrl?: string
}

export interface TestNetwork {
  gov: TestGovernance
  startNode: (name: string, options?: NodeOptions) => Promise<TestNode>
  /** the change that admits `node` as institution `ura` */
  admit: (node: TestNode, ura: string) => Promise<Change>
  /** builds and signs the version after `current` */
  next: (current: Directory | undefined, changes: Change[]) => { signed: Directory, envelope: SignedDirectory, hash: string }
}

export function useP2PNetwork (): () => TestNetwork {
  const tempDir = useTempDirs()
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  return () => {
    const gov = makeGovernance(2, 3)

    const startNode = async (name: string, options: NodeOptions = {}): Promise<TestNode> => {
      const privateKey = await generateKeyPair('Ed25519')
      const identity: NodeIdentity = { privateKey, peerId: peerIdFromPrivateKey(privateKey).toString() }
      const trustDir = join(await tempDir(`p2p-${name}`), 'trust')
      const trustStore = createTrustStore({ dir: trustDir })
      await trustStore.pinRoot(gov.signedRoot)
      const directory = createDirectoryService({ trustStore, logger: silent }, { pollIntervalSeconds: 0, registryUrl: options.registryUrl })
      await directory.start()
      cleanups.push(() => directory.stop())
      const updates: DirectoryUpdate[] = []
      const alarms: DirectoryAlarm[] = []
      directory.on('update', (u) => updates.push(u))
      directory.on('alarm', (a) => alarms.push(a))

      const host = createP2PHost({ identity, directory, logger: silent }, options.host)
      const exchanges: DirectoryExchange[] = []
      let gossip: DirectoryGossip | undefined
      if (options.gossip !== undefined && options.gossip !== false) {
        gossip = createDirectoryGossip({ host, directory, logger: silent }, options.gossip === true ? {} : options.gossip)
        gossip.on('exchange', (e) => exchanges.push(e))
        await gossip.start()
      }
      await host.start()
      cleanups.push(async () => {
        await gossip?.stop()
        await host.stop()
      })

      const counts = new Map<string, number>()
      const waiting = new Map<string, Array<(value: { stream: Stream, peer: RemotePeer }) => void>>()
      const parked = new Map<string, Array<{ stream: Stream, peer: RemotePeer }>>()
      const handled = new Set<string>()
      const nextInbound = async (protocol: string): Promise<{ stream: Stream, peer: RemotePeer }> => {
        if (!handled.has(protocol)) {
          handled.add(protocol)
          await host.handle(protocol, (stream, peer) => {
            counts.set(protocol, (counts.get(protocol) ?? 0) + 1)
            const waiter = waiting.get(protocol)?.shift()
            if (waiter !== undefined) waiter({ stream, peer })
            else parked.set(protocol, [...(parked.get(protocol) ?? []), { stream, peer }])
          })
        }
        const ready = parked.get(protocol)?.shift()
        if (ready !== undefined) return ready
        return new Promise((resolve) => waiting.set(protocol, [...(waiting.get(protocol) ?? []), resolve]))
      }

      const address = host.multiaddrs[0]!.replace(/\/p2p\/[^/]+$/, '')
      return {
        name,
        identity,
        peerId: identity.peerId,
        address,
        trustDir,
        directory,
        host,
        gossip,
        updates,
        alarms,
        exchanges,
        nextInbound,
        inboundCount: (protocol) => counts.get(protocol) ?? 0
      }
    }

    const admit = async (node: TestNode, ura: string): Promise<Change> => ({
      action: 'admit',
      enrolment: await buildEnrolment(node.identity, { network: gov.root.network, ura, name: `Ziekenhuis ${node.name}`, addresses: [node.address] })
    })

    const next = (current: Directory | undefined, changes: Change[]): ReturnType<TestNetwork['next']> => nextDirectory(gov, current, changes)

    return { gov, startNode, admit, next }
  }
}

/** Resolves with the first value recorded in `seen` for which `predicate` holds, waiting for it if need be. */
export async function eventually<T> (seen: T[], predicate: (value: T) => boolean, what: string): Promise<T> {
  await until(() => seen.some(predicate), what)
  return seen.find(predicate)!
}
