import { BeeldnetError } from '../../protocol/errors.ts'

/* Refusals of sending a study on to this hospital's PACS. */

/** A DICOM destination (AE title) that is not in dimse.destinations. */
export class UnknownDestinationError extends BeeldnetError {
  constructor (aeTitle: string) { super('BEELDNET_ERR_UNKNOWN_DESTINATION', `no DICOM destination ${JSON.stringify(aeTitle)} in dimse.destinations`) }
}
