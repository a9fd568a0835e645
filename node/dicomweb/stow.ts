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

/** Failure Reason (0008,1197) values of PS3.18 Table 10.5.3-1 (the C-STORE failures of PS3.4 B.2.3) used here. */
export const FailureReason = {
  /**
   * the part is not a DICOM instance this node can read, or it is refused for good: it contradicts
   * an instance held under its SOP Instance UID (store.duplicates) or names another patient than its study
   */
  cannotUnderstand: 0xC000,
  /** the instance's Study Instance UID is not the one in the URL */
  studyMismatch: 0xA900,
  /** the node could not commit it (a disk, the index): nothing of its study was stored; try again */
  processingFailure: 0x0110,
  /** Refused: Out of Resources (PS3.4 B.2.3): the node's disk is full (BEELDNET_ERR_DISK_FULL); try again later */
  outOfResources: 0xA700
} as const

/** At most this many reasons, each at most this long, go into the Warning header (the body has every part). */
const WARNING_REASONS = 10
const WARNING_REASON_CHARS = 200

export interface StowOutcome {
  /** 200 all stored, 202 some failed, 409 none stored, 507 none stored because the disk is full */
  status: number
  body: DicomJson
  /** why each failed part failed, in words (the response's Warning header; the standard body has codes only) */
  reasons: string[]
  /** the studies instances were stored into */
  studies: string[]
}

interface Stored { sopClassUID: string, sopInstanceUID: string, studyInstanceUID: string, seriesInstanceUID: string }
interface Staged extends Stored { sha256: string }
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
  const session = store.beginImport({ origin: 'STOW-RS', via: 'stow' })
  const staged: Staged[] = []
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
        const outcome = await session.add(chunksOf(part.body))
        const h = outcome.header
        if (studyInstanceUID !== undefined && h.studyInstanceUID !== studyInstanceUID) {
          // Staged already: the session discards it unless committed, so take it out of the batch.
          failed.push({ sopClassUID: h.sopClassUID, sopInstanceUID: h.sopInstanceUID, reason: FailureReason.studyMismatch, message: `the instance belongs to study ${h.studyInstanceUID}, not ${studyInstanceUID}` })
          if (outcome.status === 'staged') await session.drop(h.studyInstanceUID, outcome.sha256)
          continue
        }
        staged.push({ sopClassUID: h.sopClassUID, sopInstanceUID: h.sopInstanceUID, studyInstanceUID: h.studyInstanceUID, seriesInstanceUID: h.seriesInstanceUID, sha256: outcome.sha256 })
      } catch (err) {
        if (!isBeeldnetError(err)) throw err
        part.body.resume()
        failed.push({ reason: err.code === 'BEELDNET_ERR_DISK_FULL' ? FailureReason.outOfResources : FailureReason.cannotUnderstand, message: `${err.code}: ${err.message}` })
      }
    }
    // Each part is answered by its own file's outcome (by hash: one request may carry one SOP
    // Instance UID twice, in two encodings), and a study whose commit failed fails only its parts.
    const settled = await session.commitSettled()
    const outcomes = new Map(settled.flatMap((s) => 'result' in s ? s.result.outcomes.map((o) => [o.sha256, o] as const) : []))
    const failedStudies = new Map(settled.flatMap((s) => 'error' in s ? [[s.studyInstanceUID, s.error] as const] : []))
    for (const [studyUID, err] of failedStudies) logger.error({ err, study: studyUID }, 'STOW-RS: a study\'s commit failed; its parts are answered as failed')
    const stored: Stored[] = []
    for (const s of staged) {
      const { sha256, ...part } = s
      const outcome = outcomes.get(sha256)
      if (outcome !== undefined && outcome.outcome !== 'refused') stored.push(part)
      else if (outcome !== undefined) failed.push({ sopClassUID: s.sopClassUID, sopInstanceUID: s.sopInstanceUID, reason: FailureReason.cannotUnderstand, message: `${outcome.code ?? ''}: ${outcome.message ?? ''}` })
      else {
        const err = failedStudies.get(s.studyInstanceUID)
        const full = isBeeldnetError(err) && err.code === 'BEELDNET_ERR_DISK_FULL'
        failed.push({ sopClassUID: s.sopClassUID, sopInstanceUID: s.sopInstanceUID, reason: full ? FailureReason.outOfResources : FailureReason.processingFailure, message: full ? `${err.code}: ${err.message}` : `BEELDNET_ERR_INTERNAL: ${String((err as Error | undefined)?.message ?? 'not committed')}` })
      }
    }
    // Nothing taken for want of space: 507 Insufficient Storage, which tells the sender to come back.
    const full = stored.length === 0 && failed.length > 0 && failed.every((f) => f.reason === FailureReason.outOfResources)
    if (full) logger.warn({ code: 'BEELDNET_ERR_DISK_FULL', failed: failed.length, reason: failed[0]!.message }, 'STOW-RS refused: the store is full')
    else if (stored.length > 0 || failed.length > 0) logger.info({ stored: stored.length, failed: failed.map((f) => f.message) }, 'STOW-RS')
    return {
      status: failed.length === 0 ? 200 : full ? 507 : stored.length === 0 ? 409 : 202,
      body: responseBody(stored, failed, studyInstanceUID, init),
      reasons: failed.map((f) => f.sopInstanceUID === undefined ? f.message : `${f.sopInstanceUID}: ${f.message}`),
      studies: [...new Set(stored.map((x) => x.studyInstanceUID))]
    }
  } catch (err) {
    await session.abort()
    throw err
  }
}

/** Readable chunks kept in hand before the part's stream is paused. */
const CHUNKS_AHEAD = 16

/**
 * A part's bytes as the parser produced them. A Readable's own iterator reads whatever is buffered
 * as one new concatenated buffer each time: for a 1 GB part, a GB of copies left to the collector.
 * The part is paused while the store is behind, so the parser, and the upload, wait.
 */
export async function * chunksOf (stream: Readable): AsyncGenerator<Buffer> {
  const queue: Buffer[] = []
  let ended = false
  let failure: Error | undefined
  let wake: (() => void) | undefined
  const poke = (): void => { const w = wake; wake = undefined; w?.() }
  const onData = (chunk: Buffer): void => {
    queue.push(chunk)
    if (queue.length >= CHUNKS_AHEAD) stream.pause()
    poke()
  }
  const onEnd = (): void => { ended = true; poke() }
  const onError = (err: Error): void => { failure = err; poke() }
  stream.on('data', onData)
  stream.once('end', onEnd)
  stream.once('error', onError)
  try {
    for (;;) {
      const chunk = queue.shift()
      if (chunk !== undefined) {
        if (queue.length < CHUNKS_AHEAD / 2 && stream.isPaused()) stream.resume()
        yield chunk
        continue
      }
      if (failure !== undefined) throw failure
      if (ended) return
      await new Promise<void>((resolve) => { wake = resolve })
    }
  } finally {
    stream.off('data', onData)
    stream.off('end', onEnd)
    stream.off('error', onError)
    // Whatever the store did not take is read and dropped, so the next part can come.
    if (!ended) stream.resume()
  }
}

/**
 * The Warning header (RFC 7234 warn-code 299) for the failed parts' reasons: a header is printable
 * ASCII only, and a reason may quote bytes of the file, so anything else is escaped (\xHH,
 * \u{HHHH}), quotes and backslashes too, and the whole is bounded.
 */
export function warningHeader (reasons: string[]): string | undefined {
  if (reasons.length === 0) return undefined
  const quoted = reasons.slice(0, WARNING_REASONS).map((r) => `299 beeldnet "${headerSafe(r, WARNING_REASON_CHARS)}"`)
  if (reasons.length > WARNING_REASONS) quoted.push(`299 beeldnet "and ${reasons.length - WARNING_REASONS} more failed parts (see the response body)"`)
  return quoted.join(', ')
}

function headerSafe (text: string, maxChars: number): string {
  let out = ''
  for (const ch of text) {
    const code = ch.codePointAt(0)!
    const safe = code >= 0x20 && code <= 0x7e && ch !== '"' && ch !== '\\'
      ? ch
      : code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`
    if (out.length + safe.length > maxChars) return `${out}...`
    out += safe
  }
  return out
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
