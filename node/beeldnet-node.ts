import type { FastifyInstance } from 'fastify'
import { pino, type Logger } from 'pino'
import { loadIdentityFile, type NodeIdentity } from '../protocol/identity.ts'
import { createHttpServer } from './api/http-server.ts'
import { loadConfig, type NodeConfig } from './config/config.ts'
import { nodePaths } from './paths.ts'
import { StudyStore } from './store/study-store.ts'
import { stat } from 'node:fs/promises'
import { NotInitialisedError } from './errors.ts'
import { createDirectoryService, type DirectoryService } from './directory/directory-service.ts'
import { createTrustStore, trustDir } from './directory/trust-store.ts'
import { createP2PHost, type P2PHost } from './p2p/host.ts'
import { createDirectoryGossip, type DirectoryGossip } from './p2p/gossip.ts'
import { countTransfers, createMetrics, type NodeMetrics } from './api/metrics.ts'
import { createExchange, type Exchange } from './transfers/exchange.ts'
import { createDimseService, type DimseService } from './dimse/dimse-service.ts'
import { createPacsForwarding, type PacsForwarding } from './reconcile/forwarding.ts'
import { createRouter } from './routing/router.ts'
import { AuditLog } from './audit/audit-log.ts'
import { SyslogExporter } from './audit/syslog-export.ts'
import { PolicyStore } from './policy/policy-store.ts'
import { recordPolicyInForce } from './policy/policy-in-force.ts'
import { pruneThumbnails } from './imaging/prune.ts'
import { UserStore } from './users/user-store.ts'
import { ensureCliToken } from './users/cli-token.ts'
import { auditPatient } from './audit/events.ts'
import { MappingTableLookup, noLookup } from './reconcile/patient-lookup.ts'
import { isAbsolute, join } from 'node:path'

export interface BeeldnetNodeInit {
  dataDir: string
  /** environment for config overrides (default process.env) */
  env?: NodeJS.ProcessEnv
  /** where logs go (default: pino to stdout at the configured level) */
  logger?: Logger
}

/** The long-running node: store, HTTP server, the retention sweep, the verified directory and the libp2p host, with start/stop. */
export class BeeldnetNode {
  readonly dataDir: string
  private readonly env: NodeJS.ProcessEnv
  private readonly givenLogger: Logger | undefined
  config!: NodeConfig
  identity!: NodeIdentity
  store!: StudyStore
  /** what the node trusts: root and directory, refreshed from the registry */
  directory!: DirectoryService
  /** libp2p: only peers the directory admits connect */
  p2p!: P2PHost
  private gossip: DirectoryGossip | undefined
  /** send, receive, query and pull studies with peers */
  exchange!: Exchange
  metrics!: NodeMetrics
  logger!: Logger
  private http: FastifyInstance | undefined
  /** the DICOM (DIMSE) service for the PACS, when dimse.enabled */
  dimse: DimseService | undefined
  /** received studies into the local PACS, reconciled */
  pacs!: PacsForwarding
  /** the NEN 7513 audit trail (<data-dir>/audit/trail.jsonl) */
  audit!: AuditLog
  private auditExport: SyslogExporter | undefined
  /** consent records and pulls waiting for approval */
  policyStore!: PolicyStore
  private retentionTimer: NodeJS.Timeout | undefined
  private retentionRun: Promise<void> = Promise.resolve()

  constructor (init: BeeldnetNodeInit) {
    this.dataDir = init.dataDir
    this.env = init.env ?? process.env
    this.givenLogger = init.logger
  }

  async start (): Promise<void> {
    const paths = nodePaths(this.dataDir)
    if (!await stat(paths.config).then(() => true, () => false)) throw new NotInitialisedError(this.dataDir)
    this.config = await loadConfig(paths.config, this.env)
    this.logger = this.givenLogger ?? pino({ level: this.config.log.level, base: { node: this.config.node.name } })
    this.identity = await loadIdentityFile(paths.identity)
    this.store = new StudyStore({ dir: paths.data })
    await this.store.start()
    this.audit = new AuditLog(nodePaths(this.dataDir).auditTrail)
    await this.audit.start()
    if (this.config.audit.syslog !== '') {
      const at = this.config.audit.syslog.lastIndexOf(':')
      const exporter = new SyslogExporter({
        trailPath: this.audit.path,
        cursorPath: join(this.dataDir, 'audit', 'syslog-cursor'),
        host: this.config.audit.syslog.slice(0, at).replace(/^\[|\]$/g, ''),
        port: Number(this.config.audit.syslog.slice(at + 1)),
        source: { id: this.identity.peerId, nodeName: this.config.node.name },
        logger: this.logger.child({ component: 'audit-export' })
      })
      this.audit.onRecord(() => { exporter.poke() })
      await exporter.start()
      this.auditExport = exporter
    }
    // Holds nothing until a root is pinned (beeldnet node enrol); polls only with a registry or mirrors.
    this.directory = createDirectoryService({ trustStore: createTrustStore({ dir: trustDir(this.dataDir) }), logger: this.logger }, {
      registryUrl: this.config.registry.url,
      mirrors: this.config.registry.mirrors,
      pollIntervalSeconds: this.config.registry.pollIntervalSeconds
    })
    await this.directory.start()
    // After the directory: gating and peer addresses come from it. Gossip is registered before the host listens.
    this.p2p = createP2PHost({ identity: this.identity, directory: this.directory, logger: this.logger }, {
      listen: this.config.p2p.listen,
      announce: this.config.p2p.announce,
      maxStreamWindowSize: this.config.p2p.streamWindowBytes
    })
    this.gossip = createDirectoryGossip({ host: this.p2p, directory: this.directory, logger: this.logger })
    await this.gossip.start()
    await this.p2p.start()
    // After the host: the queue resumes interrupted transfers at once.
    this.policyStore = new PolicyStore(join(this.dataDir, 'policy'))
    await this.policyStore.start()
    await recordPolicyInForce(this.policyStore, this.audit, { pull: this.config.policy.pull, bulkPatientLimit: this.config.transfers.bulkPatientLimit }, `the config file ${nodePaths(this.dataDir).config}`)
    this.exchange = createExchange({ host: this.p2p, directory: this.directory, store: this.store, identity: this.identity, logger: this.logger, audit: this.audit, policyStore: this.policyStore }, {
      dataDir: this.dataDir,
      queue: { concurrency: this.config.transfers.concurrency, perPeerConcurrency: this.config.transfers.perPeerConcurrency, maxAttempts: this.config.transfers.maxAttempts },
      stream: { stallTimeoutMs: this.config.transfers.stallTimeoutSeconds * 1000 },
      pullRules: this.config.policy.pull,
      bulkPatientLimit: this.config.transfers.bulkPatientLimit
    })
    // The notifications people act on, in the log until the web app shows them.
    this.exchange.on('report-arrived', (e) => { this.logger.info({ transferId: e.transferId, direction: e.direction, study: e.studyInstanceUID, reports: e.reports.length }, 'report arrived') })
    this.exchange.on('study-complete', (e) => { this.logger.info({ transferId: e.transferId, direction: e.direction, study: e.studyInstanceUID }, 'study complete') })
    this.exchange.on('transfer-failed', (e) => { this.logger.warn({ transferId: e.transferId, direction: e.direction, study: e.studyInstanceUID, code: e.error.code, reason: e.error.message }, 'transfer failed') })
    await this.exchange.start()
    const mappingFile = this.config.pacs.mappingFile
    this.pacs = createPacsForwarding({
      store: this.store,
      lookup: mappingFile === '' ? noLookup : new MappingTableLookup(isAbsolute(mappingFile) ? mappingFile : join(this.dataDir, mappingFile)),
      logger: this.logger,
      audit: this.audit,
      sourceOf: async (uid) => this.senderOf(uid)
    }, { dimse: this.config.dimse, pacs: this.config.pacs })
    this.exchange.on('study-complete', (e) => {
      const from = this.p2p.institutionOf(e.peerId)
      const receipt = JSON.stringify(e.receipt)
      if (e.direction === 'outgoing') {
        void this.auditStudy('receipt', 'kept', e.studyInstanceUID, from?.ura ?? e.peerId, from?.institution.name, receipt)
        return
      }
      void this.auditStudy('receive', 'committed', e.studyInstanceUID, from?.ura ?? e.peerId, from?.institution.name, receipt).then(() => {
        this.pacs.studyArrived(e.studyInstanceUID, from?.institution.name ?? e.peerId)
      })
    })
    this.metrics = this.createMetrics()
    const users = new UserStore(paths.users)
    await ensureCliToken(users, paths.cliToken)
    this.http = createHttpServer({ store: this.store, logger: this.logger, directory: this.directory, p2p: this.p2p, exchange: this.exchange, metrics: this.metrics, pacs: this.pacs, audit: this.audit, policyStore: this.policyStore, users, config: this.config }, { nodeName: this.config.node.name, peerId: this.identity.peerId, trustProxy: this.config.http.trustProxy, thumbnailCacheDir: this.thumbnailCacheDir() })
    await this.http.listen({ host: this.config.http.host, port: this.config.http.port })
    if (this.config.dimse.enabled) {
      const router = createRouter({ store: this.store, exchange: this.exchange, logger: this.logger }, this.config.routing.rules)
      const routedTitles = this.config.routing.rules.map((r) => r.calledAeTitle).filter((t): t is string => t !== undefined)
      this.dimse = createDimseService({ store: this.store, logger: this.logger, audit: this.audit, onStudiesStored: (batch) => { void router.studiesStored(batch) } }, this.config.dimse, routedTitles)
      await this.dimse.start()
    }
    this.retentionTimer = setInterval(() => { this.sweepRetention() }, this.config.store.retentionIntervalMinutes * 60_000)
    this.retentionTimer.unref()
    this.sweepRetention()
    this.logger.info({ url: this.url, peerId: this.identity.peerId, p2p: this.p2p.multiaddrs }, 'node started')
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
      }
    })
    countTransfers(metrics, this.exchange)
    return metrics
  }

  /** A study received or delivered: recorded with the signed receipt, which can be checked again later. */
  private async auditStudy (event: string, outcome: string, studyInstanceUID: string, ura: string, name: string | undefined, receipt: string): Promise<void> {
    try {
      const study = await this.store.getStudyRecord(studyInstanceUID)
      await this.audit.record({ event, outcome, patient: auditPatient(study.patient), user: { system: 'this node' }, institution: { ura, ...(name === undefined ? {} : { name }) }, studyInstanceUID, details: { receipt } })
    } catch (err) {
      this.logger.error({ err, study: studyInstanceUID, event }, 'the audit trail did not take a transfer\'s end')
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

  private sweepRetention (): void {
    this.retentionRun = this.retentionRun.then(async () => {
      // Incoming transfers nobody resumed for as long go first: their holds then no longer keep studies.
      const expired = await this.exchange.incoming.expire(this.config.store.retentionDays * 86_400_000)
      if (expired.length > 0) this.logger.info({ expired: expired.map((t) => t.transferId) }, 'unfinished incoming transfers expired')
      const { purged, keptHeld } = await this.store.purgeExpired(this.config.store.retentionDays)
      if (purged.length > 0 || keptHeld.length > 0) {
        this.logger.info({ purged: purged.map((s) => s.studyInstanceUID), keptHeld }, 'retention sweep')
      }
      const thumbnails = await pruneThumbnails(this.thumbnailCacheDir(), async (sop) => await this.store.index.getSopLocation(sop) !== undefined)
      if (thumbnails > 0) this.logger.info({ thumbnails }, 'thumbnails of studies no longer held removed')
    }).catch((err: unknown) => { this.logger.error({ err }, 'retention sweep failed') })
  }

  async stop (): Promise<void> {
    clearInterval(this.retentionTimer)
    await this.dimse?.stop()
    await this.http?.close()
    await this.exchange?.stop()
    await this.policyStore?.stop()
    await this.gossip?.stop()
    await this.p2p?.stop()
    await this.directory?.stop()
    await this.retentionRun
    await this.auditExport?.stop()
    await this.audit?.stop()
    await this.store.stop()
    this.logger.info('node stopped')
  }
}
