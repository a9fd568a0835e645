import type { FastifyInstance, FastifyRequest } from 'fastify'
import { z } from 'zod'
import type { AuditPerson } from '../audit/audit-log.ts'
import { SHARE_PREFIX } from '../shares/share-paths.ts'
import { IN_PERSON_HANDOVER, type ShareHandover } from '../shares/handover.ts'
import type { Shares } from '../shares/shares.ts'
import { BadRequestError } from './errors.ts'

/*
 * A clinician makes a patient's share link on a study, and sees and revokes the links; IT lists
 * and revokes every link (a link names a study, never its patient). Roles in auth.ts: the
 * /api/studies prefix is for clinicians, /api/shares for clinicians and IT. The link's URL and
 * code are in the answer that makes it, and never again (the code not even then when the hand-over
 * sent it to the patient itself: handover.ts).
 */

export interface ShareSettings {
  /** a link's days when none are asked for (default 14) */
  defaultDays: number
  /** most days a link may last (default 90) */
  maxDays: number
  /** downloads of the study when none are asked for (default 5) */
  defaultDownloads: number
  /** the https:// address IT exposes /share/ under ('' = the address the clinician reached the node at) */
  publicUrl: string
}

export const DEFAULT_SHARE_SETTINGS: ShareSettings = { defaultDays: 14, maxDays: 90, defaultDownloads: 5, publicUrl: '' }

export const MAX_SHARE_DOWNLOADS = 20

function personOf (req: FastifyRequest): AuditPerson {
  return req.caller?.person ?? { system: req.caller?.name ?? `caller at ${req.ip}` }
}

export function registerShareRoutes (app: FastifyInstance, deps: { shares: Shares, handover?: ShareHandover }, settings: ShareSettings = DEFAULT_SHARE_SETTINGS): void {
  const { shares, handover = IN_PERSON_HANDOVER } = deps
  const Body = z.strictObject({
    days: z.number().int().min(1).max(settings.maxDays, `a link lasts at most ${settings.maxDays} days (shares.maxDays)`).optional(),
    maxDownloads: z.number().int().min(1).max(MAX_SHARE_DOWNLOADS).optional()
  })

  app.post<{ Params: { uid: string } }>('/api/studies/:uid/shares', async (req, reply) => {
    const parsed = Body.safeParse(req.body ?? {})
    if (!parsed.success) throw new BadRequestError(parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '))
    const person = personOf(req)
    const made = await shares.create(req.params.uid, { createdBy: person.name ?? req.caller?.name ?? person.system ?? 'unknown', person }, {
      days: parsed.data.days ?? Math.min(settings.defaultDays, settings.maxDays),
      maxDownloads: parsed.data.maxDownloads ?? settings.defaultDownloads
    })
    const path = `${SHARE_PREFIX}/${made.token}`
    const origin = settings.publicUrl === '' ? `${req.protocol}://${req.host}` : settings.publicUrl.replace(/\/+$/, '')
    const url = `${origin}${path}`
    const handed = await handover.handOver({ id: made.record.id, studyInstanceUID: made.record.studyInstanceUID, url, code: made.code, expiresAt: made.record.expiresAt })
    return reply.status(201).send({
      id: made.record.id, path, url, expiresAt: made.record.expiresAt, maxDownloads: made.record.maxDownloads, handedOver: handed.via,
      ...(handed.codeForClinician ? { code: made.code } : {})
    })
  })

  app.get<{ Params: { uid: string } }>('/api/studies/:uid/shares', async (req) => ({ shares: await shares.list(req.params.uid) }))

  app.get('/api/shares', async () => ({ shares: await shares.list() }))

  app.delete<{ Params: { id: string } }>('/api/shares/:id', async (req) => shares.revoke(req.params.id, personOf(req)))
}
