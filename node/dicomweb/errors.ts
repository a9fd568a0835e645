import { BadRequestError, BeeldnetError } from '../../protocol/errors.ts'

/** A QIDO-RS parameter or C-FIND key this node cannot match on as given. */
export class QueryKeyError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_QUERY_KEY', message) }
}

/** The client accepts no representation this node can send (a media type or transfer syntax it does not serve). */
export class NotAcceptableError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_NOT_ACCEPTABLE', message) }
}

/** A STOW-RS body that is not well-formed multipart/related. */
export class MultipartError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_MULTIPART', message) }
}

/** A UID or frame list in a DICOMweb path that cannot be one. */
export class BadPathError extends BadRequestError {
  constructor (value: string, why = 'UIDs are digits and dots, at most 64 characters') {
    super(`${JSON.stringify(value.slice(0, 80))} in the path: ${why}`)
  }
}

/** A rendering parameter of /rendered or /thumbnail (window, viewport, quality, the frame list) that cannot be honoured as given. */
export class RenderParameterError extends BeeldnetError {
  constructor (parameter: string, value: string, why: string) {
    super('BEELDNET_ERR_RENDER_PARAMETER', `${parameter}=${JSON.stringify(value.slice(0, 80))}: ${why}`)
  }
}
