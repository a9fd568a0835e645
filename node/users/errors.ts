import { BadRequestError, BeeldnetError, NotFoundError } from '../../protocol/errors.ts'

/* Refusals of the node's accounts and API tokens (node/users/user-store.ts). */

/** One message for a wrong name, a wrong password and a disabled account: nothing to learn from it. */
export class LoginFailedError extends BeeldnetError {
  constructor () { super('BEELDNET_ERR_LOGIN_FAILED', 'wrong username or password, or the account is disabled') }
}

export class AccountLockedError extends BeeldnetError {
  constructor (until: string) { super('BEELDNET_ERR_ACCOUNT_LOCKED', `too many failed logins: the account is locked until ${until}`) }
}

export class WeakPasswordError extends BeeldnetError {
  constructor (minLength: number) { super('BEELDNET_ERR_WEAK_PASSWORD', `a password has at least ${minLength} characters`) }
}

export class UserExistsError extends BeeldnetError {
  constructor (username: string) { super('BEELDNET_ERR_USER_EXISTS', `there is already a user ${username}`) }
}

/** A username or UZI number that cannot be right; the message says which. */
export class InvalidUserError extends BadRequestError {}

export class InvalidRoleError extends BadRequestError {
  constructor (roles: readonly string[]) { super(`a role is one of ${roles.join(', ')}`) }
}

export class UserNotFoundError extends NotFoundError {
  constructor (username: string) { super(`no user ${username}`) }
}

export class TokenNotFoundError extends NotFoundError {
  constructor (id: string) { super(`no token ${id}`) }
}
