import { join } from 'node:path'
import type { Stream } from '@libp2p/interface'
import { buildEnrolment } from '../../../node/directory/enrol.ts'
import { createDataChannel, type DataChannel } from '../../../node/p2p/data-channel.ts'
import type { StudyStore, StudyStoreInit } from '../../../node/store/study-store.ts'
import { createExchange, type Exchange, type ExchangeInit } from '../../../node/transfers/exchange.ts'
import type { Change } from '../../../protocol/registry/documents.ts'
import { silent, type TestNetwork, type TestNode } from '../p2p/p2p-fixtures.ts'
import { openStore } from './helpers.ts'

/*
 * Two real nodes for exchange tests below the whole node: libp2p hosts and directories from the p2p
 * fixtures, a store, a TLS data channel (unless told not to) and an exchange each, the sender
 * admitted as SENDER_URA and the receiver as RECEIVER_URA, each with a radiology department.
 */

export const SENDER_URA = '10000001'
export const RECEIVER_URA = '10000002'

export interface Side {
  node: TestNode
  /** the side's data directory: an exchange started again on it finds its transfers */
  dir: string
  store: StudyStore
  exchange: Exchange
  dataChannel?: DataChannel
  /** bytes this side wrote on data connections it opened */
  dataBytes: { sent: number, connections: number }
}

export interface SideOptions {
  dataChannel?: boolean
  compression?: boolean
  /** replaces the data channel's connect (a firewall, say) */
  connect?: DataChannel['connect']
  queue?: ExchangeInit['queue']
  /** the exchange streams' stall timeout (default stream-io's) */
  stallTimeoutMs?: number
  /** the side's store: its disk space (statfs, reserve, quota) and test seams */
  store?: Omit<StudyStoreInit, 'dir'>
}

async function admit (net: TestNetwork, node: TestNode, ura: string): Promise<Change> {
  return {
    action: 'admit',
    enrolment: await buildEnrolment(node.identity, {
      network: net.gov.root.network, ura, name: `Ziekenhuis ${node.name}`, addresses: [node.address], departments: [{ code: 'RAD', name: 'Radiologie' }]
    })
  }
}

/** Counts what is written on data connections this side opens. */
function counting (channel: DataChannel, dataBytes: Side['dataBytes']): DataChannel {
  const connect = channel.connect.bind(channel)
  channel.connect = async (...args) => {
    const stream: Stream = await connect(...args)
    dataBytes.connections++
    const send = stream.send.bind(stream)
    stream.send = (data) => { dataBytes.sent += data.byteLength; return send(data) }
    return stream
  }
  return channel
}

export function useExchangePairs (network: () => TestNetwork, tempDir: (label: string) => Promise<string>, cleanup: (stop: () => Promise<void>) => void): {
  pair: (senderOptions: SideOptions, receiverOptions: SideOptions) => Promise<{ sender: Side, receiver: Side, net: TestNetwork, v1: ReturnType<TestNetwork['next']> }>
  startExchange: (side: Omit<Side, 'exchange'>, options: SideOptions) => Promise<Exchange>
} {
  const startExchange = async (side: Omit<Side, 'exchange'>, options: SideOptions): Promise<Exchange> => {
    const exchange = createExchange({ host: side.node.host, store: side.store, identity: side.node.identity, logger: silent, dataChannel: side.dataChannel, directory: side.node.directory }, {
      dataDir: side.dir,
      compression: options.compression ?? false,
      queue: options.queue ?? { backoffInitialMs: 100 },
      stream: options.stallTimeoutMs === undefined ? {} : { stallTimeoutMs: options.stallTimeoutMs }
    })
    await exchange.start()
    cleanup(async () => exchange.stop())
    return exchange
  }

  const startSide = async (node: TestNode, options: SideOptions): Promise<Side> => {
    const dir = await tempDir(`exchange-${node.name}`)
    const store = await openStore(join(dir, 'data'), cleanup, options.store)
    const dataBytes = { sent: 0, connections: 0 }
    let dataChannel: DataChannel | undefined
    if (options.dataChannel !== false) {
      const channel = createDataChannel({ privateKey: node.identity.privateKey, peerId: node.peerId, gating: node.host.gating, directory: node.directory, logger: silent }, { host: '127.0.0.1', port: 0 })
      await channel.start()
      cleanup(async () => channel.stop())
      dataChannel = counting(channel, dataBytes)
      if (options.connect !== undefined) dataChannel.connect = options.connect
    }
    const side = { node, dir, store, dataChannel, dataBytes }
    return { ...side, exchange: await startExchange(side, options) }
  }

  const pair = async (senderOptions: SideOptions, receiverOptions: SideOptions): Promise<{ sender: Side, receiver: Side, net: TestNetwork, v1: ReturnType<TestNetwork['next']> }> => {
    const net = network()
    const senderNode = await net.startNode('sender')
    const receiverNode = await net.startNode('receiver')
    const v1 = net.next(undefined, [await admit(net, senderNode, SENDER_URA), await admit(net, receiverNode, RECEIVER_URA)])
    for (const n of [senderNode, receiverNode]) await n.directory.acceptDirectory(v1.envelope, 'test')
    return { sender: await startSide(senderNode, senderOptions), receiver: await startSide(receiverNode, receiverOptions), net, v1 }
  }

  return { pair, startExchange }
}
