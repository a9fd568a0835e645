/**
 * Every refusal in Beeldnet carries a stable code (`BEELDNET_ERR_...`). The code crosses the wire,
 * lands in audit logs and is what scripts match on; the message is for people and may change.
 */
export class BeeldnetError extends Error {
  readonly code: string

  constructor (code: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

export function isBeeldnetError (err: unknown): err is BeeldnetError {
  return err instanceof BeeldnetError
}

/* Refusals about registry files and messages. Each names one reason a node keeps what it had. */

export class SchemaError extends BeeldnetError {
  constructor (what: string, problems: string[]) {
    super('BEELDNET_ERR_SCHEMA', `${what} is not valid: ${problems.slice(0, 8).join('; ')}`)
  }
}

export class ForgedSignatureError extends BeeldnetError {
  constructor (what: string, keyid: string) {
    super('BEELDNET_ERR_FORGED', `${what} carries a signature by ${keyid.slice(0, 16)} that does not verify: forged or tampered`)
  }
}

export class BelowThresholdError extends BeeldnetError {
  constructor (what: string, valid: number, threshold: number) {
    super('BEELDNET_ERR_BELOW_THRESHOLD', `${what} is signed by ${valid} distinct governance key(s); ${threshold} are needed`)
  }
}

export class RollbackError extends BeeldnetError {
  constructor (what: string, offered: number, held: number) {
    super('BEELDNET_ERR_ROLLBACK', `${what} version ${offered} is older than version ${held} already held`)
  }
}

export class BrokenChainError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_BROKEN_CHAIN', message) }
}

export class ExpiredError extends BeeldnetError {
  constructor (what: string, expires: string) { super('BEELDNET_ERR_EXPIRED', `${what} expired at ${expires}`) }
}

export class UnknownRootError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_UNKNOWN_ROOT', message) }
}

export class WrongNetworkError extends BeeldnetError {
  constructor (expected: string, got: string) { super('BEELDNET_ERR_WRONG_NETWORK', `this is network ${JSON.stringify(expected)}, the file is for ${JSON.stringify(got)}`) }
}

export class ForkError extends BeeldnetError {
  constructor (version: number, held: string, offered: string) {
    super('BEELDNET_ERR_FORK', `two different directories claim version ${version} (held ${held.slice(0, 16)}, offered ${offered.slice(0, 16)}): fork alarm`)
  }
}

export class InvalidEntryError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_INVALID_ENTRY', message) }
}

export class ProofOfPossessionError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_PROOF_OF_POSSESSION', message) }
}

export class InvalidChangeError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_INVALID_CHANGE', message) }
}
