import type { FastifyInstance, FastifyReply } from 'fastify'
import type { AuditSink } from '../audit/audit-log.ts'
import { recordShown } from '../audit/events.ts'
import type { StudyStore } from '../store/study-store.ts'
import { NotPdfError } from '../reports/errors.ts'
import { attachPdf, MAX_ATTACHED_PDF_BYTES, reportContent, reportsOf, type ReportContent } from '../reports/reports.ts'

/*
 * Reports on the node's API: the list of a study's reports, one report to read (an SR as text, a
 * PDF inline), and a PDF to attach, which becomes part of the study and travels with it.
 */
export function registerReportRoutes (app: FastifyInstance, components: { store: StudyStore, audit?: AuditSink }): void {
  const { store, audit } = components
  app.addContentTypeParser('application/pdf', { parseAs: 'buffer', bodyLimit: MAX_ATTACHED_PDF_BYTES }, (_req, body, done) => { done(null, body) })

  app.get<{ Params: { uid: string } }>('/api/studies/:uid/reports', async (req) => {
    const reports = await reportsOf(store, req.params.uid)
    await recordShown(audit, req, 'API', 'view', `report list (${reports.length})`, [await store.getStudyRecord(req.params.uid)])
    return { reports }
  })

  app.get<{ Params: { uid: string, sop: string } }>('/api/studies/:uid/reports/:sop', async (req, reply) => {
    const content = await reportContent(store, req.params.uid, req.params.sop)
    await recordShown(audit, req, 'API', 'view', `report ${req.params.sop}`, [await store.getStudyRecord(req.params.uid)])
    return sendReport(reply, content)
  })

  app.post<{ Params: { uid: string }, Querystring: { title?: string } }>('/api/studies/:uid/reports', async (req, reply) => {
    if (!Buffer.isBuffer(req.body)) throw new NotPdfError('attach a report as Content-Type: application/pdf')
    const title = (req.query.title ?? 'Verslag').slice(0, 1024)
    const attached = await attachPdf(store, req.params.uid, req.body, title)
    await recordShown(audit, req, 'API', 'report-attached', `PDF ${attached.sopInstanceUID}`, [await store.getStudyRecord(req.params.uid)])
    return reply.status(201).send(attached)
  })
}

/** One report's bytes: an SR as text, a PDF inline (shown in the page, or saved by a download link). Also a patient's share link's answer. */
export function sendReport (reply: FastifyReply, content: ReportContent): FastifyReply {
  if (content.type === 'text/plain; charset=utf-8') return reply.type(content.type).send(content.body)
  return reply.type(content.type).header('content-length', content.length).header('content-disposition', 'inline').send(content.body)
}
