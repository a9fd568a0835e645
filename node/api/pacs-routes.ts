import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { parseDocument } from '../../protocol/registry/documents.ts'
import type { PacsForwarding } from '../reconcile/forwarding.ts'
import type { AuditSink } from '../audit/audit-log.ts'
import { recordShown } from '../audit/events.ts'

/** "Send to our PACS" on the node's API: reconciled by BSN, or with the local id a person entered. */
export const PacsSendBody = z.strictObject({
  destination: z.string().min(1).max(16).optional(),
  patientId: z.string().min(1).max(64).optional(),
  issuer: z.string().max(64).optional(),
  accessionNumber: z.string().max(16).optional()
}).refine((b) => b.patientId !== undefined || (b.issuer === undefined && b.accessionNumber === undefined), 'issuer and accessionNumber come with a patientId')

export function registerPacsRoutes (app: FastifyInstance, components: { pacs: PacsForwarding, audit?: AuditSink }): void {
  app.get('/api/pacs/held', async (req) => {
    const held = await components.pacs.held()
    await recordShown(components.audit, req, 'API', 'view', 'held for reconciliation', held)
    return { held }
  })

  app.post<{ Params: { uid: string } }>('/api/studies/:uid/pacs', async (req, reply) => {
    const body = parseDocument(PacsSendBody, req.body ?? {}, 'send to PACS request')
    const local = body.patientId === undefined ? undefined : { patientId: body.patientId, issuer: body.issuer ?? '', accessionNumber: body.accessionNumber }
    const outcome = await components.pacs.send(req.params.uid, { destination: body.destination, local })
    return reply.status(outcome.status === 'held' ? 202 : 200).send(outcome)
  })
}
