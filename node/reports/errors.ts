import { MediaTypeError, NotFoundError, PassedOnError } from '../../protocol/errors.ts'

/* Refusals about a study's reports: reading one, attaching a PDF. */

export class ReportNotFoundError extends NotFoundError {
  constructor (studyInstanceUID: string, sopInstanceUID: string) { super(`study ${studyInstanceUID} has no report ${sopInstanceUID}`) }
}

export class NotPdfError extends MediaTypeError {
  constructor (message = 'the attached file is not a PDF (it does not start with %PDF-)') { super(message) }
}

/** The store refused the wrapped PDF (another patient in the study, say); its code is passed on. */
export class ReportNotStoredError extends PassedOnError {
  constructor (rejection: { code: string, message: string }) { super(rejection.code, 'BEELDNET_ERR_INTERNAL', rejection.message) }
}
