import { BeeldnetError, NotFoundError } from '../../protocol/errors.ts'

/* Refusals of the imaging module (series thumbnails, rendered frames). */

/** The study exists but has no series with that UID. */
export class SeriesNotFoundError extends NotFoundError {
  constructor (studyInstanceUID: string, seriesInstanceUID: string) {
    super(`study ${studyInstanceUID} has no series ${seriesInstanceUID}`)
  }
}

/** The series holds no image instances (a report series: SR, PDF), so there is nothing to draw. */
export class NoImageError extends BeeldnetError {
  constructor (uid: string, level: 'series' | 'study' = 'series') { super('BEELDNET_ERR_NO_IMAGE', `${level} ${uid} has no image instances`) }
}

/** The instance to render would have to be read (or drawn) whole above the node's limit. */
export class ThumbnailTooLargeError extends BeeldnetError {
  constructor (sopInstanceUID: string, what: string) {
    super('BEELDNET_ERR_THUMBNAIL_TOO_LARGE', `instance ${sopInstanceUID} is too large to render (${what})`)
  }
}

/** The stored pixel data could not be decoded or drawn (an unsupported or damaged encoding). */
export class ThumbnailDecodeError extends BeeldnetError {
  constructor (sopInstanceUID: string, transferSyntaxUID: string, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause)
    super('BEELDNET_ERR_THUMBNAIL_DECODE', `the pixel data of instance ${sopInstanceUID} (transfer syntax ${transferSyntaxUID}) cannot be rendered: ${why}`, { cause })
  }
}

/** A frame number outside 1..NumberOfFrames of the instance. */
export class FrameNotFoundError extends BeeldnetError {
  constructor (sopInstanceUID: string, frames: number, asked: number) {
    super('BEELDNET_ERR_FRAME_NOT_FOUND', `instance ${sopInstanceUID} has frames 1 to ${frames}, not ${asked}`)
  }
}

/** The instance has no pixel data to draw (a structured report, an encapsulated document). */
export class NoPixelDataError extends BeeldnetError {
  constructor (sopInstanceUID: string, sopClassUID: string) {
    super('BEELDNET_ERR_NO_PIXEL_DATA', `instance ${sopInstanceUID} (SOP class ${sopClassUID}) has no pixel data to render`)
  }
}
