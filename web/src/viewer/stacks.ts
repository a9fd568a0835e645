import { ApiError } from '../api.ts'
import type { Series, StudyDetail } from '../types.ts'
import { registerFrame } from './cornerstone.ts'

/*
 * What a pane shows: one series as a stack of frames, from the node's WADO-RS metadata. One image id
 * per frame (a multi-frame instance is a stack of its own frames), in the order a radiologist
 * expects: by instance number, then by position along the slice normal.
 */

/** Series of documents, not images: nothing to show in a pane. */
export const NOT_IMAGES: ReadonlySet<string> = new Set(['SR', 'DOC', 'KO', 'PR', 'OT'])

export interface Stack {
  studyInstanceUID: string
  seriesInstanceUID: string
  imageIds: string[]
  /** a loop to play (multi-frame ultrasound, XA): its rate in frames per second */
  cineFramesPerSecond?: number
}

type DicomJson = Record<string, { vr: string, Value?: unknown[] } | undefined>

const value = (json: DicomJson, tag: string): unknown => json[tag]?.Value?.[0]
const numberOf = (json: DicomJson, tag: string): number | undefined => {
  const v = Number(value(json, tag))
  return Number.isFinite(v) ? v : undefined
}

/** The study's series that hold images, in series-number order. */
export function imageSeries (study: StudyDetail): Series[] {
  return study.series.filter((s) => !NOT_IMAGES.has(s.modality)).sort((a, b) => (a.number ?? 0) - (b.number ?? 0))
}

async function fetchJson<T> (url: string, signal?: AbortSignal): Promise<T> {
  const res = await fetch(url, { credentials: 'same-origin', headers: { accept: 'application/dicom+json' }, ...(signal === undefined ? {} : { signal }) })
  if (!res.ok) {
    const body = await res.json().catch(() => ({})) as { code?: string, message?: string }
    throw new ApiError(body.code ?? 'BEELDNET_ERR_INTERNAL', body.message ?? `HTTP ${res.status}`, res.status)
  }
  return await res.json() as T
}

/** The rate a cine loop was recorded at (Frame Time, Cine Rate or Recommended Display Frame Rate). */
function cineRate (instance: DicomJson): number | undefined {
  const frameTimeMs = numberOf(instance, '00181063')
  if (frameTimeMs !== undefined && frameTimeMs > 0) return 1000 / frameTimeMs
  return numberOf(instance, '00180040') ?? numberOf(instance, '00082144')
}

/** Position along the slice normal (z of Image Position (Patient) will do for axial stacks), for sorting. */
function positionOf (instance: DicomJson): number {
  const position = instance['00200032']?.Value
  return Array.isArray(position) && position.length === 3 ? Number(position[2]) : 0
}

export async function loadStack (dicomweb: string, studyInstanceUID: string, seriesInstanceUID: string, signal?: AbortSignal): Promise<Stack> {
  const base = `${dicomweb}/studies/${encodeURIComponent(studyInstanceUID)}/series/${encodeURIComponent(seriesInstanceUID)}`
  const instances = await fetchJson<DicomJson[]>(`${base}/metadata`, signal)
  instances.sort((a, b) => (numberOf(a, '00200013') ?? 0) - (numberOf(b, '00200013') ?? 0) || positionOf(a) - positionOf(b))
  const imageIds: string[] = []
  let cineFramesPerSecond: number | undefined
  for (const instance of instances) {
    const sop = String(value(instance, '00080018'))
    const frames = numberOf(instance, '00280008') ?? 1
    if (frames > 1) cineFramesPerSecond ??= cineRate(instance) ?? 10
    for (let frame = 1; frame <= frames; frame++) {
      const imageId = `wadors:${location.origin}${base}/instances/${encodeURIComponent(sop)}/frames/${frame}`
      await registerFrame(imageId, instance)
      imageIds.push(imageId)
    }
  }
  return { studyInstanceUID, seriesInstanceUID, imageIds, ...(cineFramesPerSecond === undefined ? {} : { cineFramesPerSecond }) }
}
