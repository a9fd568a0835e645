import { BeeldnetError } from '../../protocol/errors.ts'

/* Refusals of transcoding: stored pixel data decoded for a requester that did not accept its syntax. */

/** No decoder here for the stored transfer syntax or its pixel layout: the instance can only go as stored. */
export class TranscodeUnsupportedError extends BeeldnetError {
  constructor (sopInstanceUID: string, transferSyntaxUID: string, why: string) {
    super('BEELDNET_ERR_TRANSCODE_UNSUPPORTED', `instance ${sopInstanceUID} in ${transferSyntaxUID} cannot be decoded here: ${why}`)
  }
}

/** The decoder refused a frame of the stored pixel data (damaged or non-conformant encoding). */
export class TranscodeFailedError extends BeeldnetError {
  constructor (sopInstanceUID: string, frame: number, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause)
    super('BEELDNET_ERR_TRANSCODE_FAILED', `frame ${frame} of instance ${sopInstanceUID} cannot be decoded: ${why}`, { cause })
  }
}
