import { BeeldnetError } from '../../protocol/errors.ts'

/* Refusals of IT's admin API (node/api/admin-routes.ts). */

/** C-ECHO asked for an AE title that is not one of the configured DICOM destinations. */
export class UnknownAeTitleError extends BeeldnetError {
  constructor (aeTitle: string) { super('BEELDNET_ERR_UNKNOWN_AE_TITLE', `no DICOM destination ${JSON.stringify(aeTitle)} in dimse.destinations`) }
}

/** The audit trail was asked for on a node that runs without one. */
export class NoAuditTrailError extends BeeldnetError {
  constructor () { super('BEELDNET_ERR_NO_AUDIT_TRAIL', 'this node keeps no audit trail') }
}
