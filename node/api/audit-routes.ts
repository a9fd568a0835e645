import type { FastifyInstance } from 'fastify'
import type { AuditLog } from '../audit/audit-log.ts'
import { auditRequester } from '../audit/events.ts'
import { patientReport, patientReportHtml } from '../audit/patient-report.ts'
import { verifyTrail } from '../audit/verify.ts'
import { BadRequestError } from './errors.ts'

/*
 * The audit trail on the node's API: its verification, and the per-patient access report (JSON,
 * or HTML to print). Reading a patient's report is itself an access, and is recorded first.
 */
export function registerAuditRoutes (app: FastifyInstance, components: { audit: AuditLog, nodeName: string }): void {
  const { audit } = components
  app.get('/api/audit/verify', async () => verifyTrail(audit.path))

  app.get<{ Params: { bsn: string }, Querystring: { format?: string } }>('/api/audit/patients/:bsn', async (req, reply) => {
    if (!/^[0-9]{9}$/.test(req.params.bsn)) throw new BadRequestError('a BSN has 9 digits')
    await audit.record({ event: 'audit-read', outcome: 'patient access report', patient: { bsn: req.params.bsn }, user: auditRequester(req, 'API') })
    const report = await patientReport(audit.path, req.params.bsn)
    if (req.query.format === 'html') return reply.type('text/html; charset=utf-8').send(patientReportHtml(report, components.nodeName))
    return report
  })
}
