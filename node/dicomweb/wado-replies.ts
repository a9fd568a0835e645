import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { isValidUid } from '../dicom/instance-header.ts'
import type { InstanceRecord } from '../store/records.ts'
import type { StudyStore } from '../store/study-store.ts'
import { BadPathError } from './errors.ts'
import { multipartBody, newBoundary, parseAccept, type OutgoingPart } from './multipart.ts'
import { bulkDataPart, checkJsonAccept, frameParts, instancesOf, metadataOf, type Target } from './retrieve.ts'

/*
 * The WADO-RS answers a viewer reads a study with (metadata, frames, bulk data), apart from the
 * routes that serve them: the node's /dicomweb as a clinician and a patient's share link
 * (/share/<token>/dicomweb) give the same answers. `viewed` is called before the first byte
 * leaves (the caller's audit record of the view); `base` is the DICOMweb root the bulk data
 * URIs point under.
 */

export interface WadoParams { study?: string, series?: string, instance?: string, tag?: string, frames?: string }

/** The study, series and instance a path names, each checked to be a UID. */
export function targetOf (params: WadoParams): Target {
  for (const uid of [params.study, params.series, params.instance]) {
    if (uid !== undefined && !isValidUid(uid)) throw new BadPathError(uid)
  }
  return { studyInstanceUID: params.study!, seriesInstanceUID: params.series, sopInstanceUID: params.instance }
}

export function instanceUrl (base: string, i: Pick<InstanceRecord, 'studyInstanceUID' | 'seriesInstanceUID' | 'sopInstanceUID'>): string {
  return `${base}/studies/${i.studyInstanceUID}/series/${i.seriesInstanceUID}/instances/${i.sopInstanceUID}`
}

export function sendMultipart (reply: FastifyReply, type: string, parts: AsyncIterable<OutgoingPart> | Iterable<OutgoingPart>): FastifyReply {
  const boundary = newBoundary()
  return reply
    .type(`multipart/related; type="${type}"; boundary=${boundary}`)
    .send(Readable.from(multipartBody(toAsync(parts), boundary), { objectMode: false }))
}

export async function replyMetadata (store: StudyStore, req: FastifyRequest<{ Params: WadoParams }>, reply: FastifyReply, base: string, viewed: (outcome: string) => Promise<void>): Promise<FastifyReply> {
  const instances = await instancesOf(store, targetOf(req.params))
  checkJsonAccept(parseAccept(req.headers.accept))
  await viewed(`metadata of ${instances.length} instances`)
  return reply.type('application/dicom+json').send(Readable.from(jsonArray(metadataOf(store, instances, (i) => instanceUrl(base, i)))))
}

export async function replyFrames (store: StudyStore, req: FastifyRequest<{ Params: WadoParams }>, reply: FastifyReply, viewed: (outcome: string) => Promise<void>): Promise<FastifyReply> {
  const [instance] = await instancesOf(store, targetOf(req.params))
  const frames = req.params.frames!.split(',').map((f) => /^[0-9]{1,9}$/.test(f.trim()) ? Number(f) : NaN)
  if (frames.some((f) => Number.isNaN(f))) throw new BadPathError(req.params.frames!, 'frame numbers are whole numbers separated by commas')
  await viewed(`frames ${frames.join(',')} of ${instance!.sopInstanceUID}`)
  const asStored = parseAccept(req.headers.accept).some((m) => m.params['transfer-syntax'] === '*')
  return sendMultipart(reply, 'application/octet-stream', [...frameParts(store, instance!, frames, asStored)])
}

export async function replyBulkData (store: StudyStore, req: FastifyRequest<{ Params: WadoParams }>, reply: FastifyReply, viewed: (outcome: string) => Promise<void>): Promise<FastifyReply> {
  const [instance] = await instancesOf(store, targetOf(req.params))
  await viewed(`bulk data ${req.params.tag!.toUpperCase()} of ${instance!.sopInstanceUID}`)
  return sendMultipart(reply, 'application/octet-stream', [bulkDataPart(store, instance!, req.params.tag!.toUpperCase())])
}

async function * toAsync<T> (items: AsyncIterable<T> | Iterable<T>): AsyncGenerator<T> {
  yield * items
}

/** A JSON array written element by element. */
async function * jsonArray (items: AsyncIterable<unknown>): AsyncGenerator<string> {
  let first = true
  yield '['
  for await (const item of items) {
    yield (first ? '' : ',') + JSON.stringify(item)
    first = false
  }
  yield ']'
}
