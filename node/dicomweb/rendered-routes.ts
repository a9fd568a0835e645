import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import PQueue from 'p-queue'
import type { ViewRecords } from '../audit/view-records.ts'
import { isValidUid } from '../dicom/instance-header.ts'
import { FrameNotFoundError, NoImageError, NoPixelDataError, ThumbnailTooLargeError } from '../imaging/errors.ts'
import { renderStoredFrame } from '../imaging/stored-frame-image.ts'
import { middleImageOf } from '../imaging/thumbnail.ts'
import type { InstanceRecord } from '../store/records.ts'
import type { StudyStore } from '../store/study-store.ts'
import { BadPathError, RenderParameterError } from './errors.ts'
import { renderParameters } from './rendered-params.ts'
import { instancesOf } from './retrieve.ts'

/*
 * DICOMweb's rendered resources (PS3.18 8.3.5, 10.4): an instance or one of its frames as JPEG or
 * PNG, windowed and scaled as asked, and thumbnails of studies, series, instances and frames. One
 * frame is read from the stored file and drawn alone, so a multi-frame instance of any size costs
 * one frame's memory; a few renders run at a time. A rendered image is a view of its study in the
 * audit trail, recorded as the other WADO-RS routes' are (once per caller per study per 30 minutes).
 */

export interface RenderedInit {
  /** renders at a time (default 2): each holds one frame and its RGBA drawing */
  concurrency?: number
  /** longest side of a thumbnail without a viewport (default 128) */
  thumbnailSide?: number
  /** largest frame drawn, as RGBA bytes (default 64 MiB) */
  maxRgbaBytes?: number
}

interface Params { study: string, series?: string, instance?: string, frames?: string }
type Request = FastifyRequest<{ Params: Params, Querystring: Record<string, string | string[] | undefined> }>

export function registerRenderedRoutes (app: FastifyInstance, prefix: string, deps: { store: StudyStore, views: ViewRecords }, init: RenderedInit = {}): void {
  const { store, views } = deps
  const queue = new PQueue({ concurrency: init.concurrency ?? 2 })
  const thumbnailSide = init.thumbnailSide ?? 128
  const maxRgbaBytes = init.maxRgbaBytes ?? 64 * 1024 * 1024

  const checkUids = (params: Params): void => {
    for (const uid of [params.study, params.series, params.instance]) {
      if (uid !== undefined && !isValidUid(uid)) throw new BadPathError(uid)
    }
  }

  const frameNumber = (params: Params): number => {
    if (params.frames === undefined) return 1
    const value = params.frames.trim()
    if (value.includes(',')) throw new RenderParameterError('frames', value, 'one frame is rendered at a time')
    if (!/^[0-9]{1,9}$/.test(value)) throw new BadPathError(value, 'a frame number is a whole number from 1')
    return Number(value)
  }

  /** The image instance an instance or frame path names, checked drawable before a byte of it is read. */
  const imageInstance = async (params: Params): Promise<InstanceRecord> => {
    const [instance] = await instancesOf(store, { studyInstanceUID: params.study, seriesInstanceUID: params.series, sopInstanceUID: params.instance })
    if (instance!.isReport || (instance!.rows ?? 0) === 0 || (instance!.columns ?? 0) === 0) throw new NoPixelDataError(instance!.sopInstanceUID, instance!.sopClassUID)
    return instance!
  }

  /** A series' or study's thumbnail shows the middle image of the (first) series, as the web app's does. */
  const middleImage = async (params: Params): Promise<InstanceRecord> => {
    const all = await instancesOf(store, { studyInstanceUID: params.study, seriesInstanceUID: params.series })
    const series = all.find((i) => !i.isReport && (i.rows ?? 0) > 0 && (i.columns ?? 0) > 0)?.seriesInstanceUID
    const middle = middleImageOf(all.filter((i) => i.seriesInstanceUID === series))
    if (middle === undefined) throw params.series === undefined ? new NoImageError(params.study, 'study') : new NoImageError(params.series)
    return middle
  }

  const render = async (req: Request, reply: FastifyReply, instance: InstanceRecord, frame: number, kind: 'rendered' | 'thumbnail'): Promise<FastifyReply> => {
    if (frame < 1 || frame > instance.frames) throw new FrameNotFoundError(instance.sopInstanceUID, instance.frames, frame)
    const size = { rows: instance.rows!, columns: instance.columns! }
    const parameters = renderParameters(req.query, req.headers.accept, size, { window: kind === 'rendered' })
    const rgba = size.rows * size.columns * 4
    if (rgba > maxRgbaBytes) throw new ThumbnailTooLargeError(instance.sopInstanceUID, `${size.columns} x ${size.rows} pixels, ${rgba} bytes drawn, the limit is ${maxRgbaBytes}`)
    const image = await queue.add(async () => renderStoredFrame(store.blobs.pathOf(instance.sha256), instance, frame,
      { ...parameters, ...(kind === 'thumbnail' && parameters.viewport === undefined ? { maxSide: thumbnailSide } : {}) }))
    await views.viewed(req, 'DICOMweb', `${kind} frame ${frame} of ${instance.sopInstanceUID}`, instance.studyInstanceUID, async () => store.getStudyRecord(instance.studyInstanceUID))
    return reply.type(parameters.format === 'png' ? 'image/png' : 'image/jpeg').header('cache-control', 'private, max-age=86400').send(image.bytes)
  }

  const instanceRoute = (kind: 'rendered' | 'thumbnail') => async (req: Request, reply: FastifyReply) => {
    checkUids(req.params)
    const frame = frameNumber(req.params)
    return render(req, reply, await imageInstance(req.params), frame, kind)
  }
  const instancePath = `${prefix}/studies/:study/series/:series/instances/:instance`
  app.get(`${instancePath}/rendered`, instanceRoute('rendered'))
  app.get(`${instancePath}/frames/:frames/rendered`, instanceRoute('rendered'))
  app.get(`${instancePath}/thumbnail`, instanceRoute('thumbnail'))
  app.get(`${instancePath}/frames/:frames/thumbnail`, instanceRoute('thumbnail'))

  const groupThumbnail = async (req: Request, reply: FastifyReply) => {
    checkUids(req.params)
    return render(req, reply, await middleImage(req.params), 1, 'thumbnail')
  }
  app.get(`${prefix}/studies/:study/thumbnail`, groupThumbnail)
  app.get(`${prefix}/studies/:study/series/:series/thumbnail`, groupThumbnail)
}
