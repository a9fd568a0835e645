import { EventEmitter } from 'node:events'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { PullAnswer } from '../../protocol/exchange/pull.ts'
import type { QueryCriteria, QueryResponse } from '../../protocol/exchange/query.ts'
import type { Requester } from '../../protocol/exchange/requester.ts'
import type { NodeIdentity } from '../../protocol/identity.ts'
import type { Institution } from '../../protocol/registry/documents.ts'
import type { AuditPerson, AuditSink } from '../audit/audit-log.ts'
import { createLifecycle, type Lifecycle } from '../lifecycle.ts'
import type { DataChannel } from '../p2p/data-channel.ts'
import type { P2PHost } from '../p2p/host.ts'
import type { FramedStreamInit } from '../p2p/stream-io.ts'
import type { PullRule } from '../policy/pull-policy.ts'
import type { ApprovalRecord, PolicyStore, PullMade } from '../policy/policy-store.ts'
import type { StudyStore } from '../store/study-store.ts'
import { NotEnrolledError } from './errors.ts'
import type { ExchangeEvents, TransferEvents } from './events.ts'
import { createPulls, type PullRequestInput, type Pulls } from './pull/pulls.ts'
import { createQueries, type Queries } from './query/queries.ts'
import type { IncomingTransfers } from './receive/incoming.ts'
import { createReceiving, type Receiving } from './receive/receiving.ts'
import type { TransferQueue, TransferQueueInit } from './send/queue.ts'
import { createSending, type SendRequest, type Sending } from './send/sending.ts'
import { createTransferStore, type IncomingRecord, type OutgoingRecord, type TransferStore } from './transfer-store.ts'

export type { SendRequest } from './send/sending.ts'

/*
 * The node's side of the exchange: one transfer store and the four operations on it, each in its
 * own folder with its wire protocol and its audit records: send (queue, push sender), receive
 * (receive sessions, push handler), pull and query. Every transfer event of both directions is
 * re-emitted here for the API, the CLI and metrics.
 */

export interface ExchangeComponents {
  host: P2PHost
  /** directory updates: transfers to peers no longer admitted end at once, connected or not */
  directory?: { on: (event: 'update', listener: () => void) => unknown, off: (event: 'update', listener: () => void) => unknown }
  store: StudyStore
  identity: NodeIdentity
  logger: Logger
  /** the NEN 7513 trail: sends, receipts, receipts signed here, queries and pulls (optional) */
  audit?: AuditSink
  /** consent records and the approval queue of pulls (optional: without it nobody has consented, and queued pulls are not kept) */
  policyStore?: PolicyStore
  /** the TLS data channel for instance bytes (optional: without it they go over the push stream) */
  dataChannel?: DataChannel
}

export interface ExchangeInit {
  /** the node's data directory: transfers live in <dataDir>/transfers */
  dataDir: string
  /** concurrency, retries and backoff of outgoing transfers (defaults in send/queue.ts) */
  queue?: TransferQueueInit
  /** who may pull studies from this node (default []: nobody) */
  pullRules?: PullRule[]
  /** studies of one patient to one institution per day before a send needs confirmBulk (default 3) */
  bulkPatientLimit?: number
  /** framing limits and stall timeout of exchange streams (defaults in p2p/stream-io.ts) */
  stream?: FramedStreamInit
  /** zstd wire compression of uncompressed pixel data, offered and accepted (default false) */
  compression?: boolean
}

export interface Exchange extends EventEmitter<ExchangeEvents> {
  readonly transfers: TransferStore
  readonly queue: TransferQueue
  readonly incoming: IncomingTransfers
  start (): Promise<void>
  stop (): Promise<void>
  /** the institution this node speaks for, from the directory */
  self (): { ura: string, name: string, departments: Institution['departments'] }
  send (request: SendRequest, options?: { signal?: AbortSignal }): Promise<OutgoingRecord>
  query (ura: string, criteria: QueryCriteria, requester: Requester, options?: { signal?: AbortSignal }): Promise<QueryResponse>
  pull (ura: string, request: PullRequestInput, options?: { signal?: AbortSignal }): Promise<PullAnswer>
  list (): Promise<{ outgoing: OutgoingRecord[], incoming: IncomingRecord[] }>
  /** the pulls this node asked of others, newest first, with what was decided */
  pullsMade (): Promise<PullMade[]>
  /** a queued pull approved by `by` here: the study is pushed to the requester */
  approvePull (requestId: string, by: AuditPerson): Promise<ApprovalRecord>
  /** a queued pull refused by `by` here, with the reason */
  refusePull (requestId: string, by: AuditPerson, reason: string): Promise<ApprovalRecord>
}

const FORWARDED_EVENTS = ['state', 'progress', 'report-arrived', 'study-complete', 'transfer-failed'] as const

class DefaultExchange extends EventEmitter<ExchangeEvents> implements Exchange {
  readonly transfers: TransferStore
  private readonly host: P2PHost
  private readonly identity: NodeIdentity
  private readonly sending: Sending
  private readonly receiving: Receiving
  private readonly queries: Queries
  private readonly pulls: Pulls
  private readonly parts: Lifecycle
  private readonly store: StudyStore

  constructor (components: ExchangeComponents, init: ExchangeInit) {
    super()
    const { host, store, identity, audit } = components
    this.host = host
    this.store = store
    this.identity = identity
    const logger = components.logger.child({ component: 'exchange' })
    const stream = init.stream ?? {}
    const ownUra = (): string | undefined => host.institutionOf(identity.peerId)?.ura
    this.transfers = createTransferStore({ dir: join(init.dataDir, 'transfers') })
    const transfers = this.transfers
    const { dataChannel } = components
    this.sending = createSending({ host, dataChannel, directory: components.directory, store, identity, logger, transfers, audit, self: () => this.self() }, { queue: init.queue, stream, bulkPatientLimit: init.bulkPatientLimit, compression: init.compression })
    this.receiving = createReceiving({ host, dataChannel, store, identity, logger, transfers, audit, ura: () => this.self().ura, onCommitted: (e) => { this.emit('study-complete', e) } }, { stream, compression: init.compression })
    this.queries = createQueries({ host, store, identity, logger, audit, ownUra }, stream)
    this.pulls = createPulls({
      host, store, identity, logger, audit,
      policyStore: components.policyStore,
      send: async (request) => this.send(request),
      self: () => this.self(),
      ownUra,
      onDecided: (decided) => { this.emit('pull-decided', decided) }
    }, { pullRules: init.pullRules, stream })
    this.forward(this.sending.queue, FORWARDED_EVENTS)
    // An incoming study is announced by receiving, once it is in the audit trail.
    this.forward(this.receiving.incoming, FORWARDED_EVENTS.filter((name) => name !== 'study-complete'))
    // One lifecycle inside too: a queue that cannot resume must not leave the transfer database open.
    this.parts = createLifecycle({ logger }, {
      parts: [
        { name: 'transfer store', part: this.transfers },
        { name: 'receiving', part: this.receiving },
        { name: 'sending', part: this.sending },
        { name: 'queries', part: this.queries },
        { name: 'pulls', part: this.pulls }
      ]
    })
  }

  get queue (): TransferQueue { return this.sending.queue }
  get incoming (): IncomingTransfers { return this.receiving.incoming }

  private forward (source: EventEmitter<TransferEvents>, names: readonly string[]): void {
    for (const name of names) source.on(name as keyof TransferEvents, (...args: unknown[]) => { (this.emit as (n: string, ...a: unknown[]) => boolean)(name, ...args) })
  }

  async start (): Promise<void> {
    await this.parts.start()
  }

  async stop (): Promise<void> {
    await this.parts.stop()
  }

  self (): { ura: string, name: string, departments: Institution['departments'] } {
    const entry = this.host.institutionOf(this.identity.peerId)
    if (entry === undefined) throw new NotEnrolledError(this.identity.peerId)
    return { ura: entry.ura, name: entry.institution.name, departments: entry.institution.departments }
  }

  async send (request: SendRequest, options: { signal?: AbortSignal } = {}): Promise<OutgoingRecord> {
    return this.sending.send(request, options)
  }

  async query (ura: string, criteria: QueryCriteria, requester: Requester, options: { signal?: AbortSignal } = {}): Promise<QueryResponse> {
    this.self()
    return this.queries.query(ura, criteria, requester, options)
  }

  async pull (ura: string, request: PullRequestInput, options: { signal?: AbortSignal } = {}): Promise<PullAnswer> {
    // A node that refuses every offer now does not ask for one: the person pulling hears why at once.
    // (The study's size is the source's to say: the push it answers with is admitted as any other.)
    await this.store.space.admit(0, `a pull of study ${request.studyInstanceUID}`, 'pull')
    return this.pulls.pull(ura, request, options)
  }

  async list (): Promise<{ outgoing: OutgoingRecord[], incoming: IncomingRecord[] }> {
    return { outgoing: await this.queue.list(), incoming: await this.incoming.list() }
  }

  async pullsMade (): Promise<PullMade[]> {
    return this.pulls.pullsMade()
  }

  async approvePull (requestId: string, by: AuditPerson): Promise<ApprovalRecord> {
    return this.pulls.approvePull(requestId, by)
  }

  async refusePull (requestId: string, by: AuditPerson, reason: string): Promise<ApprovalRecord> {
    return this.pulls.refusePull(requestId, by, reason)
  }
}

export function createExchange (components: ExchangeComponents, init: ExchangeInit): Exchange {
  return new DefaultExchange(components, init)
}
