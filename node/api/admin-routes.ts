import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { parseDocument } from '../../protocol/registry/documents.ts'
import type { NodeConfig } from '../config/config.ts'
import type { AuditLog } from '../audit/audit-log.ts'
import { auditRequester } from '../audit/events.ts'
import { echo } from '../admin/echo.ts'
import { NoAuditTrailError, UnknownAeTitleError } from '../admin/errors.ts'
import { settingsInForce } from '../admin/settings.ts'
import { trailPage } from '../admin/trail-page.ts'

/*
 * What IT sees of the node's settings, the C-ECHO button and the trail. /api/admin is it-admin
 * only (no entry in auth.ts's table); auditors read the trail at /api/audit. Settings are read-only
 * here: the config file is the source. An echo touches no patient data and is not audited; reading
 * the trail is, before it is read.
 */

export interface AdminDeps {
  /** the config in force (read-only here: the file is the source) */
  config: NodeConfig
  audit?: AuditLog
}

const MAX_PAGE = 500
const TrailQuery = z.strictObject({
  before: z.coerce.number().int().min(1).optional(),
  limit: z.coerce.number().int().min(1).default(100)
})

export function registerAdminRoutes (app: FastifyInstance, deps: AdminDeps): void {
  const { config, audit } = deps

  app.get('/api/admin/settings', async () => settingsInForce(config))

  app.post<{ Params: { aeTitle: string } }>('/api/admin/pacs/:aeTitle/echo', async (req) => {
    // AE titles are space-padded on the wire: leading and trailing spaces do not count.
    const wanted = req.params.aeTitle.trim()
    const destination = config.dimse.destinations.find((d) => d.aeTitle.trim() === wanted)
    if (destination === undefined) throw new UnknownAeTitleError(req.params.aeTitle)
    return echo(destination, config.dimse.aeTitle)
  })

  app.get('/api/admin/audit', async (req) => {
    if (audit === undefined) throw new NoAuditTrailError()
    const query = parseDocument(TrailQuery, req.query, 'audit trail page query')
    const limit = Math.min(query.limit, MAX_PAGE)
    await audit.record({ event: 'audit-read', outcome: 'trail page', user: auditRequester(req, 'API'), details: { ...(query.before === undefined ? {} : { before: query.before }), limit } })
    return trailPage(audit.path, { before: query.before, limit })
  })
}
