import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { z } from 'zod'
import { isBeeldnetError } from '../../protocol/errors.ts'
import type { StudyStore } from '../store/study-store.ts'
import type { DirectoryStatus } from '../directory/directory-service.ts'
import type { P2PStatus } from '../p2p/host.ts'
import { statusOf, type ErrorCode } from '../../protocol/api/error-codes.ts'
import type { Exchange } from '../transfers/exchange.ts'
import { registerExchangeRoutes } from './exchange-routes.ts'
import type { DeidentifiedPushes } from '../deidentify/deidentified-push.ts'
import { registerDicomweb } from '../dicomweb/routes.ts'
import { registerPacsRoutes } from './pacs-routes.ts'
import { registerReportRoutes } from './report-routes.ts'
import { registerAuditRoutes } from './audit-routes.ts'
import { BadRequestError } from './errors.ts'
import { registerAuth, registerSecurityHeaders } from './auth.ts'
import { registerUserRoutes } from './user-routes.ts'
import { registerInboxRoutes } from './inbox-routes.ts'
import { registerDeepLinks, registerWebApp, WEB_APP_DIR } from './web-app.ts'
import type { Directory } from '../../protocol/registry/documents.ts'
import { registerThumbnailRoutes } from './thumbnail-routes.ts'
import { registerAdminRoutes } from './admin-routes.ts'
import { registerImportRoutes } from './import-routes.ts'
import { ImportSessions } from './import-sessions.ts'
import { registerInstanceFileRoutes } from './instance-file-routes.ts'
import { registerMediaRoutes } from './media-routes.ts'
import type { NodeConfig } from '../config/config.ts'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { UserStore } from '../users/user-store.ts'
import { registerPolicyRoutes } from './policy-routes.ts'
import type { PolicyStore } from '../policy/policy-store.ts'
import type { AuditLog } from '../audit/audit-log.ts'
import type { PacsForwarding } from '../reconcile/forwarding.ts'
import { healthProblems } from './health.ts'
import { recordShown } from '../audit/events.ts'
import { createViewRecords, type ViewRecordsInit } from '../audit/view-records.ts'
import type { NodeMetrics } from './metrics.ts'
import { createThumbnailer } from '../imaging/thumbnail.ts'
import { SHARE_RULES, type Shares } from '../shares/shares.ts'
import { redactedRequest } from '../shares/share-paths.ts'
import { registerShareRoutes, type ShareSettings } from './share-routes.ts'
import { registerSharePatientRoutes } from './share-patient-routes.ts'
import { studyDetail } from './study-detail.ts'

export interface HttpServerComponents {
  store: StudyStore
  logger: Logger
  /** what the node trusts, shown by /health; the institutions in it, for the web app (optional) */
  directory?: { status: () => DirectoryStatus, readonly directory: Directory | undefined }
  /** the libp2p host: who is connected, shown by /health (optional) */
  p2p?: { status: () => P2PStatus }
  /** the exchange: send, transfers, query, pull (optional) */
  exchange?: Exchange
  /** Prometheus metrics at /metrics (optional) */
  metrics?: NodeMetrics
  /** received studies into the local PACS (optional) */
  pacs?: PacsForwarding
  /** the NEN 7513 trail: DICOMweb views and searches are recorded, the trail is read and verified (optional) */
  audit?: AuditLog
  /** consent records and the approval queue of pulls (optional) */
  policyStore?: PolicyStore
  /** accounts and API tokens: who may use which route */
  users: UserStore
  /** the node's config in force, for IT's pages (optional) */
  config?: NodeConfig
  /** patients' share links: made by clinicians, opened under /share/ (optional) */
  shares?: Shares
  /** de-identified pushes: POST /api/transfers with deidentify, and a teaching or research destination (optional) */
  deidentifiedPushes?: DeidentifiedPushes
}

export interface HttpServerInit {
  /** shown by /health */
  nodeName: string
  peerId: string
  /** the reverse proxy whose X-Forwarded-* headers are believed (addresses or CIDRs, comma-separated; default none) */
  trustProxy?: string
  /** where rendered thumbnails are kept (default: none cached, a temp dir) */
  thumbnailCacheDir?: string
  /** largest page of the study listing (default 500) */
  maxListing?: number
  /** how often a caller's views of one study are recorded (default: once per 30 minutes) */
  views?: ViewRecordsInit
  /** the web app's built files (default web/dist) */
  webAppDir?: string
  /** share links: default and longest days, default downloads, the public address (config shares.*) */
  shares?: ShareSettings
  /** tries of a share link's code per address per minute (default 10) */
  shareOpensPerMinute?: number
}

const DATE = /^[0-9]{8}$/
const StudyListingQuery = z.strictObject({
  patientId: z.string().min(1).max(64).optional(),
  issuer: z.string().max(64).optional(),
  bsn: z.string().regex(/^[0-9]{9}$/, 'a BSN has 9 digits').optional(),
  dateFrom: z.string().regex(DATE, 'dates are YYYYMMDD').optional(),
  dateTo: z.string().regex(DATE, 'dates are YYYYMMDD').optional(),
  modality: z.string().regex(/^[A-Z]{2,4}$/).optional(),
  accessionNumber: z.string().min(1).max(16).optional(),
  name: z.string().min(1).max(64).optional(),
  birthDate: z.string().regex(DATE, 'dates are YYYYMMDD').optional(),
  limit: z.coerce.number().int().min(1).optional()
})

/** Codes for the refusals fastify itself makes (unknown content type, body too large). */
const FRAMEWORK_ERROR_CODES: Partial<Record<number, ErrorCode>> = { 413: 'BEELDNET_ERR_BODY_TOO_LARGE', 415: 'BEELDNET_ERR_MEDIA_TYPE', 429: 'BEELDNET_ERR_RATE_LIMITED' }

/** The node's HTTP edge: /health, the study listing, DICOMweb, the exchange (send, transfers, query, pull) and /metrics. */
export function createHttpServer (components: HttpServerComponents, init: HttpServerInit): FastifyInstance {
  const { store, logger } = components
  const maxListing = init.maxListing ?? 500
  // One for every route that shows a study's images: a study opened is one record, however it is read.
  const views = createViewRecords({ audit: components.audit }, init.views)
  const app: FastifyInstance = Fastify({
    // A share link's token never reaches a log: requests under /share/<token>/ are logged as /share/<redacted>/.
    loggerInstance: logger.child({ component: 'http' }, { serializers: { req: redactedRequest } }) as FastifyBaseLogger,
    bodyLimit: 1024 * 1024,
    trustProxy: init.trustProxy === undefined || init.trustProxy === '' ? false : init.trustProxy
  })

  app.setErrorHandler((err, _req, reply) => {
    if (isBeeldnetError(err)) {
      // A refusal may say more than its message (a share link's attempts left, until when it is locked).
      const answer = (err as { answer?: Record<string, unknown> }).answer
      void reply.status(statusOf(err.code)).send({ ...answer, code: err.code, message: err.message })
      return
    }
    const status = (err as { statusCode?: number }).statusCode ?? 500
    if (status >= 500) logger.error({ err }, 'request failed')
    void reply.status(status).send({ code: FRAMEWORK_ERROR_CODES[status] ?? (status >= 500 ? 'BEELDNET_ERR_INTERNAL' : 'BEELDNET_ERR_BAD_REQUEST'), message: status >= 500 ? 'internal error' : (err as Error).message })
  })

  registerSecurityHeaders(app)
  registerAuth(app, { users: components.users, audit: components.audit })
  registerUserRoutes(app, { users: components.users, audit: components.audit })

  // 200 with status 'ok', or 503 with status 'degraded' and each problem in words.
  app.get('/health', async (_req, reply) => {
    const usage = await store.diskUsage()
    const directory = components.directory?.status() ?? null
    const p2p = components.p2p?.status() ?? null
    const problems = healthProblems({ directory, p2p, store: usage, diskFull: await store.space.problem(), minFreeBytes: store.space.minFreeBytes })
    return reply.status(problems.length === 0 ? 200 : 503).send({
      status: problems.length === 0 ? 'ok' : 'degraded', problems, node: init.nodeName, peerId: init.peerId, store: usage, directory, p2p
    })
  })

  app.get('/api/studies', async (req) => {
    const parsed = StudyListingQuery.safeParse(req.query)
    if (!parsed.success) throw new BadRequestError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '))
    const query = parsed.data
    const limit = Math.min(query.limit ?? maxListing, maxListing)
    // A de-identified copy made for a push is no study of a patient here: it leaves once its transfer ends.
    const derived = components.deidentifiedPushes
    const studies = (await store.findStudies({ ...query, limit: limit + 1 + (derived?.pendingCount() ?? 0) }))
      .filter((s) => derived?.isDerived(s.studyInstanceUID) !== true).slice(0, limit + 1)
    const shown = studies.slice(0, limit)
    await recordShown(components.audit, req, 'API', 'query', `${shown.length} studies`, shown)
    return { studies: shown, truncated: studies.length > limit }
  })

  app.get<{ Params: { uid: string } }>('/api/studies/:uid', async (req) => {
    const entries = await store.getStudy(req.params.uid)
    await views.viewed(req, 'API', 'study details', entries.study.studyInstanceUID, async () => entries.study)
    return studyDetail(entries)
  })

  registerDicomweb(app, { store, logger, audit: components.audit, views })
  if (components.audit !== undefined) registerAuditRoutes(app, { audit: components.audit, nodeName: init.nodeName })
  registerReportRoutes(app, { store, audit: components.audit })
  registerImportRoutes(app, { store, sessions: new ImportSessions(store), audit: components.audit })
  registerInstanceFileRoutes(app, { store, audit: components.audit })
  registerMediaRoutes(app, { store, audit: components.audit })
  const thumbnailer = createThumbnailer({ store, logger: logger.child({ component: 'thumbnails' }) }, { cacheDir: init.thumbnailCacheDir ?? join(tmpdir(), `beeldnet-thumbnails-${process.pid}`) })
  registerThumbnailRoutes(app, { store, thumbnailer, views })
  if (components.shares !== undefined) {
    registerShareRoutes(app, { shares: components.shares }, init.shares)
    // A patient's views: once per session (at most an hour) per study.
    const shareViews = createViewRecords({ audit: components.audit }, { windowMs: SHARE_RULES.sessionMs, now: components.shares.now })
    registerSharePatientRoutes(app, { shares: components.shares, store, thumbnailer, views: shareViews, audit: components.audit }, { opensPerMinute: init.shareOpensPerMinute })
  }
  if (components.config !== undefined) registerAdminRoutes(app, { config: components.config, audit: components.audit })
  if (components.pacs !== undefined) registerPacsRoutes(app, { pacs: components.pacs, audit: components.audit })
  if (components.exchange !== undefined && components.policyStore !== undefined) registerPolicyRoutes(app, { exchange: components.exchange, policyStore: components.policyStore, audit: components.audit })
  if (components.exchange !== undefined) registerExchangeRoutes(app, { exchange: components.exchange, metrics: components.metrics, deidentifiedPushes: components.deidentifiedPushes })
  if (components.exchange !== undefined) registerInboxRoutes(app, { exchange: components.exchange, directory: () => components.directory?.directory, audit: components.audit })
  registerDeepLinks(app)
  if (!registerWebApp(app, init.webAppDir ?? WEB_APP_DIR)) logger.warn('the web app is not built (npm run build:web): the API works, the pages are missing')

  return app
}
