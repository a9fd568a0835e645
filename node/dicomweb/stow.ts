import type { Readable } from 'node:stream'
import type { Logger } from 'pino'
import { isBeeldnetError } from '../../protocol/errors.ts'
import type { StudyStore } from '../store/study-store.ts'
import type { DicomJson } from './dicom-json.ts'
import { MultipartError } from './errors.ts'
import { parseMediaType, readMultipart } from './multipart.ts'

/*
 * STOW-RS (PS3.18 10.5): each part of a multipart/related body is staged into the store as it
 * arrives (streamed to disk, header checked), and the staged instances are committed together
 * when the body ends well. A body that breaks off or is not valid multipart commits nothing.
 * The answer lists what was stored and what failed with a reason (PS3.18 Table 10.5.3-1).
 */

/** Failure Reason (0008,1197) values of PS3.4 / PS3.18 used here. */
export const FailureReason = {
  /** the part is not a DICOM instance this node can read */
  cannotUnderstand: 0xC000,
  /** the instance's Study Instance UID is not the one in the URL */
  studyMismatch: 0xA900,
  /** another instance is stored under this SOP Instance UID */
  duplicateSopInstance: 0x0111,
  processingFailure: 0x0110
} as const

export interface StowOutcome {
  /** 200 all stored, 202 some failed, 409 none stored */
  status: number
  body: DicomJson
  /** why each failed part failed, in words (the response's Warning header; the standard body has codes only) */
  reasons: string[]
  /** the studies instances were stored into */
  studies: string[]
}

interface Stored { sopClassUID: string, sopInstanceUID: string, studyInstanceUID: string, seriesInstanceUID: string }
interface Failed { sopClassUID?: string, sopInstanceUID?: string, reason: number, message: string }

export interface StowInit {
  maxParts: number
  retrieveUrl: (stored: Stored) => string
  studyUrl: (studyInstanceUID: string) => string
}

export async function storeInstances (store: StudyStore, logger: Logger, body: Readable, contentType: string, studyInstanceUID: string | undefined, init: StowInit): Promise<StowOutcome> {
  const media = parseMediaType(contentType)
  const partType = media.params.type?.toLowerCase()
  if (partType !== undefined && partType !== 'application/dicom') {
    throw new MultipartError(`this node takes multipart/related; type="application/dicom" (DICOM JSON and bulk data uploads are not supported), not type="${partType}"`)
  }
  const session = store.beginImport()
  const staged: Stored[] = []
  const failed: Failed[] = []
  try {
    for await (const part of readMultipart(body, media.params.boundary ?? '', { maxParts: init.maxParts })) {
      const type = parseMediaType(part.headers['content-type'] ?? partType ?? 'application/dicom').type
      if (type !== 'application/dicom') {
        part.body.resume()
        failed.push({ reason: FailureReason.cannotUnderstand, message: `a part of type ${type}, not application/dicom` })
        continue
      }
      try {
        const outcome = await session.add(part.body)
        const h = outcome.header
        if (studyInstanceUID !== undefined && h.studyInstanceUID !== studyInstanceUID) {
          // Staged already: the session discards it unless committed, so take it out of the batch.
          failed.push({ sopClassUID: h.sopClassUID, sopInstanceUID: h.sopInstanceUID, reason: FailureReason.studyMismatch, message: `the instance belongs to study ${h.studyInstanceUID}, not ${studyInstanceUID}` })
          await session.drop(h.studyInstanceUID, h.sopInstanceUID)
          continue
        }
        staged.push({ sopClassUID: h.sopClassUID, sopInstanceUID: h.sopInstanceUID, studyInstanceUID: h.studyInstanceUID, seriesInstanceUID: h.seriesInstanceUID })
      } catch (err) {
        if (!isBeeldnetError(err)) throw err
        part.body.resume()
        failed.push({ reason: FailureReason.cannotUnderstand, message: `${err.code}: ${err.message}` })
      }
    }
    const results = await session.commit()
    const rejected = new Map(results.flatMap((r) => r.rejected.map((x) => [x.sopInstanceUID, x] as const)))
    const stored = staged.filter((s) => !rejected.has(s.sopInstanceUID))
    for (const s of staged) {
      const r = rejected.get(s.sopInstanceUID)
      if (r === undefined) continue
      failed.push({ sopClassUID: s.sopClassUID, sopInstanceUID: s.sopInstanceUID, reason: r.code === 'BEELDNET_ERR_INSTANCE_CONFLICT' ? FailureReason.duplicateSopInstance : FailureReason.processingFailure, message: `${r.code}: ${r.message}` })
    }
    if (stored.length > 0 || failed.length > 0) logger.info({ stored: stored.length, failed: failed.map((f) => f.message) }, 'STOW-RS')
    return {
      status: failed.length === 0 ? 200 : stored.length === 0 ? 409 : 202,
      body: responseBody(stored, failed, studyInstanceUID, init),
      reasons: failed.map((f) => f.sopInstanceUID === undefined ? f.message : `${f.sopInstanceUID}: ${f.message}`),
      studies: [...new Set(stored.map((x) => x.studyInstanceUID))]
    }
  } catch (err) {
    await session.abort()
    throw err
  }
}

function responseBody (stored: Stored[], failed: Failed[], studyInstanceUID: string | undefined, init: StowInit): DicomJson {
  const body: DicomJson = {}
  const study = studyInstanceUID ?? (new Set(stored.map((s) => s.studyInstanceUID)).size === 1 ? stored[0]!.studyInstanceUID : undefined)
  if (study !== undefined) body['00081190'] = { vr: 'UR', Value: [init.studyUrl(study)] }
  if (failed.length > 0) {
    body['00081198'] = {
      vr: 'SQ',
      Value: failed.map((f) => ({
        ...(f.sopClassUID === undefined ? {} : { '00081150': { vr: 'UI', Value: [f.sopClassUID] } }),
        ...(f.sopInstanceUID === undefined ? {} : { '00081155': { vr: 'UI', Value: [f.sopInstanceUID] } }),
        '00081197': { vr: 'US', Value: [f.reason] }
      }))
    }
  }
  if (stored.length > 0) {
    body['00081199'] = {
      vr: 'SQ',
      Value: stored.map((s) => ({
        '00081150': { vr: 'UI', Value: [s.sopClassUID] },
        '00081155': { vr: 'UI', Value: [s.sopInstanceUID] },
        '00081190': { vr: 'UR', Value: [init.retrieveUrl(s)] }
      }))
    }
  }
  return body
}
