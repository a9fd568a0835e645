import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { ViewRecords } from '../audit/view-records.ts'
import { createThumbnailer } from '../imaging/thumbnail.ts'
import type { StudyStore } from '../store/study-store.ts'

/*
 * Series thumbnails for the web app: a PNG of at most 128 x 128 of the series' middle image.
 * Clinicians only (the /api/studies prefix in auth.ts). A thumbnail is a patient image: it is
 * recorded as a view of its study (once per caller per study per 30 minutes, view-records.ts).
 * Cacheable by the browser for a day, never by a proxy.
 */
export function registerThumbnailRoutes (app: FastifyInstance, deps: { store: StudyStore, cacheDir: string, logger: Logger, views: ViewRecords }): void {
  const thumbnailer = createThumbnailer({ store: deps.store, logger: deps.logger.child({ component: 'thumbnails' }) }, { cacheDir: deps.cacheDir })

  app.get<{ Params: { uid: string, seriesUid: string } }>('/api/studies/:uid/series/:seriesUid/thumbnail', async (req, reply) => {
    const png = await thumbnailer.thumbnail(req.params.uid, req.params.seriesUid)
    await deps.views.viewed(req, 'API', `thumbnail of series ${req.params.seriesUid}`, req.params.uid, async () => deps.store.getStudyRecord(req.params.uid))
    return reply.type('image/png').header('cache-control', 'private, max-age=86400').send(png)
  })
}
