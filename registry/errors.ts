import { BeeldnetError } from '../protocol/errors.ts'

/*
 * One class per condition the registry refuses. Verification failures (forged, below threshold,
 * schema...) come from protocol/errors.ts; these are the registry's own: its workflow, its HTTP
 * edge and its store. The code is stable; its HTTP status is declared in protocol/api/error-codes.ts.
 */

// Shared with the node, so declared in protocol/.
export {
  AlreadyInitialisedError, BadRequestError, ConfigError, MediaTypeError, NotFoundError, NotInitialisedError, RateLimitedError
} from '../protocol/errors.ts'

export class NotPublishedError extends BeeldnetError {
  constructor (what: string) { super('BEELDNET_ERR_NOT_PUBLISHED', `${what}: nothing published yet (root v1 needs its governance signatures first)`) }
}

export class NoCandidateError extends BeeldnetError {
  constructor (message = 'there is no candidate to sign: no pending proposals') { super('BEELDNET_ERR_NO_CANDIDATE', message) }
}

export class CandidateChangedError extends BeeldnetError {
  constructor (offered: string, current: string | undefined) {
    super('BEELDNET_ERR_CANDIDATE_CHANGED', `the signature is over ${offered.slice(0, 16)}, but the candidate is ${current === undefined ? 'gone (published or discarded)' : current.slice(0, 16)}: fetch the candidate again`)
  }
}

export class NotGovernanceKeyError extends BeeldnetError {
  constructor (keyid: string, what: string) { super('BEELDNET_ERR_NOT_GOVERNANCE_KEY', `key ${keyid.slice(0, 16)} is not a governance key that can sign ${what}`) }
}

export class StaleRequestError extends BeeldnetError {
  constructor (requested: string, now: Date) {
    super('BEELDNET_ERR_STALE_REQUEST', `requested ${requested} is more than 10 minutes from the registry's time ${now.toISOString()}: a replay, or a clock to fix`)
  }
}

export class BodyTooLargeError extends BeeldnetError {
  constructor (limit: number) { super('BEELDNET_ERR_BODY_TOO_LARGE', `the request body is larger than ${limit} bytes`) }
}

export class MalformedBodyError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_MALFORMED_BODY', `the request body is not valid JSON: ${message}`) }
}

export class StoreTamperedError extends BeeldnetError {
  constructor (problems: string[]) {
    super('BEELDNET_ERR_STORE_TAMPERED', `the registry's own store does not verify (edited by hand, or corrupt): ${problems.join('; ')}`)
  }
}

export class AppendOnlyError extends BeeldnetError {
  constructor (what: string) { super('BEELDNET_ERR_APPEND_ONLY', `${what} is already stored; published history is never overwritten`) }
}

export class TimestampKeyError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_TIMESTAMP_KEY', message) }
}
