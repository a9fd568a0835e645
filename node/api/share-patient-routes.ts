import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import type { AuditSink } from '../audit/audit-log.ts'
import { recordShown } from '../audit/events.ts'
import type { ViewRecords, ViewRequest } from '../audit/view-records.ts'
import type { Thumbnailer } from '../imaging/thumbnail.ts'
import { reportContent, reportsOf } from '../reports/reports.ts'
import { redactShareUrl, SHARE_PREFIX } from '../shares/share-paths.ts'
import { sharePerson, Shares, type ShareSession } from '../shares/shares.ts'
import type { ShareRecord } from '../shares/share-store.ts'
import type { StudyStore } from '../store/study-store.ts'
import { replyBulkData, replyFrames, replyMetadata, type WadoParams } from '../dicomweb/wado-replies.ts'
import { streamPdiZip } from '../media/pdi-zip.ts'
import { mediumFileName } from './media-routes.ts'
import { BadRequestError, MediaTypeError, NotFoundError, RateLimitedError } from './errors.ts'
import { sendReport } from './report-routes.ts'
import { studyDetail } from './study-detail.ts'
import { sendThumbnail } from './thumbnail-routes.ts'

/*
 * The patient's side of a share link, without an account, all under /share/<token>/ so that IT
 * can expose only /share/ to the internet (README: share links). The code opens a session (an
 * HttpOnly, SameSite=Strict cookie whose path is the link's own); with it the patient reads the
 * link's one study the way the web app's viewer reads any: the study, its reports, thumbnails
 * and WADO-RS metadata, frames and bulk data, with the answers the clinician's routes give, and
 * downloads it as an IHE PDI ZIP as many times as the link allows. Any other study is not found
 * here. Every open and refusal is audited (shares.ts), views once per session per study, each
 * report read and each download; the user in the trail is "patient via share link <id>".
 * Nothing written names the token: logs and the trail get /share/<redacted>/....
 */

const SHARE_COOKIE = 'beeldnet_share'

declare module 'fastify' {
  interface FastifyRequest {
    /** under /share/<token>/: the link's live session and the link as it is now */
    share?: { sessionId: string, session: ShareSession, record: ShareRecord }
  }
}

export interface SharePatientInit {
  /** session opens (right or wrong code) per address per minute (default 10) */
  opensPerMinute?: number
}

const SessionBody = z.strictObject({ code: z.string().min(1).max(32) })

function cookieOf (req: FastifyRequest, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=')
    if (key === name) return value.join('=')
  }
  return undefined
}

export function registerSharePatientRoutes (app: FastifyInstance, deps: { shares: Shares, store: StudyStore, thumbnailer: Thumbnailer, views: ViewRecords, audit?: AuditSink }, init: SharePatientInit = {}): void {
  const { shares, store, audit, views } = deps

  /** The request as the audit trail sees it: the link's patient, the path without its token. */
  const asViewer = (req: FastifyRequest): ViewRequest => ({
    // One view per session and study: the session's id is the caller's name (kept in memory only, never written).
    caller: { kind: 'share', name: req.share!.sessionId, person: sharePerson(req.share!.record.id) },
    ip: req.ip,
    url: redactShareUrl(req.url)
  })
  const viewed = (req: FastifyRequest, outcome: string) => async (): Promise<void> =>
    views.viewed(asViewer(req), 'share link', outcome, req.share!.record.studyInstanceUID, async () => store.getStudyRecord(req.share!.record.studyInstanceUID))
  const shown = async (req: FastifyRequest, outcome: string): Promise<void> =>
    recordShown(audit, asViewer(req), 'share link', 'view', outcome, [await store.getStudyRecord(req.share!.record.studyInstanceUID)])

  void app.register(async (scope) => {
    // Per address, besides the count on each link: codes cannot be tried at speed across many links.
    await scope.register(rateLimit, { max: init.opensPerMinute ?? 10, timeWindow: 60_000, errorResponseBuilder: () => new RateLimitedError('too many attempts from this address: wait a minute') })
    scope.post<{ Params: { token: string } }>(`${SHARE_PREFIX}/:token/session`, async (req, reply) => {
      // Same-origin JSON only: a form on another site cannot send application/json without CORS, which this route never grants.
      if (!/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) throw new MediaTypeError('send the code as application/json: {"code": "ABCD-EFGH"}')
      const parsed = SessionBody.safeParse(req.body)
      if (!parsed.success) throw new BadRequestError('send the code as {"code": "ABCD-EFGH"}')
      const token = req.params.token
      const opened = await shares.open(token, parsed.data.code, req.ip).catch((err: unknown) => {
        const until = (err as { answer?: { lockedUntil?: string | null } }).answer?.lockedUntil
        if (typeof until === 'string') void reply.header('retry-after', Math.max(1, Math.ceil((Date.parse(until) - shares.now().getTime()) / 1000)))
        throw err
      })
      const maxAge = Math.max(1, Math.floor((opened.session.expires - shares.now().getTime()) / 1000))
      const secure = req.protocol === 'https' ? '; Secure' : ''
      void reply.header('set-cookie', `${SHARE_COOKIE}=${opened.sessionId}; Path=${SHARE_PREFIX}/${token}; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure}`)
      return { id: opened.record.id, expiresAt: opened.record.expiresAt, sessionExpiresAt: new Date(opened.session.expires).toISOString(), downloadsLeft: Shares.downloadsLeft(opened.record) }
    })
  })

  void app.register(async (scope) => {
    scope.addHook('onRequest', async (req: FastifyRequest<{ Params: { token?: string } }>) => {
      const sessionId = cookieOf(req, SHARE_COOKIE)
      const found = await shares.session(req.params.token ?? '', sessionId)
      req.share = { sessionId: sessionId!, ...found }
    })
    const study = (req: FastifyRequest): string => req.share!.record.studyInstanceUID

    scope.get(`${SHARE_PREFIX}/:token/api/study`, async (req) => {
      const entries = await store.getStudy(study(req))
      await viewed(req, 'study details')()
      return studyDetail(entries)
    })

    scope.get(`${SHARE_PREFIX}/:token/api/reports`, async (req) => {
      const reports = await reportsOf(store, study(req))
      await shown(req, `report list (${reports.length})`)
      return { reports }
    })

    scope.get<{ Params: { sop: string } }>(`${SHARE_PREFIX}/:token/api/reports/:sop`, async (req, reply) => {
      const content = await reportContent(store, study(req), req.params.sop)
      await shown(req, `report ${req.params.sop}`)
      return sendReport(reply, content)
    })

    scope.get<{ Params: { series: string } }>(`${SHARE_PREFIX}/:token/api/series/:series/thumbnail`, async (req, reply) =>
      sendThumbnail(reply, await deps.thumbnailer.thumbnail(study(req), req.params.series), viewed(req, `thumbnail of series ${req.params.series}`)))

    // WADO-RS of the link's study only: another study is not found here, whatever this node holds.
    const ownStudy = (req: FastifyRequest<{ Params: WadoParams }>): void => {
      if (req.params.study !== study(req)) throw new NotFoundError('no such study at this link')
    }
    const dicomweb = (req: FastifyRequest<{ Params: { token: string } }>): string => `${req.protocol}://${req.host}${SHARE_PREFIX}/${req.params.token}/dicomweb`
    const wado = (handler: (req: FastifyRequest<{ Params: WadoParams & { token: string } }>, reply: FastifyReply, viewedNow: (outcome: string) => Promise<void>) => Promise<FastifyReply>) =>
      async (req: FastifyRequest<{ Params: WadoParams & { token: string } }>, reply: FastifyReply) => {
        ownStudy(req)
        return handler(req, reply, async (outcome) => viewed(req, outcome)())
      }
    scope.get(`${SHARE_PREFIX}/:token/dicomweb/studies/:study/series/:series/metadata`, wado(async (req, reply, v) => replyMetadata(store, req, reply, dicomweb(req), v)))
    scope.get(`${SHARE_PREFIX}/:token/dicomweb/studies/:study/series/:series/instances/:instance/frames/:frames`, wado(async (req, reply, v) => replyFrames(store, req, reply, v)))
    // The metadata names native pixel data by its bulk data URI: served too, so that the answer holds no dead link.
    scope.get(`${SHARE_PREFIX}/:token/dicomweb/studies/:study/series/:series/instances/:instance/bulkdata/:tag`, wado(async (req, reply, v) => replyBulkData(store, req, reply, v)))

    // The patient's own copy: the study as an IHE PDI medium in one ZIP (node/media), as a clinician
    // downloads it. Counted when it starts (a download cut off counts too), refused once the link's are used up.
    scope.get(`${SHARE_PREFIX}/:token/download/study.zip`, async (req, reply) => {
      const controller = new AbortController()
      reply.raw.once('close', () => { controller.abort() })
      const zip = await streamPdiZip(store, [study(req)], { signal: controller.signal })
      try {
        const counted = await shares.countDownload(req.share!.record.id)
        await recordShown(audit, asViewer(req), 'share link', 'export', `PDI medium (ZIP) of ${zip.plan.instances.length} instance(s), download ${counted.downloads} of ${counted.maxDownloads}`, zip.studies)
      } catch (err) {
        // Refused or not audited: no byte leaves, and the file being read is closed.
        zip.stream.destroy()
        throw err
      }
      return reply
        .type('application/zip')
        .header('content-length', zip.size)
        .header('content-disposition', `attachment; filename="${mediumFileName(zip.studies[0]!)}"`)
        .send(zip.stream)
    })
  })

  // Anything else under /share/ is not found, answered here rather than by fastify's default,
  // which logs the URL it did not find (the token with it).
  app.all(`${SHARE_PREFIX}/*`, async () => { throw new NotFoundError('no such page') })
}
