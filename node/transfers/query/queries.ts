import type { Logger } from 'pino'
import type { QueryCriteria, QueryResponse } from '../../../protocol/exchange/query.ts'
import { signRequest } from '../../../protocol/exchange/request-signature.ts'
import type { Requester } from '../../../protocol/exchange/requester.ts'
import type { NodeIdentity } from '../../../protocol/identity.ts'
import { PROTOCOLS } from '../../../protocol/p2p/ids.ts'
import type { AuditSink } from '../../audit/audit-log.ts'
import type { P2PHost } from '../../p2p/host.ts'
import type { FramedStreamInit } from '../../p2p/stream-io.ts'
import type { StudyStore } from '../../store/study-store.ts'
import { nodeOfInstitution } from '../institution-nodes.ts'
import { createQueryHandler, queryOverStream } from './query-protocol.ts'

/*
 * Queries both ways: this node's clinicians asking a peer (signed requests), and peers asking
 * this node (answered from its index, each answer in the audit trail by the query handler).
 */

export interface QueriesComponents {
  host: Pick<P2PHost, 'handle' | 'unhandle' | 'dialProtocol' | 'gating' | 'connectedPeers'>
  store: Pick<StudyStore, 'findStudies'>
  identity: NodeIdentity
  logger: Logger
  audit?: AuditSink
  /** this institution's URA, when the directory lists this node */
  ownUra: () => string | undefined
}

export interface Queries {
  start (): Promise<void>
  stop (): Promise<void>
  query (ura: string, criteria: QueryCriteria, requester: Requester, options?: { signal?: AbortSignal }): Promise<QueryResponse>
}

export function createQueries (components: QueriesComponents, stream: FramedStreamInit): Queries {
  const { host, identity } = components
  return {
    async start () {
      await host.handle(PROTOCOLS.query, createQueryHandler({ store: components.store, logger: components.logger, audit: components.audit, ownUra: components.ownUra }, stream))
    },
    async stop () {
      await host.unhandle(PROTOCOLS.query).catch(() => {})
    },
    async query (ura, criteria, requester, { signal } = {}) {
      const request = await signRequest({ type: 'beeldnet/query' as const, requester, criteria }, ura, identity.privateKey)
      const dialled = await host.dialProtocol(nodeOfInstitution(host, identity.peerId, ura), PROTOCOLS.query, { signal })
      return queryOverStream(dialled, request, { ...stream, signal })
    }
  }
}
