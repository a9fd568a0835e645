import { existsSync } from 'node:fs'
import { join } from 'node:path'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { isValidUid } from '../dicom/instance-header.ts'
import { BadRequestError } from './errors.ts'

/*
 * The web app's built files (web/dist, made by `npm run build:web`) at `/`. They hold no patient
 * data, so they need no login: the app logs in against the API. Hashed asset names never change,
 * so they are cached for long; index.html is always asked again.
 */

export const WEB_APP_DIR = join(import.meta.dirname, '..', '..', 'web', 'dist')

export function registerWebApp (app: FastifyInstance, dir = WEB_APP_DIR): boolean {
  if (!existsSync(join(dir, 'index.html'))) return false
  const setHeaders = (res: FastifyReply, path: string): void => {
    void res.header('cache-control', path.includes(`${join('assets', '')}`) ? 'public, max-age=31536000, immutable' : 'no-cache')
  }
  void app.register(fastifyStatic, { root: dir, prefix: '/', index: 'index.html', wildcard: true, setHeaders })
  // A patient's share link (/share/<token>) is the same app, which looks at its own path; built with
  // a relative base, it asks for ./assets/..., that is /share/assets/...: the same files, so that IT
  // can expose /share/ alone. Whether the token is a link's is said by nothing here.
  void app.register(fastifyStatic, { root: join(dir, 'assets'), prefix: '/share/assets/', wildcard: true, decorateReply: false, setHeaders })
  app.get('/share/:token', async (_req, reply) => reply.sendFile('index.html'))
  return true
}

/**
 * Links into the web app that another system can make without knowing it routes by hash (a PACS
 * or an EPD opening a study in the viewer): each answers with a redirect to the app's own route.
 * Open like the app's files: the redirect names only a UID, and the app keeps the hash through its login.
 */
export function registerDeepLinks (app: FastifyInstance): void {
  app.get<{ Params: { uid: string } }>('/viewer/studies/:uid', async (req, reply) => {
    const uid = req.params.uid
    if (!isValidUid(uid)) throw new BadRequestError(`${JSON.stringify(uid.slice(0, 80))} is not a Study Instance UID: digits and dots, at most 64 characters`)
    return reply.redirect(`/#/viewer/studies/${encodeURIComponent(uid)}`, 302)
  })
}
