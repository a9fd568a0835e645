import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { parseDocument } from '../../protocol/registry/documents.ts'
import type { PacsForwarding } from '../reconcile/forwarding.ts'
import type { ExportRecord } from '../reconcile/export-store.ts'
import { ExportNotFoundError } from '../reconcile/errors.ts'
import type { AuditSink } from '../audit/audit-log.ts'
import { auditRequester, recordShown } from '../audit/events.ts'

/** "Send to our PACS" on the node's API: reconciled by BSN, or with the local id a person entered. */
export const PacsSendBody = z.strictObject({
  destination: z.string().min(1).max(16).optional(),
  patientId: z.string().min(1).max(64).optional(),
  issuer: z.string().max(64).optional(),
  accessionNumber: z.string().max(16).optional()
}).refine((b) => b.patientId !== undefined || (b.issuer === undefined && b.accessionNumber === undefined), 'issuer and accessionNumber come with a patientId')

/** An export as IT sees it: no patient id (IT keeps exports running without seeing who is in them). */
export type ExportView = Omit<ExportRecord, 'local' | 'remaining'> & { remaining?: number }

export function exportView (record: ExportRecord): ExportView {
  const { local: _, remaining, ...rest } = record
  return { ...rest, ...(remaining === undefined ? {} : { remaining: remaining.length }) }
}

export function registerPacsRoutes (app: FastifyInstance, components: { pacs: PacsForwarding, audit?: AuditSink }): void {
  const { pacs } = components
  app.get('/api/pacs/held', async (req) => {
    const held = await pacs.held()
    await recordShown(components.audit, req, 'API', 'view', 'held for reconciliation', held)
    return { held }
  })

  // Queued (202, with the export's id to follow it), or held for a person (202, with why).
  app.post<{ Params: { uid: string } }>('/api/studies/:uid/pacs', async (req, reply) => {
    const body = parseDocument(PacsSendBody, req.body ?? {}, 'send to PACS request')
    const local = body.patientId === undefined ? undefined : { patientId: body.patientId, issuer: body.issuer ?? '', accessionNumber: body.accessionNumber }
    const answer = await pacs.send(req.params.uid, { destination: body.destination, local })
    if (answer.status === 'held') return reply.status(202).send(answer)
    return reply.status(202).send({ status: 'queued', exportId: answer.export.exportId, local: answer.export.local, export: exportView(answer.export) })
  })

  app.get('/api/pacs/exports', async () => ({ exports: (await pacs.exports.list()).map(exportView) }))

  app.get<{ Params: { id: string } }>('/api/pacs/exports/:id', async (req) => {
    const record = await pacs.exports.get(req.params.id)
    if (record === undefined) throw new ExportNotFoundError(req.params.id)
    return exportView(record)
  })

  app.post<{ Params: { id: string } }>('/api/pacs/exports/:id/retry', async (req) => exportView(await pacs.exports.retry(req.params.id)))
  // Audited with who cancelled: the logged-in person or token, else where the call came from.
  app.post<{ Params: { id: string } }>('/api/pacs/exports/:id/cancel', async (req) => exportView(await pacs.exports.cancel(req.params.id, auditRequester(req, 'API'))))
}
