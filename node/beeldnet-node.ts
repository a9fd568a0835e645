import type { FastifyInstance } from 'fastify'
import { pino, type Logger } from 'pino'
import { loadIdentityFile, type NodeIdentity } from '../protocol/identity.ts'
import { createHttpServer } from './api/http-server.ts'
import { loadConfig, type NodeConfig } from './config/config.ts'
import { nodePaths } from './paths.ts'
import { StudyStore, type DuplicateEvent } from './store/study-store.ts'
import { stat } from 'node:fs/promises'
import { NotInitialisedError } from './errors.ts'
import { createDirectoryService, type DirectoryService } from './directory/directory-service.ts'
import { createTrustStore, trustDir } from './directory/trust-store.ts'
import { createDataChannel, dataChannelHost, type DataChannel } from './p2p/data-channel.ts'
import { createP2PHost, type P2PHost } from './p2p/host.ts'
import { createDirectoryGossip } from './p2p/gossip.ts'
import { countRefusals, countTransfers, createMetrics, type NodeMetrics } from './api/metrics.ts'
import { createExchange, type Exchange } from './transfers/exchange.ts'
import { createDimseService, type DimseService } from './dimse/dimse-service.ts'
import { createPacsForwarding, type PacsForwarding } from './reconcile/forwarding.ts'
import { createRouter } from './routing/router.ts'
import { AuditLog } from './audit/audit-log.ts'
import { SyslogExporter } from './audit/syslog-export.ts'
import { PolicyStore } from './policy/policy-store.ts'
import { recordPolicyInForce } from './policy/policy-in-force.ts'
import { createRetentionSweep } from './retention.ts'
import { explainListenFailure, listenerOf } from './listen-failure.ts'
import { createLifecycle, madeAtStart, startOnly, type Lifecycle, type Startable } from './lifecycle.ts'
import { UserStore } from './users/user-store.ts'
import { ensureCliToken } from './users/cli-token.ts'
import { MappingTableLookup, noLookup } from './reconcile/patient-lookup.ts'
import { isAbsolute, join } from 'node:path'
import { createShareStore, type ShareStore } from './shares/share-store.ts'
import { createShares, type Shares } from './shares/shares.ts'
import { createDeidentifiedPushes, type DeidentifiedPushes } from './deidentify/deidentified-push.ts'

export interface BeeldnetNodeInit {
  dataDir: string
  /** environment for config overrides (default process.env) */
  env?: NodeJS.ProcessEnv
  /** where logs go (default: pino to stdout at the configured level) */
  logger?: Logger
  /**
   * For tests only: runs before each part's start; throwing makes that part fail to start, so a test
   * can check what a failed start leaves behind for parts that cannot be made to fail from outside.
   */
  beforePartStart?: (part: NodePartName) => void | Promise<void>
}

/** The node's long-lived parts, in the order they start (they stop in reverse). */
export type NodePartName = 'store' | 'audit trail' | 'syslog export' | 'directory' | 'gossip' | 'p2p host' | 'data channel' | 'policy store' | 'policy in force' | 'exchange' | 'deidentified pushes' | 'pacs exports' | 'shares' | 'http' | 'dimse' | 'retention'

interface NodePart { name: NodePartName, part: Startable }

/**
 * The long-running node: store, audit trail, the verified directory, the libp2p host, the exchange,
 * the HTTP server, DIMSE and the retention sweep, started and stopped as one lifecycle (lifecycle.ts).
 */
export class BeeldnetNode {
  readonly dataDir: string
  private readonly env: NodeJS.ProcessEnv
  private readonly givenLogger: Logger | undefined
  private readonly beforePartStart: BeeldnetNodeInit['beforePartStart']
  private lifecycle: Lifecycle | undefined
  config!: NodeConfig
  identity!: NodeIdentity
  store!: StudyStore
  /** what the node trusts: root and directory, refreshed from the registry */
  directory!: DirectoryService
  /** libp2p: only peers the directory admits connect */
  p2p!: P2PHost
  /** send, receive, query and pull studies with peers */
  exchange!: Exchange
  /** the TLS data channel for instance bytes (p2p.dataChannel: tls) */
  dataChannel: DataChannel | undefined
  metrics!: NodeMetrics
  logger!: Logger
  private http: FastifyInstance | undefined
  /** the DICOM (DIMSE) service for the PACS, when dimse.enabled */
  dimse: DimseService | undefined
  /** received studies into the local PACS, reconciled, through the export queue */
  pacs!: PacsForwarding
  /** the NEN 7513 audit trail (<data-dir>/audit/trail.jsonl) */
  audit!: AuditLog
  /** consent records and pulls waiting for approval */
  policyStore!: PolicyStore
  /** patients' share links (<data-dir>/shares) */
  shares!: Shares
  /** de-identified pushes: their records and UID maps (<data-dir>/deidentified), derived studies removed once sent */
  deidentifiedPushes!: DeidentifiedPushes

  constructor (init: BeeldnetNodeInit) {
    this.dataDir = init.dataDir
    this.env = init.env ?? process.env
    this.givenLogger = init.logger
    this.beforePartStart = init.beforePartStart
  }

  /** Starts every part in order; if one fails, the ones started before it are stopped and its error is thrown. */
  async start (signal?: AbortSignal): Promise<void> {
    // Started (or starting) already: the same start.
    if (this.lifecycle !== undefined) {
      await this.lifecycle.start(signal)
      return
    }
    const paths = nodePaths(this.dataDir)
    if (!await stat(paths.config).then(() => true, () => false)) throw new NotInitialisedError(this.dataDir)
    this.config = await loadConfig(paths.config, this.env)
    this.logger = this.givenLogger ?? pino({ level: this.config.log.level, base: { node: this.config.node.name } })
    this.identity = await loadIdentityFile(paths.identity)
    const parts = this.parts()
    const hook = this.beforePartStart
    const lifecycle = createLifecycle({ logger: this.logger }, { parts: hook === undefined ? parts : parts.map((p) => withHook(p, hook)) })
    this.lifecycle = lifecycle
    try {
      await lifecycle.start(signal)
    } catch (err) {
      // What had started is stopped again: the node is as it was before start, and may start again.
      if (this.lifecycle === lifecycle) this.lifecycle = undefined
      throw err
    }
    this.logger.info({ url: this.url, peerId: this.identity.peerId, p2p: this.p2p.multiaddrs }, 'node started')
  }

  /**
   * Every long-lived part in dependency order, each made when its turn to start comes (madeAtStart):
   * it may use the ones before it, and nothing after a part that failed is ever made.
   */
  private parts (): NodePart[] {
    const paths = nodePaths(this.dataDir)
    const config = this.config
    const part = (name: NodePartName, make: () => Startable): NodePart => ({ name, part: madeAtStart(make) })
    const parts: NodePart[] = []
    this.dimse = undefined
    parts.push(part('store', () => {
      this.store = new StudyStore({
        dir: paths.data,
        duplicates: config.store.duplicates,
        onDuplicate: (e) => { void this.recordDuplicate(e) },
        space: { minFreeBytes: config.store.minFreeBytes, maxBytes: config.store.maxBytes }
      })
      this.store.space.on('refused', (r) => { this.logger.warn({ code: r.code, route: r.route, neededBytes: r.neededBytes, reason: r.message }, 'refused: the store is full') })
      return this.store
    }))
    parts.push(part('audit trail', () => {
      this.audit = new AuditLog(paths.auditTrail)
      return this.audit
    }))
    if (config.audit.syslog !== '') parts.push(part('syslog export', () => this.createSyslogExporter()))
    // Holds nothing until a root is pinned (beeldnet node enrol); polls only with a registry or mirrors.
    parts.push(part('directory', () => {
      this.directory = createDirectoryService({ trustStore: createTrustStore({ dir: trustDir(this.dataDir) }), logger: this.logger }, {
        registryUrl: config.registry.url,
        mirrors: config.registry.mirrors,
        pollIntervalSeconds: config.registry.pollIntervalSeconds
      })
      return this.directory
    }))
    // After the directory: gating and peer addresses come from it. The host is made with gossip, which
    // registers on it before it listens (the next part).
    parts.push(part('gossip', () => {
      this.p2p = createP2PHost({ identity: this.identity, directory: this.directory, logger: this.logger }, {
        listen: config.p2p.listen,
        announce: config.p2p.announce,
        maxStreamWindowSize: config.p2p.streamWindowBytes,
        inboundConnectionsPerSecond: config.p2p.inboundConnectionsPerSecond
      })
      return createDirectoryGossip({ host: this.p2p, directory: this.directory, logger: this.logger })
    }))
    parts.push(part('p2p host', () => listenerOf(this.p2p, 'p2p.listen', config.p2p.listen.join(', '))))
    if (config.p2p.dataChannel === 'tls') {
      parts.push(part('data channel', () => {
        const host = dataChannelHost(config.p2p.listen)
        this.dataChannel = createDataChannel({ privateKey: this.identity.privateKey, peerId: this.identity.peerId, gating: this.p2p.gating, directory: this.directory, logger: this.logger.child({ component: 'data-channel' }) }, {
          host,
          port: config.p2p.dataPort,
          timeoutMs: config.transfers.stallTimeoutSeconds * 1000
        })
        return listenerOf(this.dataChannel, 'p2p.dataPort', `${host}:${config.p2p.dataPort}`)
      }))
    }
    // After the host: the queue resumes interrupted transfers at once.
    parts.push(part('policy store', () => {
      this.policyStore = new PolicyStore(join(this.dataDir, 'policy'))
      return this.policyStore
    }))
    parts.push(part('policy in force', () => startOnly(async () => {
      await recordPolicyInForce(this.policyStore, this.audit, { pull: config.policy.pull, bulkPatientLimit: config.transfers.bulkPatientLimit }, `the config file ${paths.config}`)
    })))
    parts.push(part('exchange', () => {
      this.exchange = this.createExchange()
      return this.exchange
    }))
    // After the exchange (its transfers end the derived studies), before http (which queues them).
    parts.push(part('deidentified pushes', () => {
      this.deidentifiedPushes = createDeidentifiedPushes({
        store: this.store,
        exchange: this.exchange,
        kindOf: (ura) => this.directory.directory?.institutions.find((i) => i.ura === ura)?.kind,
        audit: this.audit,
        logger: this.logger.child({ component: 'deidentified-push' })
      }, { dir: paths.deidentified })
      return this.deidentifiedPushes
    }))
    // After the exchange (it says when a study has arrived), before http (which queues exports):
    // resumes the exports a stop or crash left queued.
    parts.push(part('pacs exports', () => {
      this.pacs = this.createPacsForwarding()
      return this.pacs
    }))
    // Before http, which serves them: the links outlive restarts, their sessions do not.
    parts.push(part('shares', () => {
      const store: ShareStore = createShareStore(join(this.dataDir, 'shares'))
      this.shares = createShares({ store, studyRecord: async (uid) => this.store.getStudyRecord(uid), audit: this.audit })
      return store
    }))
    parts.push(part('http', () => {
      this.metrics = this.createMetrics()
      const users = new UserStore(paths.users)
      const app = createHttpServer({ store: this.store, logger: this.logger, directory: this.directory, p2p: this.p2p, exchange: this.exchange, metrics: this.metrics, pacs: this.pacs, audit: this.audit, policyStore: this.policyStore, users, config, shares: this.shares, deidentifiedPushes: this.deidentifiedPushes }, { nodeName: config.node.name, peerId: this.identity.peerId, trustProxy: config.http.trustProxy, thumbnailCacheDir: this.thumbnailCacheDir(), shares: config.shares })
      this.http = app
      return {
        async start () {
          // The token the CLI on this machine calls the API with, before anyone can call it.
          await ensureCliToken(users, paths.cliToken)
          await listenOrClose(app, { host: config.http.host, port: config.http.port }).catch((err: unknown) => {
            throw explainListenFailure(err, 'http.port', `${config.http.host}:${config.http.port}`)
          })
        },
        async stop () { await app.close() }
      }
    }))
    if (config.dimse.enabled) {
      parts.push(part('dimse', () => {
        const router = createRouter({ store: this.store, exchange: this.exchange, logger: this.logger }, config.routing.rules)
        const routedTitles = config.routing.rules.map((r) => r.calledAeTitle).filter((t): t is string => t !== undefined)
        this.dimse = createDimseService({ store: this.store, logger: this.logger, audit: this.audit, onStudiesStored: (batch) => { void router.studiesStored(batch) } }, config.dimse, routedTitles)
        return listenerOf(this.dimse, 'dimse.port', `${config.dimse.host}:${config.dimse.port}`)
      }))
    }
    parts.push(part('retention', () => createRetentionSweep({ store: this.store, exchange: this.exchange, logger: this.logger }, {
      retentionDays: config.store.retentionDays, intervalMinutes: config.store.retentionIntervalMinutes, thumbnailCacheDir: this.thumbnailCacheDir()
    })))
    return parts
  }

  /** Ships every audit record to the hospital's audit repository (audit.syslog). */
  private createSyslogExporter (): SyslogExporter {
    const syslog = this.config.audit.syslog
    const at = syslog.lastIndexOf(':')
    const exporter = new SyslogExporter({
      trailPath: this.audit.path,
      cursorPath: join(this.dataDir, 'audit', 'syslog-cursor'),
      host: syslog.slice(0, at).replace(/^\[|\]$/g, ''),
      port: Number(syslog.slice(at + 1)),
      source: { id: this.identity.peerId, nodeName: this.config.node.name },
      logger: this.logger.child({ component: 'audit-export' })
    })
    this.audit.onRecord(() => { exporter.poke() })
    return exporter
  }

  private createExchange (): Exchange {
    const config = this.config
    const exchange = createExchange({ host: this.p2p, dataChannel: this.dataChannel, directory: this.directory, store: this.store, identity: this.identity, logger: this.logger, audit: this.audit, policyStore: this.policyStore }, {
      dataDir: this.dataDir,
      compression: config.transfers.compression === 'zstd',
      queue: { concurrency: config.transfers.concurrency, perPeerConcurrency: config.transfers.perPeerConcurrency, retryForMs: config.transfers.retryForHours * 3_600_000, backoffMaxMs: config.transfers.retryPauseMaxSeconds * 1000 },
      stream: { stallTimeoutMs: config.transfers.stallTimeoutSeconds * 1000 },
      pullRules: config.policy.pull,
      bulkPatientLimit: config.transfers.bulkPatientLimit
    })
    if (config.transfers.maxAttempts !== undefined) this.logger.warn('transfers.maxAttempts has no effect any more: a failing transfer is retried for transfers.retryForHours (default 24); remove the setting')
    // The notifications people act on, in the log until the web app shows them.
    exchange.on('report-arrived', (e) => { this.logger.info({ transferId: e.transferId, direction: e.direction, study: e.studyInstanceUID, reports: e.reports.length }, 'report arrived') })
    exchange.on('study-complete', (e) => { this.logger.info({ transferId: e.transferId, direction: e.direction, study: e.studyInstanceUID }, 'study complete') })
    exchange.on('transfer-failed', (e) => { this.logger.warn({ transferId: e.transferId, direction: e.direction, study: e.studyInstanceUID, code: e.error.code, reason: e.error.message }, 'transfer failed') })
    return exchange
  }

  private createPacsForwarding (): PacsForwarding {
    const mappingFile = this.config.pacs.mappingFile
    const pacs = createPacsForwarding({
      store: this.store,
      lookup: mappingFile === '' ? noLookup : new MappingTableLookup(isAbsolute(mappingFile) ? mappingFile : join(this.dataDir, mappingFile)),
      logger: this.logger,
      audit: this.audit,
      sourceOf: async (uid) => this.senderOf(uid)
    }, {
      dimse: this.config.dimse,
      pacs: this.config.pacs,
      exportsDir: join(this.dataDir, 'exports'),
      queue: { maxAttempts: this.config.pacs.exportMaxAttempts, backoffInitialMs: this.config.pacs.exportBackoffSeconds * 1000, backoffMaxMs: this.config.pacs.exportBackoffMaxSeconds * 1000 }
    })
    // Announced by the exchange once the study's arrival is in the audit trail.
    this.exchange.on('study-complete', (e) => {
      if (e.direction === 'incoming') pacs.studyArrived(e.studyInstanceUID, this.p2p.institutionOf(e.peerId)?.institution.name ?? e.peerId)
    })
    return pacs
  }

  private createMetrics (): NodeMetrics {
    const metrics = createMetrics({
      directory: () => { const s = this.directory.status(); return { version: s.directoryVersion, ageSeconds: s.ageSeconds } },
      peersConnected: () => this.p2p.connectedPeers().length,
      gatingRefusals: () => this.p2p.gating.refusals(),
      transfersByState: async () => {
        const { outgoing, incoming } = await this.exchange.list()
        const counts = new Map<string, { direction: string, state: string, count: number }>()
        for (const r of [...outgoing, ...incoming]) {
          const key = `${r.direction}/${r.state}`
          const entry = counts.get(key) ?? { direction: r.direction, state: r.state, count: 0 }
          entry.count++
          counts.set(key, entry)
        }
        return [...counts.values()]
      },
      exportsByState: async () => [...Map.groupBy(await this.pacs.exports.list(), (e) => e.state)].map(([state, list]) => ({ state, count: list.length }))
    })
    countTransfers(metrics, this.exchange)
    countRefusals(metrics, this.store.space)
    return metrics
  }

  /** A copy of a held instance, kept, replaced or refused (store.duplicates): in the log, and in the trail for the patient. */
  private async recordDuplicate (e: DuplicateEvent): Promise<void> {
    const fields = { study: e.studyInstanceUID, sopInstanceUID: e.sopInstanceUID, kind: e.kind, why: e.why, origin: e.origin, transferSyntaxUID: e.transferSyntaxUID, heldTransferSyntaxUID: e.heldTransferSyntaxUID }
    if (e.action === 'kept') this.logger.info(fields, 'a copy of a held instance arrived: the stored copy is kept')
    else if (e.action === 'replaced') this.logger.warn(fields, 'a copy of a held instance replaced the stored copy')
    else this.logger.warn(fields, 'a copy of a held instance was refused: it conflicts with the stored copy')
    try {
      await this.audit.record({
        event: 'store-duplicate',
        outcome: `${e.action} (${e.kind})`,
        patient: e.patient,
        user: { system: e.origin ?? 'this node' },
        studyInstanceUID: e.studyInstanceUID,
        details: { sopInstanceUID: e.sopInstanceUID, transferSyntaxUID: e.transferSyntaxUID, heldTransferSyntaxUID: e.heldTransferSyntaxUID, ...(e.why === undefined ? {} : { why: e.why }) }
      })
    } catch (err) {
      this.logger.error({ err, study: e.studyInstanceUID }, 'the audit trail did not take a duplicate instance')
    }
  }

  /** The institution a study came from (its latest incoming transfer), for Source of Previous Values. */
  private async senderOf (studyInstanceUID: string): Promise<string> {
    const incoming = (await this.exchange.incoming.list()).filter((r) => r.studyInstanceUID === studyInstanceUID)
    const latest = incoming.at(-1)
    if (latest === undefined) return 'unknown (not received from a peer)'
    return this.p2p.institutionOf(latest.peerId)?.institution.name ?? `URA ${latest.senderUra}`
  }

  /** http://host:port the server actually listens on (port 0 in config picks a free one). */
  get url (): string {
    const address = this.http?.server.address()
    if (address === null || address === undefined || typeof address === 'string') throw new Error('the node is not listening')
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
    return `http://${host}:${address.port}`
  }

  private thumbnailCacheDir (): string {
    return join(this.dataDir, 'cache', 'thumbnails')
  }

  /** Stops the running parts in reverse order (after a start under way); safe to call again, before start and after a failed start. */
  async stop (): Promise<void> {
    const lifecycle = this.lifecycle
    if (lifecycle === undefined) return
    this.lifecycle = undefined
    await lifecycle.stop()
    this.logger.info('node stopped')
  }
}

/** The part with `hook` run before its start (BeeldnetNodeInit.beforePartStart). */
function withHook ({ name, part }: NodePart, hook: (part: NodePartName) => void | Promise<void>): NodePart {
  return {
    name,
    part: {
      async start (signal) {
        await hook(name)
        await part.start(signal)
      },
      async stop () { await part.stop() }
    }
  }
}

/** Listens, or closes the server it could not listen with: a failed start leaves nothing open. */
async function listenOrClose (app: FastifyInstance, options: { host: string, port: number }): Promise<void> {
  try {
    await app.listen(options)
  } catch (err) {
    await app.close().catch((closeErr: unknown) => { app.log.error({ err: closeErr }, 'the HTTP server did not close after failing to listen') })
    throw err
  }
}
