import type { FastifyInstance, FastifyReply } from 'fastify'
import type { ViewRecords } from '../audit/view-records.ts'
import type { Thumbnailer } from '../imaging/thumbnail.ts'
import type { StudyStore } from '../store/study-store.ts'

/*
 * Series thumbnails for the web app: a PNG of at most 128 x 128 of the series' middle image.
 * Clinicians only (the /api/studies prefix in auth.ts). A thumbnail is a patient image: it is
 * recorded as a view of its study (once per caller per study per 30 minutes, view-records.ts).
 * Cacheable by the browser for a day, never by a proxy.
 */
export function registerThumbnailRoutes (app: FastifyInstance, deps: { store: StudyStore, thumbnailer: Thumbnailer, views: ViewRecords }): void {
  app.get<{ Params: { uid: string, seriesUid: string } }>('/api/studies/:uid/series/:seriesUid/thumbnail', async (req, reply) =>
    sendThumbnail(reply, await deps.thumbnailer.thumbnail(req.params.uid, req.params.seriesUid), async () =>
      deps.views.viewed(req, 'API', `thumbnail of series ${req.params.seriesUid}`, req.params.uid, async () => deps.store.getStudyRecord(req.params.uid))))
}

/** A series thumbnail once its view is recorded (`viewed`); also a patient's share link's answer. */
export async function sendThumbnail (reply: FastifyReply, png: Buffer, viewed: () => Promise<void>): Promise<FastifyReply> {
  await viewed()
  return reply.type('image/png').header('cache-control', 'private, max-age=86400').send(png)
}
