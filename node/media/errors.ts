import { BeeldnetError } from '../../protocol/errors.ts'

/* Refusals of a PDI export (node/media). */

/** A medium's folder must be empty: its DICOMDIR describes every file on it, and nothing there may be overwritten. */
export class MediaTargetNotEmptyError extends BeeldnetError {
  constructor (dir: string) {
    super('BEELDNET_ERR_MEDIA_TARGET_NOT_EMPTY', `${dir} is not empty: a PDI medium is written into an empty folder (its DICOMDIR describes everything on it)`)
  }
}
