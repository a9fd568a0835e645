import { BeeldnetError } from '../../protocol/errors.ts'

// Errors of the study generator, one class per condition, each with a stable code.

export class InvalidSpecError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_INVALID_GENERATOR_SPEC', message) }
}

export class UnencodableTextError extends BeeldnetError {
  constructor (text: string, charset: string) { super('BEELDNET_ERR_UNENCODABLE_TEXT', `text ${JSON.stringify(text)} cannot be encoded in charset ${charset}`) }
}

export class DatasetEncodingError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_DATASET_ENCODING', message) }
}
