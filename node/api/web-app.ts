import { existsSync } from 'node:fs'
import { join } from 'node:path'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'

/*
 * The web app's built files (web/dist, made by `npm run build:web`) at `/`. They hold no patient
 * data, so they need no login: the app logs in against the API. Hashed asset names never change,
 * so they are cached for long; index.html is always asked again.
 */

export const WEB_APP_DIR = join(import.meta.dirname, '..', '..', 'web', 'dist')

export function registerWebApp (app: FastifyInstance, dir = WEB_APP_DIR): boolean {
  if (!existsSync(join(dir, 'index.html'))) return false
  void app.register(fastifyStatic, {
    root: dir,
    prefix: '/',
    index: 'index.html',
    wildcard: true,
    setHeaders: (res, path) => {
      void res.header('cache-control', path.includes(`${join('assets', '')}`) ? 'public, max-age=31536000, immutable' : 'no-cache')
    }
  })
  return true
}
