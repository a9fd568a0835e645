import { BeeldnetError } from '../../protocol/errors.ts'

/** An API request whose parameters are invalid; the message says which. */
export class BadRequestError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_BAD_REQUEST', message) }
}
