import { BeeldnetError } from '../../protocol/errors.ts'
import type { DeclineReason } from '../../protocol/exchange/answer.ts'

/*
 * One class per condition a transfer can end in or refuse. Codes cross the wire (a receiver resets
 * a stream with one), land in transfer records and audit logs, and decide whether the queue retries.
 */

/** The receiver declined the offer: final for this transfer. */
export class TransferDeclinedError extends BeeldnetError {
  readonly reason: DeclineReason
  readonly text: string

  constructor (transferId: string, reason: DeclineReason, text = '') {
    super('BEELDNET_ERR_TRANSFER_DECLINED', `transfer ${transferId} was declined (${reason})${text === '' ? '' : `: ${text}`}`)
    this.reason = reason
    this.text = text
  }
}

export class TransferCancelledError extends BeeldnetError {
  constructor (transferId: string) { super('BEELDNET_ERR_TRANSFER_CANCELLED', `transfer ${transferId} was cancelled`) }
}

export class TransferNotFoundError extends BeeldnetError {
  constructor (transferId: string) { super('BEELDNET_ERR_TRANSFER_NOT_FOUND', `no transfer ${transferId}`) }
}

/** An unfinished incoming transfer nobody resumed for too long: its data was dropped. */
export class TransferExpiredError extends BeeldnetError {
  constructor (transferId: string) { super('BEELDNET_ERR_TRANSFER_EXPIRED', `transfer ${transferId} was not resumed in time; what arrived of it was dropped`) }
}

/** The operation does not fit the transfer's state (cancel a completed one, receive after commit). */
export class TransferStateError extends BeeldnetError {
  constructor (transferId: string, state: string, operation: string) {
    super('BEELDNET_ERR_TRANSFER_STATE', `transfer ${transferId} is ${state}: cannot ${operation}`)
  }
}

/** The transfer id is known with another manifest: a resumed transfer must offer the same one. */
export class TransferConflictError extends BeeldnetError {
  constructor (transferId: string) {
    super('BEELDNET_ERR_TRANSFER_CONFLICT', `transfer ${transferId} is already known with another manifest`)
  }
}

/** A session for this transfer is still open (a previous connection not yet timed out): retry later. */
export class TransferBusyError extends BeeldnetError {
  constructor (transferId: string) { super('BEELDNET_ERR_TRANSFER_BUSY', `transfer ${transferId} is being received on another connection`) }
}

/** The receive session ended under the sender (the receiving node is stopping, say): what it verified is kept, retry. */
export class SessionClosedError extends BeeldnetError {
  constructor (transferId: string, why: string) { super('BEELDNET_ERR_SESSION_CLOSED', `the session of transfer ${transferId} was closed: ${why}`) }
}

/** Commit asked for before every instance arrived. */
export class TransferIncompleteError extends BeeldnetError {
  readonly missing: number
  constructor (transferId: string, missing: number) {
    super('BEELDNET_ERR_TRANSFER_INCOMPLETE', `transfer ${transferId} still misses ${missing} instance(s)`)
    this.missing = missing
  }
}

export class WrongDestinationError extends BeeldnetError {
  constructor (transferId: string, ura: string, own: string) {
    super('BEELDNET_ERR_WRONG_DESTINATION', `transfer ${transferId} is addressed to URA ${ura}; this node serves URA ${own}`)
  }
}

export class InstanceNotInManifestError extends BeeldnetError {
  constructor (transferId: string, key: string) {
    super('BEELDNET_ERR_INSTANCE_NOT_IN_MANIFEST', `transfer ${transferId} has no instance ${key.slice(0, 80)} in its manifest`)
  }
}

/** An instance the receiver already holds or is receiving: nothing is sent twice. */
export class InstanceNotRequestedError extends BeeldnetError {
  constructor (transferId: string, sopInstanceUID: string) {
    super('BEELDNET_ERR_INSTANCE_NOT_REQUESTED', `instance ${sopInstanceUID} of transfer ${transferId} is already held or arriving`)
  }
}

export class InstanceOverrunError extends BeeldnetError {
  constructor (sopInstanceUID: string, declared: number) {
    super('BEELDNET_ERR_INSTANCE_OVERRUN', `instance ${sopInstanceUID} runs past its declared ${declared} bytes`)
  }
}

export class InstanceTruncatedError extends BeeldnetError {
  constructor (sopInstanceUID: string, declared: number, got: number) {
    super('BEELDNET_ERR_INSTANCE_TRUNCATED', `instance ${sopInstanceUID} ended after ${got} of its declared ${declared} bytes`)
  }
}

export class InstanceHashError extends BeeldnetError {
  constructor (sopInstanceUID: string) {
    super('BEELDNET_ERR_INSTANCE_HASH', `instance ${sopInstanceUID} does not match the SHA-256 in the manifest`)
  }
}

/** The bytes match their hash but their header names other UIDs or another patient than the manifest. */
export class InstanceHeaderMismatchError extends BeeldnetError {
  constructor (sopInstanceUID: string, what: string) {
    super('BEELDNET_ERR_INSTANCE_HEADER_MISMATCH', `instance ${sopInstanceUID}: the file's ${what} differs from the manifest`)
  }
}

/** No active node of an active institution with that URA in the verified directory. */
export class UnknownInstitutionError extends BeeldnetError {
  constructor (ura: string) { super('BEELDNET_ERR_UNKNOWN_INSTITUTION', `no active institution with URA ${ura} and an active node in the directory this node trusts`) }
}

/** The directory lists the institution, but admits none of its nodes now (suspended, revoked, no valid key). */
export class InstitutionNotActiveError extends BeeldnetError {
  constructor (ura: string, name: string, reasons: string[]) {
    super('BEELDNET_ERR_INSTITUTION_NOT_ACTIVE', `${name} (URA ${ura}) takes no studies now: the directory this node trusts says ${reasons.join(', ')}`)
  }
}

export class UnknownDepartmentError extends BeeldnetError {
  constructor (ura: string, department: string, known: string[]) {
    super('BEELDNET_ERR_UNKNOWN_DEPARTMENT', `institution ${ura} lists no department ${department}${known.length === 0 ? '' : `; it lists ${known.join(', ')}`}`)
  }
}

/** This node's own key is not an active node in the directory: it cannot speak for an institution yet. */
export class NotEnrolledError extends BeeldnetError {
  constructor (peerId: string) { super('BEELDNET_ERR_NOT_ENROLLED', `this node (${peerId}) is not an active node of any institution in the directory it holds: enrol it and have governance admit it`) }
}

/** A push that would send many studies of one patient to one institution in a day, unconfirmed. */
export class BulkSendError extends BeeldnetError {
  constructor (nth: number, ura: string) {
    super('BEELDNET_ERR_CONFIRM_BULK', `this would be study ${nth} of this patient sent to URA ${ura} within a day: a person must confirm it (confirmBulk, --confirm-bulk)`)
  }
}

/** Governance marks the destination as a teaching or research institution: it gets studies de-identified only. */
export class DeidentificationRequiredError extends BeeldnetError {
  constructor (ura: string) {
    super('BEELDNET_ERR_DEIDENTIFICATION_REQUIRED', `URA ${ura} is a teaching or research institution: studies go there de-identified only (send with deidentify, or leave it out for the basic profile)`)
  }
}
