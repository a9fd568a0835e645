import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { QueryCriteria } from '../../protocol/exchange/query.ts'
import { Clinician, Requester } from '../../protocol/exchange/requester.ts'
import { parseDocument } from '../../protocol/registry/documents.ts'
import { DeidentificationRequiredError, TransferNotFoundError } from '../transfers/errors.ts'
import type { DeidentifiedPushes } from '../deidentify/deidentified-push.ts'
import { parseProfile } from '../deidentify/options.ts'
import type { ExchangeEvents } from '../transfers/events.ts'
import type { Exchange } from '../transfers/exchange.ts'
import type { NodeMetrics } from './metrics.ts'
import { auditRequester } from '../audit/events.ts'
import { ForbiddenError } from './errors.ts'
import { BadRequestError } from './errors.ts'

/*
 * The exchange on the node's HTTP API: send a study, follow transfers (JSON, and live as
 * server-sent events), query and pull at a peer. Bodies are checked with the same zod schemas the
 * wire uses; every refusal is {code, message} with the status from the one table.
 */

const Ura = z.string().regex(/^[0-9]{8}$/, 'a URA number has 8 digits')
const Department = z.string().regex(/^[A-Z0-9-]{1,16}$/, 'a department code such as RAD')

export const SendBody = z.strictObject({
  studyInstanceUID: z.string().min(1).max(64),
  to: z.strictObject({ ura: Ura, department: Department }),
  note: z.string().max(4000).optional(),
  reason: z.string().min(1).max(512),
  /** a person confirms sending more studies of one patient than transfers.bulkPatientLimit allows in a day */
  confirmBulk: z.boolean().optional(),
  /**
   * A de-identified copy goes instead of the study (PS3.15 Annex E): `basic[,retain-dates][,clean-descriptors]`
   * (default basic); confirmBurnedIn: the person logged in has checked the images for burned-in text.
   * Left out: de-identified (basic) only to a teaching or research institution; false: never, which
   * such an institution refuses.
   */
  deidentify: z.union([
    z.literal(false),
    z.strictObject({ profile: z.string().min(1).max(64).default('basic'), confirmBurnedIn: z.boolean().optional() })
  ]).optional()
})

/** Who asks: a logged-in clinician asks as themselves, so the clinician is needed only with an API token. */
const AskingAs = Requester.extend({ clinician: Clinician.optional() })

export const QueryBody = z.strictObject({ at: Ura, criteria: QueryCriteria, requester: AskingAs })

export const PullBody = z.strictObject({
  at: Ura,
  studyInstanceUID: z.string().min(1).max(64),
  requester: AskingAs,
  deliverTo: Department
})

/**
 * The requester a query or pull carries: a session's own clinician (a person cannot ask in another's
 * name), or, for an integration's token, the clinician the body names.
 */
function requesterOf (req: FastifyRequest, asking: z.infer<typeof AskingAs>): Requester {
  const person = req.caller?.kind === 'session' ? req.caller.person : undefined
  if (person === undefined) {
    if (asking.clinician === undefined) throw new BadRequestError('requester.clinician: an API token asks on behalf of a clinician: give name, uzi and role')
    return { ...asking, clinician: asking.clinician }
  }
  if (person.uzi === undefined || person.name === undefined || person.role === undefined || !/^[0-9]{2}\.[0-9]{3}$/.test(person.role)) {
    throw new ForbiddenError(req.caller!.role, `${req.url.split('?')[0]} (an account without a UZI number and role code cannot ask a peer)`)
  }
  if (asking.clinician !== undefined && asking.clinician.uzi !== person.uzi) throw new ForbiddenError(req.caller!.role, `${req.url.split('?')[0]} in the name of UZI ${asking.clinician.uzi}`)
  return { ...asking, clinician: { name: person.name, uzi: person.uzi, role: person.role } }
}

const EVENTS: Array<keyof ExchangeEvents> = ['state', 'progress', 'report-arrived', 'study-complete', 'transfer-failed', 'pull-decided']
const HEARTBEAT_MS = 15_000

/**
 * Streams every transfer event as SSE until the client goes away, or its session ends (a logout
 * must not leave a stream of patient events running). Hijacked, so the security headers are set
 * here: fastify's hooks do not see this answer.
 */
function streamEvents (exchange: Exchange, req: FastifyRequest, reply: FastifyReply): void {
  reply.hijack()
  const res = reply.raw
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'content-security-policy': "default-src 'none'; frame-ancestors 'none'"
  })
  res.write(': transfer events\n\n')
  const listeners = EVENTS.map((name) => {
    const listener = (payload: unknown): void => { res.write(`event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`) }
    exchange.on(name, listener as never)
    return [name, listener] as const
  })
  const heartbeat = setInterval(() => { res.write(': keep-alive\n\n') }, HEARTBEAT_MS)
  res.on('close', () => {
    clearInterval(heartbeat)
    for (const [name, listener] of listeners) exchange.off(name, listener as never)
  })
  req.whenCallerEnds?.(() => { res.end() })
}

/** Who confirms that images show no identifying text: a person logged in, never an API token. */
function confirmerOf (req: FastifyRequest): string {
  const person = req.caller?.kind === 'session' ? req.caller.person : undefined
  if (person?.name === undefined) throw new BadRequestError('deidentify.confirmBurnedIn: a person logged in confirms they checked the images; an API token cannot')
  return person.uzi === undefined ? person.name : `${person.name} (UZI ${person.uzi})`
}

export function registerExchangeRoutes (app: FastifyInstance, components: { exchange: Exchange, metrics?: NodeMetrics, deidentifiedPushes?: DeidentifiedPushes }): void {
  const { exchange, deidentifiedPushes } = components

  app.post('/api/transfers', async (req, reply) => {
    const { deidentify, ...body } = parseDocument(SendBody, req.body, 'send request')
    const actor = auditRequester(req, 'API')
    const required = deidentifiedPushes?.required(body.to.ura) === true
    if (deidentify === false && required) throw new DeidentificationRequiredError(body.to.ura)
    if (deidentify === false || (deidentify === undefined && !required)) return reply.status(201).send(await exchange.send({ ...body, actor }))
    if (deidentifiedPushes === undefined) throw new BadRequestError('deidentify: this server makes no de-identified pushes')
    const profile = parseProfile(deidentify?.profile ?? 'basic')
    const confirmBurnedIn = deidentify?.confirmBurnedIn === true ? { by: confirmerOf(req) } : undefined
    const record = await deidentifiedPushes.send({ ...body, actor, deidentify: { profile, ...(confirmBurnedIn === undefined ? {} : { confirmBurnedIn }) } })
    return reply.status(201).send(record)
  })

  app.get('/api/transfers', async () => exchange.list())

  app.get('/api/transfers/events', async (req, reply) => { streamEvents(exchange, req, reply) })

  app.get<{ Params: { id: string } }>('/api/transfers/:id', async (req) => {
    const outgoing = await exchange.queue.get(req.params.id)
    if (outgoing !== undefined) return outgoing
    const incoming = (await exchange.incoming.list()).find((r) => r.transferId === req.params.id)
    if (incoming !== undefined) return incoming
    throw new TransferNotFoundError(req.params.id)
  })

  app.post<{ Params: { id: string } }>('/api/transfers/:id/cancel', async (req) => exchange.queue.cancel(req.params.id))
  app.post<{ Params: { id: string } }>('/api/transfers/:id/retry', async (req) => exchange.queue.retry(req.params.id))

  app.post('/api/query', async (req) => {
    const body = parseDocument(QueryBody, req.body, 'query')
    return exchange.query(body.at, body.criteria, requesterOf(req, body.requester))
  })

  app.get('/api/pulls', async () => ({ pulls: await exchange.pullsMade() }))

  app.post('/api/pulls', async (req) => {
    const body = parseDocument(PullBody, req.body, 'pull request')
    return exchange.pull(body.at, { studyInstanceUID: body.studyInstanceUID, requester: requesterOf(req, body.requester), deliverTo: body.deliverTo })
  })

  const metrics = components.metrics
  if (metrics !== undefined) {
    app.get('/metrics', async (_req, reply) => reply.type(metrics.contentType).send(await metrics.metrics()))
  }
}
