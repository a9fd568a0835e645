import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Readable } from 'node:stream'
import { z } from 'zod'
import { parseDocument } from '../../protocol/registry/documents.ts'
import type { AuditSink } from '../audit/audit-log.ts'
import { auditRequester, recordImported } from '../audit/events.ts'
import type { StudyStore } from '../store/study-store.ts'
import { BadRequestError } from './errors.ts'
import type { ImportSessions } from './import-sessions.ts'

/*
 * `/api/imports`: files into the running node, streamed one request per file (the CLI's
 * `node import` beside a running node, the "Import media" page of IT and clinicians):
 *   POST   /api/imports                {files?: names}  -> 201 {id, dicomdirs}
 *   PUT    /api/imports/:id/dicomdir?path=NAME  (bytes) -> what the DICOMDIR lists
 *   GET    /api/imports/:id/plan                        -> {files, missing, warnings, overview: {patients, unlisted}, picked?}
 *   POST   /api/imports/:id/pick           {studies}    -> the plan narrowed to those studies (before the first file)
 *   PUT    /api/imports/:id/files?path=NAME     (bytes) -> {outcome, received}
 *   POST   /api/imports/:id/commit                      -> the per-file report of `node import`
 *   DELETE /api/imports/:id                             -> everything staged dropped
 * Bodies of PUT are application/octet-stream and go to the store's staging as they arrive.
 */

const BeginBody = z.strictObject({ files: z.array(z.string().max(1024)).max(100_000).optional() })
const NameQuery = z.strictObject({ path: z.string().min(1).max(4096) })
const PickBody = z.strictObject({ studies: z.array(z.string().min(1).max(64)).min(1).max(10_000) })

/** Announced names of a large medium: more than the API's usual 1 MiB of JSON. */
const MAX_BEGIN_BYTES = 16 * 1024 * 1024

export function registerImportRoutes (app: FastifyInstance, components: { store: StudyStore, sessions: ImportSessions, audit?: AuditSink }): void {
  const { store, sessions, audit } = components
  const owner = (req: FastifyRequest): string => `${req.caller?.kind ?? 'anonymous'}:${req.caller?.name ?? req.ip}`
  const nameOf = (req: FastifyRequest): string => {
    const parsed = NameQuery.safeParse(req.query)
    if (!parsed.success) throw new BadRequestError('give the file\'s name as ?path=...')
    return parsed.data.path
  }
  const bytesOf = (req: FastifyRequest): Readable => {
    if (req.body === undefined || req.body === null || typeof (req.body as Readable).pipe !== 'function') throw new BadRequestError('send the file\'s bytes as Content-Type: application/octet-stream')
    return req.body as Readable
  }
  const cutOff = (req: FastifyRequest): AbortSignal => {
    const controller = new AbortController()
    // Not the file's outcome (a plain error): the caller is gone, and a retry of the file must not be named twice.
    req.raw.once('close', () => { if (!req.raw.complete) controller.abort(new Error('the upload was cut off')) })
    return controller.signal
  }

  app.addHook('onClose', async () => { await sessions.close() })

  app.register(async (scope) => {
    // The bytes of a file are streamed on, never parsed or held.
    scope.addContentTypeParser(['application/octet-stream', 'application/dicom'], (_req, payload, done) => { done(null, payload) })

    scope.post('/api/imports', { bodyLimit: MAX_BEGIN_BYTES }, async (req, reply) => {
      const body = parseDocument(BeginBody, req.body ?? {}, 'import')
      return reply.status(201).send(sessions.begin(owner(req), body.files))
    })

    scope.put<{ Params: { id: string } }>('/api/imports/:id/dicomdir', async (req) => sessions.addDicomdir(owner(req), req.params.id, nameOf(req), bytesOf(req)))

    scope.get<{ Params: { id: string } }>('/api/imports/:id/plan', async (req) => sessions.plan(owner(req), req.params.id))

    scope.post<{ Params: { id: string } }>('/api/imports/:id/pick', async (req) => {
      const body = parseDocument(PickBody, req.body ?? {}, 'pick')
      return sessions.pick(owner(req), req.params.id, body.studies)
    })

    scope.put<{ Params: { id: string } }>('/api/imports/:id/files', async (req) => sessions.addFile(owner(req), req.params.id, nameOf(req), bytesOf(req), cutOff(req)))

    scope.post<{ Params: { id: string } }>('/api/imports/:id/commit', async (req) => {
      const summary = await sessions.commit(owner(req), req.params.id)
      req.log.info({ caller: owner(req), files: summary.files, stored: summary.stored, duplicates: summary.duplicates, rejected: summary.rejected.length, studies: summary.studies.length }, 'import committed')
      // As STOW-RS is: one record per study that received instances, with who sent them.
      await recordImported(audit, summary.studies, async (uid) => store.getStudyRecord(uid), auditRequester(req, 'API'), { path: req.url.split('?')[0]! })
      return summary
    })

    scope.delete<{ Params: { id: string } }>('/api/imports/:id', async (req) => {
      await sessions.abort(owner(req), req.params.id)
      return { aborted: req.params.id }
    })
  })
}
