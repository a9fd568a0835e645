import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { Purpose } from '../../protocol/exchange/requester.ts'
import { parseDocument } from '../../protocol/registry/documents.ts'
import type { AuditSink } from '../audit/audit-log.ts'
import { auditRequester, recordShown } from '../audit/events.ts'
import type { PolicyStore } from '../policy/policy-store.ts'
import type { Exchange } from '../transfers/exchange.ts'
import { BadRequestError, NotFoundError } from './errors.ts'

/*
 * The pull policy's people-side on the node's API: consent records per patient, and the pulls
 * waiting for staff of this hospital to approve (the study is pushed) or refuse (with a reason).
 */

const Bsn = z.string().regex(/^[0-9]{9}$/, 'a BSN has 9 digits')
const ConsentBody = z.strictObject({
  bsn: Bsn,
  ura: z.string().regex(/^[0-9]{8}$/, 'a URA number has 8 digits').optional(),
  purposes: z.array(Purpose).min(1).optional(),
  until: z.string().regex(/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/, 'a date YYYY-MM-DD').optional(),
  note: z.string().max(1024).optional()
})
const RefuseBody = z.strictObject({ reason: z.string().min(1).max(1024) })

export function registerPolicyRoutes (app: FastifyInstance, components: { exchange: Exchange, policyStore: PolicyStore, audit?: AuditSink }): void {
  const { exchange, policyStore, audit } = components

  app.get<{ Querystring: { bsn?: string } }>('/api/consents', async (req) => {
    const bsn = Bsn.safeParse(req.query.bsn)
    if (!bsn.success) throw new BadRequestError('give ?bsn= (9 digits)')
    const consents = await policyStore.consentsOf(bsn.data)
    await recordShown(audit, req, 'API', 'view', `consents (${consents.length})`, [{ patient: { bsn: bsn.data } }])
    return { consents }
  })
  app.post('/api/consents', async (req, reply) => {
    const consent = await policyStore.addConsent(parseDocument(ConsentBody, req.body, 'consent'))
    await audit?.record({
      event: 'consent-change',
      outcome: 'consent recorded',
      patient: { bsn: consent.bsn },
      user: auditRequester(req, 'API'),
      details: { consent: consent.id, ura: consent.ura ?? 'any', purposes: (consent.purposes ?? ['any']).join(','), until: consent.until ?? 'open' }
    })
    return reply.status(201).send(consent)
  })
  app.delete<{ Params: { bsn: string, id: string } }>('/api/consents/:bsn/:id', async (req) => {
    const removed = await policyStore.withdrawConsent(req.params.bsn, req.params.id)
    if (!removed) throw new NotFoundError(`no consent ${req.params.id} for BSN ${req.params.bsn}`)
    await audit?.record({ event: 'consent-change', outcome: 'consent withdrawn', patient: { bsn: req.params.bsn }, user: auditRequester(req, 'API'), details: { consent: req.params.id } })
    return { withdrawn: req.params.id }
  })

  app.get<{ Querystring: { state?: 'waiting' | 'approved' | 'refused' } }>('/api/approvals', async (req) => {
    const approvals = await policyStore.listApprovals(req.query.state)
    await recordShown(audit, req, 'API', 'view', 'pull requests to approve', approvals)
    return { approvals }
  })
  app.post<{ Params: { id: string } }>('/api/approvals/:id/approve', async (req) => exchange.approvePull(req.params.id, auditRequester(req, 'API')))
  app.post<{ Params: { id: string } }>('/api/approvals/:id/refuse', async (req) => {
    const body = parseDocument(RefuseBody, req.body, 'refusal')
    return exchange.refusePull(req.params.id, auditRequester(req, 'API'), body.reason)
  })
}
