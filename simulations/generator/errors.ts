// Errors of the study generator, one class per condition, each with a stable code.

export class InvalidSpecError extends Error {
  readonly code = 'BEELDNET_ERR_INVALID_GENERATOR_SPEC'
  constructor (message: string) {
    super(message)
    this.name = 'InvalidSpecError'
  }
}

export class UnencodableTextError extends Error {
  readonly code = 'BEELDNET_ERR_UNENCODABLE_TEXT'
  constructor (text: string, charset: string) {
    super(`text ${JSON.stringify(text)} cannot be encoded in charset ${charset}`)
    this.name = 'UnencodableTextError'
  }
}

export class DatasetEncodingError extends Error {
  readonly code = 'BEELDNET_ERR_DATASET_ENCODING'
  constructor (message: string) {
    super(message)
    this.name = 'DatasetEncodingError'
  }
}
