import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { StudyStore } from '../store/study-store.ts'

/* Series thumbnails for the web app (to be built). */

export function registerThumbnailRoutes (_app: FastifyInstance, _deps: { store: StudyStore, cacheDir: string, logger: Logger }): void {}
