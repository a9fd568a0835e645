import { isErrorCode, type ErrorCode } from './api/error-codes.ts'

/**
 * Every refusal in Beeldnet carries a stable code (`BEELDNET_ERR_...`). The code crosses the wire,
 * lands in audit logs and is what scripts match on; the message is for people and may change.
 * Codes are declared, with their HTTP status, in protocol/api/error-codes.ts; each has one class,
 * so this base is abstract.
 */
export abstract class BeeldnetError extends Error {
  readonly code: ErrorCode

  constructor (code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

export function isBeeldnetError (err: unknown): err is BeeldnetError {
  return err instanceof BeeldnetError
}

/**
 * A refusal made elsewhere (by the registry, a peer, the node the CLI talks to, the store) passed on
 * with the code given there, so that scripts and retry decisions see the refusing side's code. Only a
 * code this software declares is taken over; anything else becomes `fallback`, and the message names
 * what was received. `remoteCode` is the code as received.
 */
export abstract class PassedOnError extends BeeldnetError {
  readonly remoteCode: string

  constructor (remoteCode: unknown, fallback: ErrorCode, message: string) {
    const received = typeof remoteCode === 'string' ? remoteCode.slice(0, 80) : ''
    const known = isErrorCode(remoteCode)
    super(known ? remoteCode : fallback, known || received === '' ? message : `${message} (code ${received})`)
    this.remoteCode = received
  }
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

/** The institutions (of a directory, or a delta applied to the held one) do not make the root the header signs. */
export class EntriesMismatchError extends BeeldnetError {
  constructor (what: string, signed: { count: number, root: string }, got: { count: number, root: string }) {
    super('BEELDNET_ERR_ENTRIES_MISMATCH', `the institutions of ${what} do not make the signed entries root (${signed.count} entries, ${signed.root.slice(0, 16)}; they make ${got.count}, ${got.root.slice(0, 16)}): tampered or incomplete`)
  }
}

/** A directory in the format before signed headers (its institutions inside the signed part). */
export class DirectoryFormatError extends BeeldnetError {
  constructor (what: string) {
    super('BEELDNET_ERR_DIRECTORY_FORMAT', `${what} is in the old format (institutions inside the signed part, no entries root): this version verifies only directories with a signed header; governance publishes the next version in the new format`)
  }
}

export class ProofOfPossessionError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_PROOF_OF_POSSESSION', message) }
}

export class InvalidChangeError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_INVALID_CHANGE', message) }
}

/* Refusals both the node and the registry make: node/ and registry/ share only what is in protocol/. */

export class BadRequestError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_BAD_REQUEST', message) }
}

export class NotFoundError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_NOT_FOUND', message) }
}

/** A request body of a type the endpoint does not take. */
export class MediaTypeError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_MEDIA_TYPE', message) }
}

export class RateLimitedError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_RATE_LIMITED', message) }
}

export class ConfigError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_CONFIG', message) }
}

export class NotInitialisedError extends BeeldnetError {
  constructor (dir: string, program: 'node' | 'registry' = 'node') {
    super('BEELDNET_ERR_NOT_INITIALISED', `no Beeldnet ${program} in ${dir}: run 'beeldnet ${program} init' first`)
  }
}

export class AlreadyInitialisedError extends BeeldnetError {
  constructor (dir: string, program: 'node' | 'registry' = 'node') {
    super('BEELDNET_ERR_ALREADY_INITIALISED', `${dir} already holds a Beeldnet ${program}; refusing to overwrite its ${program === 'node' ? 'identity' : 'keys'}`)
  }
}

/** A node's key file (protocol/identity.ts) that is missing, unreadable, readable by others or not Ed25519. */
export class IdentityFileError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_IDENTITY_FILE', message) }
}

/* Asking the registry: a node's registry client and a governance member's client. */

export class RegistryUnreachableError extends BeeldnetError {
  constructor (url: string, cause: unknown) {
    super('BEELDNET_ERR_REGISTRY_UNREACHABLE', `cannot reach ${url}: ${(cause as Error)?.message ?? String(cause)}`, { cause })
  }
}

export class RegistryResponseError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_REGISTRY_RESPONSE', message) }
}

/** The registry refused with a code of its own; the code is passed on so scripts can match it. */
export class RegistryRefusedError extends PassedOnError {
  constructor (remoteCode: unknown, message: string) { super(remoteCode, 'BEELDNET_ERR_REGISTRY_RESPONSE', message) }
}
