import type { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { InstanceRecord, StudyRecord } from '../store/records.ts'
import type { AuditSink } from '../audit/audit-log.ts'
import { recordShown } from '../audit/events.ts'
import type { ViewRecords } from '../audit/view-records.ts'
import type { StudyStore } from '../store/study-store.ts'
import { parseAccept } from './multipart.ts'
import type { QueryLevel, QueryRow } from './qido.ts'
import { registerRenderedRoutes } from './rendered-routes.ts'
import { checkInstanceAccept, instanceParts, instancesOf, type Target } from './retrieve.ts'
import { search, type SearchScope } from './search.ts'
import { storeInstances, warningHeader } from './stow.ts'
import { instanceUrl as instanceUrlUnder, replyBulkData, replyFrames, replyMetadata, sendMultipart, targetOf, type WadoParams } from './wado-replies.ts'

/*
 * DICOMweb on the node's HTTP server under /dicomweb: QIDO-RS search, WADO-RS retrieve and
 * STOW-RS store (PS3.18), so a PACS, a viewer or a DICOMweb client works with a node unchanged.
 * Errors are the node's {code, message} JSON with the status the standard expects.
 */

export const DICOMWEB_PREFIX = '/dicomweb'

export interface DicomwebInit {
  /** most results one search returns (a client pages with offset) */
  maxResults?: number
  /** most instances one STOW-RS request may carry */
  maxStowParts?: number
}

type Params = WadoParams

export function registerDicomweb (app: FastifyInstance, deps: { store: StudyStore, logger: Logger, audit?: AuditSink, views: ViewRecords }, init: DicomwebInit = {}): void {
  const { store, audit, views } = deps
  const auditShown = async (req: FastifyRequest, event: string, outcome: string, studies: StudyRecord[]): Promise<void> => recordShown(audit, req, 'DICOMweb', event, outcome, studies)
  // What a viewer reads image by image (metadata, frames, bulk data): one 'view' per caller per study per 30 minutes (view-records.ts), not per request.
  const auditViewed = async (req: FastifyRequest<{ Params: Params }>, outcome: string): Promise<void> =>
    views.viewed(req, 'DICOMweb', outcome, req.params.study!, async () => store.getStudyRecord(req.params.study!))
  const logger = deps.logger.child({ component: 'dicomweb' })
  const maxResults = init.maxResults ?? 1000
  const maxStowParts = init.maxStowParts ?? 100_000

  // STOW-RS bodies are read as a stream by the handler, never by fastify (no body limit applies).
  app.addContentTypeParser('multipart/related', (_req, payload, done) => { done(null, payload) })

  const base = (req: FastifyRequest): string => `${req.protocol}://${req.host}${DICOMWEB_PREFIX}`
  const studyUrl = (req: FastifyRequest, study: string): string => `${base(req)}/studies/${study}`
  const seriesUrl = (req: FastifyRequest, study: string, series: string): string => `${studyUrl(req, study)}/series/${series}`
  const instanceUrl = (req: FastifyRequest, i: Pick<InstanceRecord, 'studyInstanceUID' | 'seriesInstanceUID' | 'sopInstanceUID'>): string => instanceUrlUnder(base(req), i)

  // ---- QIDO-RS
  const searchRoute = (level: QueryLevel) => async (req: FastifyRequest<{ Params: Params, Querystring: Record<string, string | string[]> }>, reply: FastifyReply) => {
    const target: Partial<Target> = req.params.study === undefined ? {} : targetOf(req.params)
    const scope: SearchScope = { studyInstanceUID: target.studyInstanceUID, seriesInstanceUID: target.seriesInstanceUID }
    const retrieveUrl = (l: QueryLevel, row: QueryRow): string =>
      l === 'study' ? studyUrl(req, row.study.studyInstanceUID) : l === 'series' ? seriesUrl(req, row.study.studyInstanceUID, row.series!.seriesInstanceUID) : instanceUrl(req, row.instance!)
    const { results, warnings, studies } = await search(store, level, req.query, scope, { maxResults, retrieveUrl })
    await auditShown(req, 'query', `${results.length} results`, studies)
    // A header is ASCII only: anything else (there should be nothing) becomes '?'.
    if (warnings.length > 0) void reply.header('warning', warnings.map((w) => `299 beeldnet "${w.replace(/"/g, '\'').replace(/[^\x20-\x7e]/g, '?')}"`).join(', '))
    return reply.type('application/dicom+json').send(results)
  }
  app.get(`${DICOMWEB_PREFIX}/studies`, searchRoute('study'))
  app.get(`${DICOMWEB_PREFIX}/series`, searchRoute('series'))
  app.get(`${DICOMWEB_PREFIX}/instances`, searchRoute('instance'))
  app.get(`${DICOMWEB_PREFIX}/studies/:study/series`, searchRoute('series'))
  app.get(`${DICOMWEB_PREFIX}/studies/:study/instances`, searchRoute('instance'))
  app.get(`${DICOMWEB_PREFIX}/studies/:study/series/:series/instances`, searchRoute('instance'))

  // ---- WADO-RS (what a viewer reads is in wado-replies.ts, shared with a patient's share link)
  const retrieveRoute = async (req: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
    const instances = await instancesOf(store, targetOf(req.params))
    const transferSyntax = checkInstanceAccept(parseAccept(req.headers.accept), instances)
    // Whole instances are a copy of the patient's files leaving the node (a PACS, a download): each is recorded.
    await auditShown(req, 'view', `${instances.length} instances`, [await store.getStudyRecord(req.params.study!)])
    return sendMultipart(reply, 'application/dicom', instanceParts(store, instances, (i) => instanceUrl(req, i), transferSyntax))
  }
  app.get(`${DICOMWEB_PREFIX}/studies/:study`, retrieveRoute)
  app.get(`${DICOMWEB_PREFIX}/studies/:study/series/:series`, retrieveRoute)
  app.get(`${DICOMWEB_PREFIX}/studies/:study/series/:series/instances/:instance`, retrieveRoute)

  const metadataRoute = async (req: FastifyRequest<{ Params: Params }>, reply: FastifyReply) =>
    replyMetadata(store, req, reply, base(req), async (outcome) => auditViewed(req, outcome))
  app.get(`${DICOMWEB_PREFIX}/studies/:study/metadata`, metadataRoute)
  app.get(`${DICOMWEB_PREFIX}/studies/:study/series/:series/metadata`, metadataRoute)
  app.get(`${DICOMWEB_PREFIX}/studies/:study/series/:series/instances/:instance/metadata`, metadataRoute)

  app.get(`${DICOMWEB_PREFIX}/studies/:study/series/:series/instances/:instance/bulkdata/:tag`, async (req: FastifyRequest<{ Params: Params }>, reply) =>
    replyBulkData(store, req, reply, async (outcome) => auditViewed(req, outcome)))

  app.get(`${DICOMWEB_PREFIX}/studies/:study/series/:series/instances/:instance/frames/:frames`, async (req: FastifyRequest<{ Params: Params }>, reply) =>
    replyFrames(store, req, reply, async (outcome) => auditViewed(req, outcome)))

  registerRenderedRoutes(app, DICOMWEB_PREFIX, { store, views })

  // ---- STOW-RS
  const storeRoute = async (req: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
    const study = req.params.study === undefined ? undefined : targetOf(req.params).studyInstanceUID
    const contentType = req.headers['content-type'] ?? ''
    const outcome = await storeInstances(store, logger, req.body as Readable, contentType, study, {
      maxParts: maxStowParts,
      retrieveUrl: (s) => instanceUrl(req, s),
      studyUrl: (uid) => studyUrl(req, uid)
    })
    // Parts are committed now: whatever fails from here on is logged, and the answer is still per part.
    try {
      const storedStudies = (await Promise.all(outcome.studies.map(async (uid) => store.index.getStudy(uid)))).filter((x): x is StudyRecord => x !== undefined)
      await auditShown(req, 'store-received', `STOW-RS: ${outcome.status}`, storedStudies)
    } catch (err) {
      logger.error({ err, studies: outcome.studies }, 'the audit trail did not take a STOW-RS store; the stored parts are answered as stored')
    }
    const warning = warningHeader(outcome.reasons)
    if (warning !== undefined) void reply.header('warning', warning)
    return reply.status(outcome.status).type('application/dicom+json').send(outcome.body)
  }
  app.post(`${DICOMWEB_PREFIX}/studies`, storeRoute)
  app.post(`${DICOMWEB_PREFIX}/studies/:study`, storeRoute)
}
