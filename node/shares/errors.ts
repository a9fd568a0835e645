import { BeeldnetError, NotFoundError } from '../../protocol/errors.ts'
import { UnauthenticatedError } from '../api/errors.ts'

/*
 * Refusals of a patient's share link (node/shares). What a refusal adds to its JSON answer besides
 * code and message is in `answer` (the HTTP edge sends it along): what the patient's page says.
 */

/** A wrong code, or a token no link has: one answer for both, so guessing tokens learns nothing. */
export class ShareCodeError extends BeeldnetError {
  readonly answer: { attemptsLeft: number }
  constructor (attemptsLeft: number) {
    super('BEELDNET_ERR_SHARE_CODE', `that code does not open this link: ${attemptsLeft} attempt(s) left before it locks`)
    this.answer = { attemptsLeft }
  }
}

/** Too many wrong codes: for 15 minutes after 5 in a row (`lockedUntil`), for good after 10 in all (`lockedUntil` null). */
export class ShareLockedError extends BeeldnetError {
  readonly answer: { lockedUntil: string | null }
  constructor (lockedUntil: string | undefined) {
    super('BEELDNET_ERR_SHARE_LOCKED', lockedUntil === undefined
      ? 'too many wrong codes: this link is locked; ask the hospital for a new one'
      : `too many wrong codes: this link is locked until ${lockedUntil}`)
    this.answer = { lockedUntil: lockedUntil ?? null }
  }
}

/** The link has expired, was revoked, or its downloads are used up. */
export class ShareEndedError extends BeeldnetError {
  readonly answer: { state: string }
  constructor (state: 'expired' | 'revoked' | 'used-up') {
    super('BEELDNET_ERR_SHARE_ENDED', state === 'used-up' ? 'this link\'s downloads are used up' : `this link has ${state === 'expired' ? 'expired' : 'been revoked'}`)
    this.answer = { state }
  }
}

export class ShareNotFoundError extends NotFoundError {
  constructor (id: string) { super(`no share link ${JSON.stringify(id.slice(0, 80))}`) }
}

/** A patient's request under /share/<token>/ without a live session of that link (its cookie). */
export class ShareSessionError extends UnauthenticatedError {
  constructor () {
    super()
    this.message = 'open this link with its code first (POST /share/<token>/session), or again: a session lasts at most an hour'
  }
}
