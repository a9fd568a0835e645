import rateLimit from '@fastify/rate-limit'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { statusOf } from '../../protocol/api/error-codes.ts'
import { acceptsGzip } from '../directory-cache.ts'
import { BadRequestError, NotFoundError, RateLimitedError } from '../errors.ts'
import { registerGovernanceView } from '../governance-view/routes.ts'
import type { RegistryService } from '../service.ts'
import { registerRegistryMetrics } from './metrics.ts'
import { toRefusal } from './refusals.ts'

/*
 * The registry's HTTP edge. Reads serve self-verifying files (nodes trust the signatures, not this
 * server); writes accept enrolments, proposals and signatures, each checked by the service.
 */

export interface RegistryHttpComponents {
  service: RegistryService
  logger: Logger
}

export interface RegistryHttpInit {
  /** largest request body (default 65536) */
  bodyLimitBytes?: number
  /** requests a minute per client address; 0 = unlimited (default 120) */
  rateLimitPerMinute?: number
}

function versionParam (req: FastifyRequest<{ Params: { version: string } }>): number {
  const { version } = req.params
  if (!/^[1-9][0-9]{0,9}$/.test(version)) throw new BadRequestError(`version must be a positive integer, not ${JSON.stringify(version.slice(0, 20))}`)
  return Number(version)
}

export async function createRegistryHttpServer (components: RegistryHttpComponents, init: RegistryHttpInit = {}): Promise<FastifyInstance> {
  const { service, logger } = components
  const bodyLimit = init.bodyLimitBytes ?? 65_536
  const perMinute = init.rateLimitPerMinute ?? 120
  const app = Fastify({
    loggerInstance: logger.child({ component: 'http' }) as FastifyBaseLogger,
    bodyLimit,
    // Per-request log lines would cost more than serving the cached directory; refusals are logged below.
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true
  })

  // Every body is JSON: nothing else gets as far as a handler.
  app.removeContentTypeParser('text/plain')

  app.setErrorHandler((err, req, reply) => {
    const refusal = toRefusal(err, bodyLimit)
    if (refusal === undefined) {
      logger.error({ err, method: req.method, url: req.url }, 'request failed')
      void reply.status(statusOf('BEELDNET_ERR_INTERNAL')).send({ code: 'BEELDNET_ERR_INTERNAL', message: 'internal error; the registry log has the details' })
      return
    }
    const status = statusOf(refusal.code)
    // 503 NOT_PUBLISHED is the normal state before root or directory v1, not a fault.
    if (status >= 500 && refusal.code !== 'BEELDNET_ERR_NOT_PUBLISHED') logger.error({ code: refusal.code, message: refusal.message, url: req.url }, 'request failed')
    else logger.debug({ code: refusal.code, method: req.method, url: req.url, ip: req.ip }, 'refused')
    void reply.status(status).send({ code: refusal.code, message: refusal.message })
  })

  if (perMinute > 0) {
    await app.register(rateLimit, {
      max: perMinute,
      timeWindow: 60_000,
      errorResponseBuilder: (_req, context) => new RateLimitedError(`more than ${context.max} requests a minute from this address; retry in ${context.after}`)
    })
  }

  registerRegistryMetrics(app)

  app.setNotFoundHandler((req) => { throw new NotFoundError(`${req.method} ${req.url.split('?')[0]} not found`) })

  app.get('/health', async (_req, reply) => {
    const integrity = service.integrity
    if (!integrity.ok) return reply.status(statusOf('BEELDNET_ERR_STORE_TAMPERED')).send({ status: 'tampered', code: 'BEELDNET_ERR_STORE_TAMPERED', problems: integrity.problems })
    return { status: 'ok' }
  })

  app.get('/v1/root', async () => service.root())
  app.get<{ Params: { version: string } }>('/v1/roots/:version', async (req) => service.rootVersion(versionParam(req)))

  app.get('/v1/directory', async (req: FastifyRequest, reply: FastifyReply) => {
    const cached = service.directory()
    void reply.header('vary', 'Accept-Encoding').header('etag', cached.etag).header('cache-control', 'no-cache')
    if (req.headers['if-none-match'] === cached.etag) return reply.status(304).send()
    void reply.type('application/json; charset=utf-8')
    if (acceptsGzip(req.headers['accept-encoding'])) return reply.header('content-encoding', 'gzip').send(cached.gzip)
    return reply.send(cached.json)
  })
  app.get('/v1/directories', async () => service.history())
  // What changed from a version to the current one, signed headers included (protocol/registry/delta.ts).
  app.get<{ Params: { version: string } }>('/v1/directories/:version/delta', async (req, reply) => {
    const bytes = await service.directoryDelta(versionParam(req))
    void reply.header('cache-control', 'no-cache').type('application/json; charset=utf-8')
    return reply.send(bytes)
  })
  app.get<{ Params: { version: string } }>('/v1/directories/:version', async (req, reply) => {
    const dir = await service.directoryVersion(versionParam(req))
    // A published version never changes: caches may keep it for good.
    void reply.header('cache-control', 'public, max-age=31536000, immutable')
    return dir
  })

  app.get('/v1/timestamp', async (_req, reply) => {
    void reply.header('cache-control', 'no-cache')
    return service.timestamp()
  })

  app.post('/v1/enrolments', async (req, reply) => {
    const { id, created } = await service.submitEnrolment(req.body)
    return reply.status(created ? 201 : 200).send({ id })
  })
  app.get('/v1/enrolments', async () => service.enrolments())

  app.post('/v1/proposals', async (req, reply) => {
    const { id, created } = await service.submitProposal(req.body)
    return reply.status(created ? 201 : 200).send({ id })
  })
  app.get('/v1/proposals', async () => service.proposals())
  app.get<{ Params: { id: string } }>('/v1/proposals/:id', async (req) => service.proposal(req.params.id))

  app.get('/v1/candidate', async () => service.candidate())
  app.delete('/v1/candidate', async (req) => service.discardCandidate(req.body))
  app.post('/v1/candidate/signatures', async (req) => service.addSignature(req.body))

  app.get('/v1/status', async () => service.status())

  registerGovernanceView(app, { service })

  return app
}
