import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { createThumbnailer } from '../imaging/thumbnail.ts'
import type { StudyStore } from '../store/study-store.ts'

/*
 * Series thumbnails for the web app: a PNG of at most 128 x 128 of the series' middle image.
 * Clinicians only (the /api/studies prefix in auth.ts). Not audited on its own: the study page
 * that shows them records the view. Cacheable by the browser for a day, never by a proxy.
 */
export function registerThumbnailRoutes (app: FastifyInstance, deps: { store: StudyStore, cacheDir: string, logger: Logger }): void {
  const thumbnailer = createThumbnailer({ store: deps.store, logger: deps.logger.child({ component: 'thumbnails' }) }, { cacheDir: deps.cacheDir })

  app.get<{ Params: { uid: string, seriesUid: string } }>('/api/studies/:uid/series/:seriesUid/thumbnail', async (req, reply) => {
    const png = await thumbnailer.thumbnail(req.params.uid, req.params.seriesUid)
    return reply.type('image/png').header('cache-control', 'private, max-age=86400').send(png)
  })
}
