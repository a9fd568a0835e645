import { createHash, randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import { mkdir, readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { lock } from 'proper-lockfile'
import { writeFileAtomic } from '../directory/atomic-file.ts'
import { AccountLockedError, InvalidRoleError, InvalidUserError, LoginFailedError, TokenNotFoundError, UserExistsError, UserNotFoundError, WeakPasswordError } from './errors.ts'

/*
 * The people and integrations that may use a node (`<data-dir>/users.json`, mode 0600, replaced
 * atomically under a lock file, so `beeldnet node user ...` can change it while the node runs). Passwords are kept
 * as scrypt hashes; an account locks for a while after repeated failed logins. API tokens for
 * integrations (a PACS, a viewer, the CLI) are kept as SHA-256 hashes and shown once.
 */

export const ROLES = ['clinician', 'it-admin', 'auditor'] as const
export type Role = typeof ROLES[number]

export interface UserRecord {
  username: string
  name: string
  role: Role
  /** a clinician's UZI number and UZI role code */
  uzi?: string
  roleCode?: string
  passwordHash: string
  disabled: boolean
  failedLogins: number
  lockedUntil?: string
  createdAt: string
  passwordChangedAt: string
}

export interface TokenRecord {
  id: string
  name: string
  role: Role
  tokenHash: string
  createdAt: string
  revoked: boolean
}

interface UsersFile { users: UserRecord[], tokens: TokenRecord[] }

export const MIN_PASSWORD_LENGTH = 12
const MAX_FAILED_LOGINS = 5
const LOCK_MS = 15 * 60_000
const MAX_UNKNOWN_NAMES = 10_000
const SCRYPT = { N: 32768, r: 8, p: 1, keylen: 64, maxmem: 64 * 1024 * 1024 }

async function scrypt (password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCallback(password, salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, maxmem: SCRYPT.maxmem } satisfies ScryptOptions, (err, key) => { if (err === null) resolve(key); else reject(err) })
  })
}

export async function hashPassword (password: string): Promise<string> {
  if (password.length < MIN_PASSWORD_LENGTH) throw new WeakPasswordError(MIN_PASSWORD_LENGTH)
  const salt = randomBytes(16)
  const key = await scrypt(password, salt)
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`
}

export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const [scheme, , , , salt, hash] = stored.split('$')
  if (scheme !== 'scrypt' || salt === undefined || hash === undefined) return false
  const expected = Buffer.from(hash, 'base64')
  const actual = await scrypt(password, Buffer.from(salt, 'base64'))
  return actual.length === expected.length && timingSafeEqual(actual, expected)
}

/** A password a person can type, for a new account or a reset (shown once). */
export function generatePassword (): string {
  return randomBytes(15).toString('base64url')
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex')

export class UserStore {
  readonly path: string
  private readonly now: () => Date
  private readonly attempts = new Map<string, Promise<unknown>>()
  /** failed logins under names that are no account here, counted like real ones (in memory) */
  private readonly unknownNames = new Map<string, { failed: number, lockedUntil?: string }>()

  constructor (path: string, options: { now?: () => Date } = {}) {
    this.path = path
    this.now = options.now ?? (() => new Date())
  }

  private async read (): Promise<UsersFile> {
    const text = await readFile(this.path, 'utf8').catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return undefined; throw err })
    return text === undefined ? { users: [], tokens: [] } : JSON.parse(text) as UsersFile
  }

  /** Read, change, write under a lock: the node (failed logins) and the CLI may change the file at the same time. */
  private async change<T> (apply: (file: UsersFile) => T | Promise<T>): Promise<T> {
    await mkdir(dirname(this.path), { recursive: true })
    const release = await lock(this.path, { realpath: false, stale: 10_000, retries: { retries: 100, minTimeout: 5, maxTimeout: 100 } })
    try {
      const file = await this.read()
      const result = await apply(file)
      await writeFileAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`, 0o600)
      return result
    } finally {
      await release()
    }
  }

  async get (username: string): Promise<Omit<UserRecord, 'passwordHash'> | undefined> {
    const user = (await this.read()).users.find((u) => u.username === username)
    if (user === undefined) return undefined
    const { passwordHash: _hash, ...rest } = user
    return rest
  }

  async list (): Promise<Array<Omit<UserRecord, 'passwordHash'>>> {
    return (await this.read()).users.map(({ passwordHash: _hash, ...user }) => user)
  }

  async add (user: { username: string, name: string, role: Role, uzi?: string, roleCode?: string }, password: string): Promise<void> {
    if (!/^[a-z0-9._-]{2,64}$/.test(user.username)) throw new InvalidUserError('a username is 2 to 64 lower-case letters, digits, dots, dashes or underscores')
    if (!ROLES.includes(user.role)) throw new InvalidRoleError(ROLES)
    if (user.role === 'clinician' && (user.uzi === undefined || !/^[0-9]{9}$/.test(user.uzi))) throw new InvalidUserError('a clinician needs a UZI number (9 digits)')
    const passwordHash = await hashPassword(password)
    await this.change((file) => {
      if (file.users.some((u) => u.username === user.username)) throw new UserExistsError(user.username)
      const at = this.now().toISOString()
      file.users.push({ ...user, passwordHash, disabled: false, failedLogins: 0, createdAt: at, passwordChangedAt: at })
    })
  }

  private async update (username: string, change: (u: UserRecord) => void): Promise<void> {
    await this.change((file) => {
      const user = file.users.find((u) => u.username === username)
      if (user === undefined) throw new UserNotFoundError(username)
      change(user)
    })
  }

  async disable (username: string): Promise<void> {
    await this.update(username, (u) => { u.disabled = true })
  }

  /** Sets a new password; also lifts a lockout. */
  async resetPassword (username: string, password: string): Promise<void> {
    const hash = await hashPassword(password)
    await this.update(username, (u) => { u.passwordHash = hash; u.failedLogins = 0; delete u.lockedUntil; u.passwordChangedAt = this.now().toISOString() })
  }

  /**
   * The user, if the password is right; counts failures and locks the account after too many.
   * Attempts on one account run one after another, so parallel guesses cannot all get in before
   * the count that locks it.
   */
  async authenticate (username: string, password: string): Promise<Omit<UserRecord, 'passwordHash'>> {
    const before = this.attempts.get(username) ?? Promise.resolve()
    const attempt = before.then(async () => this.authenticateNow(username, password))
    const settled = attempt.catch(() => {})
    this.attempts.set(username, settled)
    void settled.then(() => { if (this.attempts.get(username) === settled) this.attempts.delete(username) })
    return attempt
  }

  private async authenticateNow (username: string, password: string): Promise<Omit<UserRecord, 'passwordHash'>> {
    const file = await this.read()
    const user = file.users.find((u) => u.username === username)
    const now = this.now()
    if (user === undefined) {
      // The same work and the same answers as for a real account (a wrong name takes as long as a
      // wrong password, and "locks" after as many tries), so guessing tells nobody which names exist.
      const ghost = this.unknownNames.get(username) ?? { failed: 0 }
      if (ghost.lockedUntil !== undefined && ghost.lockedUntil > now.toISOString()) throw new AccountLockedError(ghost.lockedUntil)
      await verifyPassword(password, `scrypt$0$0$0$${randomBytes(16).toString('base64')}$${randomBytes(64).toString('base64')}`)
      ghost.failed++
      if (ghost.failed >= MAX_FAILED_LOGINS) { ghost.lockedUntil = new Date(now.getTime() + LOCK_MS).toISOString(); ghost.failed = 0 }
      this.unknownNames.delete(username)
      this.unknownNames.set(username, ghost)
      // Bounded: the oldest names tried go first.
      if (this.unknownNames.size > MAX_UNKNOWN_NAMES) this.unknownNames.delete(this.unknownNames.keys().next().value!)
      throw new LoginFailedError()
    }
    if (user.lockedUntil !== undefined && user.lockedUntil > now.toISOString()) throw new AccountLockedError(user.lockedUntil)
    const right = await verifyPassword(password, user.passwordHash)
    if (!right) {
      await this.update(username, (u) => {
        u.failedLogins++
        if (u.failedLogins >= MAX_FAILED_LOGINS) {
          u.lockedUntil = new Date(now.getTime() + LOCK_MS).toISOString()
          u.failedLogins = 0
        }
      })
    }
    if (!right || user.disabled) throw new LoginFailedError()
    if (user.failedLogins > 0 || user.lockedUntil !== undefined) {
      await this.update(username, (u) => { u.failedLogins = 0; delete u.lockedUntil })
    }
    const { passwordHash: _hash, ...rest } = user
    return rest
  }

  async listTokens (): Promise<Array<Omit<TokenRecord, 'tokenHash'>>> {
    return (await this.read()).tokens.map(({ tokenHash: _hash, ...token }) => token)
  }

  /** A new API token; the secret is returned once and kept only as its hash. */
  async addToken (name: string, role: Role): Promise<{ id: string, token: string }> {
    if (!ROLES.includes(role)) throw new InvalidRoleError(ROLES)
    const id = randomBytes(6).toString('hex')
    const token = `bn_${id}_${randomBytes(24).toString('base64url')}`
    await this.change((file) => { file.tokens.push({ id, name, role, tokenHash: sha256(token), createdAt: this.now().toISOString(), revoked: false }) })
    return { id, token }
  }

  async revokeToken (id: string): Promise<void> {
    await this.change((file) => {
      const token = file.tokens.find((t) => t.id === id)
      if (token === undefined) throw new TokenNotFoundError(id)
      token.revoked = true
    })
  }

  /** The token's record, if it is a live token of this node. */
  async tokenFor (token: string): Promise<Omit<TokenRecord, 'tokenHash'> | undefined> {
    const id = /^bn_([0-9a-f]{12})_/.exec(token)?.[1]
    if (id === undefined) return undefined
    const record = (await this.read()).tokens.find((t) => t.id === id && !t.revoked)
    if (record === undefined) return undefined
    const expected = Buffer.from(record.tokenHash, 'hex')
    const actual = createHash('sha256').update(token).digest()
    if (!timingSafeEqual(actual, expected)) return undefined
    const { tokenHash: _hash, ...rest } = record
    return rest
  }
}
