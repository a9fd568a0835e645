import { BeeldnetError } from '../../protocol/errors.ts'

/* Refusals of sending a study on to this hospital's PACS. */

/** A DICOM destination (AE title) that is not in dimse.destinations. */
export class UnknownDestinationError extends BeeldnetError {
  constructor (aeTitle: string) { super('BEELDNET_ERR_UNKNOWN_DESTINATION', `no DICOM destination ${JSON.stringify(aeTitle)} in dimse.destinations`) }
}

/** No export to the PACS with this id. */
export class ExportNotFoundError extends BeeldnetError {
  constructor (exportId: string) { super('BEELDNET_ERR_EXPORT_NOT_FOUND', `no export to the PACS with id ${JSON.stringify(exportId)}`) }
}

/** Retry or cancel of an export in a state that does not allow it. */
export class ExportStateError extends BeeldnetError {
  constructor (exportId: string, state: string, operation: 'retry' | 'cancel') {
    super('BEELDNET_ERR_EXPORT_STATE', `cannot ${operation} export ${exportId}: it is ${state}`)
  }
}

/** No association with the PACS: refused, lost, rejected or timed out (retried). */
export class PacsUnreachableError extends BeeldnetError {
  constructor (aeTitle: string, reason: string) { super('BEELDNET_ERR_PACS_UNREACHABLE', `the PACS ${aeTitle} could not be reached: ${reason}`) }
}

/** The PACS answered some instances with a failure that may pass (retried for those instances). */
export class PacsStoreFailedError extends BeeldnetError {
  constructor (aeTitle: string, failed: number, total: number, reason: string) {
    super('BEELDNET_ERR_PACS_STORE_FAILED', `the PACS ${aeTitle} did not store ${failed} of ${total} instance(s): ${reason}`)
  }
}

/** Instances no retry brings into the PACS: it refused them, or they cannot be reconciled (final). */
export class PacsRefusedError extends BeeldnetError {
  constructor (aeTitle: string, refused: number, total: number, reason: string) {
    super('BEELDNET_ERR_PACS_REFUSED', `${refused} of ${total} instance(s) cannot go to the PACS ${aeTitle}: ${reason}`)
  }
}
