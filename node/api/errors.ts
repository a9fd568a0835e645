import { BeeldnetError } from '../../protocol/errors.ts'

/* Refusals of the node's HTTP API: who may ask, and requests it cannot take. */

// Shared with the registry, so declared in protocol/.
export { BadRequestError, MediaTypeError, NotFoundError, RateLimitedError } from '../../protocol/errors.ts'

export class UnauthenticatedError extends BeeldnetError {
  constructor () { super('BEELDNET_ERR_UNAUTHENTICATED', 'log in, or send an API token (Authorization: Bearer ...)') }
}

export class ForbiddenError extends BeeldnetError {
  constructor (role: string, path: string) { super('BEELDNET_ERR_FORBIDDEN', `the role ${role} may not use ${path}`) }
}

export class CsrfError extends BeeldnetError {
  constructor () { super('BEELDNET_ERR_CSRF', 'a change made with a session needs the X-CSRF-Token the login returned') }
}

/** An upload to an import session that does not fit the session's state (a file before its DICOMDIR, after the commit). */
export class ImportStateError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_IMPORT_STATE', message) }
}

/** A file sent to an import whose studies were picked, of a study on the medium that was not picked: the browser is not trusted to leave it out. */
export class StudyNotPickedError extends BeeldnetError {
  constructor (studyInstanceUID: string) { super('BEELDNET_ERR_IMPORT_NOT_PICKED', `the file is of study ${studyInstanceUID}, which this import did not pick`) }
}
