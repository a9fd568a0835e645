import { BeeldnetError } from '../../protocol/errors.ts'

/* Refusals of a governance member's own tools: the key file and the candidate check. */

/** A governance key file that is missing, not a key, or readable by others. */
export class GovernanceKeyFileError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_GOVERNANCE_KEY_FILE', message) }
}

/** The registry's candidate is not what its signed proposals make of the verified state in force: signing is refused. */
export class CandidateMismatchError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_CANDIDATE_MISMATCH', message) }
}
