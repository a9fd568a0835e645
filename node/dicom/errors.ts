import { BeeldnetError } from '../../protocol/errors.ts'

/* Refusals of DICOM parsing that are not about the file's structure (those are in node/errors.ts). */

/** A Specific Character Set term this node cannot map: guessing would corrupt names. */
export class CharsetError extends BeeldnetError {
  constructor (message: string, options?: ErrorOptions) { super('BEELDNET_ERR_DICOM_CHARSET', message, options) }
}
