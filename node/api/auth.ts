import { randomBytes, timingSafeEqual } from 'node:crypto'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { isBeeldnetError } from '../../protocol/errors.ts'
import { parseDocument } from '../../protocol/registry/documents.ts'
import type { AuditPerson, AuditSink } from '../audit/audit-log.ts'
import type { Role, UserStore } from '../users/user-store.ts'
import { CsrfError, ForbiddenError, RateLimitedError, UnauthenticatedError } from './errors.ts'

/*
 * Who is asking, on every HTTP request: a person logged in (an HttpOnly, SameSite=Strict session
 * cookie, with a CSRF token for anything that changes state) or an integration with an API token
 * (Authorization: Bearer). Each route prefix names the roles that may use it; /health is open.
 * Logins are rate-limited per address and audited, failures too.
 */

export interface Caller {
  kind: 'session' | 'token'
  /** username, or the token's name */
  name: string
  role: Role
  person?: AuditPerson
}

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller
    /** for a session: `listener` runs when it ends (logout, expiry, the account disabled), so a live stream can stop */
    whenCallerEnds?: (listener: () => void) => void
  }
}

const SESSION_COOKIE = 'beeldnet_session'
/** Everything under these needs a caller; the rest is the web app's static files. */
const PROTECTED = ['/api', '/dicomweb', '/metrics']
/** The web app's route (web-app.ts): every path no other route takes. */
const STATIC_FILES = '/*'

function decodedPath (url: string): string {
  const raw = url.split('?')[0]!
  try { return decodeURIComponent(raw) } catch { return raw }
}
const SESSION_TTL_MS = 8 * 60 * 60_000
const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/**
 * Which roles may use which routes: the first entry that fits the route (and method, when it names
 * one) decides; none fitting is it-admin only. Sending a study and anything showing patients is for
 * clinicians; IT keeps transfers and exports to the PACS running (list, retry, cancel) without seeing who is in them.
 */
const ACCESS: Array<{ prefix: string, roles: Role[], method?: string, exact?: boolean }> = [
  { prefix: '/api/inbox', roles: ['clinician'] },
  { prefix: '/api/institutions', roles: ['clinician', 'it-admin'] },
  { prefix: '/api/audit', roles: ['auditor', 'it-admin'] },
  { prefix: '/api/admin/audit', roles: ['auditor', 'it-admin'] },
  { prefix: '/api/me', roles: ['clinician', 'it-admin', 'auditor'] },
  { prefix: '/api/logout', roles: ['clinician', 'it-admin', 'auditor'] },
  { prefix: '/api/transfers', method: 'POST', exact: true, roles: ['clinician'] },
  { prefix: '/api/transfers', roles: ['clinician', 'it-admin'] },
  { prefix: '/metrics', roles: ['it-admin'] },
  { prefix: '/dicomweb', roles: ['clinician'] },
  { prefix: '/api/studies', roles: ['clinician'] },
  { prefix: '/api/query', roles: ['clinician'] },
  { prefix: '/api/pulls', roles: ['clinician'] },
  { prefix: '/api/approvals', roles: ['clinician'] },
  { prefix: '/api/consents', roles: ['clinician'] },
  { prefix: '/api/pacs/exports', roles: ['clinician', 'it-admin'] },
  { prefix: '/api/pacs', roles: ['clinician'] },
  // A patient's DVD at the IT desk, or the CLI (a clinician token) beside the running node; no patient is shown.
  { prefix: '/api/imports', roles: ['it-admin', 'clinician'] },
  // Patients' share links: a clinician makes them on a study (/api/studies/:uid/shares); IT sees and
  // revokes them (a link names a study, not its patient). The patient's own side, /share/, is not
  // protected here: the link's code opens its session (share-patient-routes.ts).
  { prefix: '/api/shares', roles: ['clinician', 'it-admin'] }
]

export function rolesFor (path: string, method = 'GET'): Role[] {
  return ACCESS.find((a) => (a.method === undefined || a.method === method) &&
    (path === a.prefix || (a.exact !== true && (path.startsWith(`${a.prefix}/`) || path.startsWith(`${a.prefix}?`)))))?.roles ?? ['it-admin']
}

interface Session { caller: Caller, csrf: string, created: string, expires: number, ended: Set<() => void> }

const LoginBody = z.strictObject({ username: z.string().min(1).max(64), password: z.string().min(1).max(1024) })

function cookieOf (req: FastifyRequest, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=')
    if (key === name) return value.join('=')
  }
  return undefined
}

function sameSecret (a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

export function registerAuth (app: FastifyInstance, deps: { users: UserStore, audit?: AuditSink }, init: { loginsPerMinute?: number } = {}): void {
  const sessions = new Map<string, Session>()
  const end = (id: string): void => {
    const session = sessions.get(id)
    sessions.delete(id)
    for (const listener of session?.ended ?? []) listener()
  }
  const sessionOf = (req: FastifyRequest): Session | undefined => {
    const id = cookieOf(req, SESSION_COOKIE)
    const session = id === undefined ? undefined : sessions.get(id)
    if (session === undefined || id === undefined) return undefined
    if (session.expires < Date.now()) { end(id); return undefined }
    return session
  }
  /** A session holds only while its account does: disabled or given a new password since, it ends. */
  const liveSession = async (req: FastifyRequest): Promise<Session | undefined> => {
    const session = sessionOf(req)
    if (session === undefined) return undefined
    const user = await deps.users.get(session.caller.name)
    if (user === undefined || user.disabled || user.passwordChangedAt > session.created) {
      end(cookieOf(req, SESSION_COOKIE)!)
      return undefined
    }
    return session
  }

  app.addHook('onRequest', async (req: FastifyRequest) => {
    // Decided on the route the router matched, not the raw URL: the router decodes (/%61pi is /api),
    // a prefix check on the raw text would not. Without a route of its own (the web app's wildcard,
    // or none) the decoded path decides, so /api/... never counts as a static file.
    const route = req.routeOptions.url
    const path = route !== undefined && route !== STATIC_FILES ? route : decodedPath(req.url)
    // Open: health checks, the login, and the web app's own files (no patient data in them).
    if (path === '/health' || path === '/api/login' || !PROTECTED.some((p) => path === p || path.startsWith(`${p}/`))) return
    const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1]
    if (bearer !== undefined) {
      const token = await deps.users.tokenFor(bearer)
      if (token === undefined) throw new UnauthenticatedError()
      req.caller = { kind: 'token', name: token.name, role: token.role, person: { system: `API token ${token.id} (${token.name})` } }
    } else {
      const session = await liveSession(req)
      if (session !== undefined) {
        if (UNSAFE_METHODS.has(req.method) && !sameSecret(String(req.headers['x-csrf-token'] ?? ''), session.csrf)) throw new CsrfError()
        req.caller = session.caller
        req.whenCallerEnds = (listener) => {
          session.ended.add(listener)
          setTimeout(listener, Math.max(0, session.expires - Date.now())).unref()
        }
      }
    }
    if (req.caller === undefined) throw new UnauthenticatedError()
    if (!rolesFor(path, req.method).includes(req.caller.role)) throw new ForbiddenError(req.caller.role, `${req.method} ${path}`)
  })

  app.register(async (scope) => {
    // Per address: a password cannot be guessed at speed, and the lockout cannot be used to lock out everyone at once.
    await scope.register(rateLimit, { max: init.loginsPerMinute ?? 10, timeWindow: 60_000, errorResponseBuilder: () => new RateLimitedError('too many login attempts from this address: wait a minute') })
    scope.post('/api/login', async (req: FastifyRequest, reply: FastifyReply) => {
      const body = parseDocument(LoginBody, req.body, 'login')
      try {
        const user = await deps.users.authenticate(body.username, body.password)
        const person: AuditPerson = { name: user.name, ...(user.uzi === undefined ? {} : { uzi: user.uzi }), role: user.roleCode ?? user.role }
        const id = randomBytes(32).toString('base64url')
        const csrf = randomBytes(32).toString('base64url')
        sessions.set(id, { caller: { kind: 'session', name: user.username, role: user.role, person }, csrf, created: new Date().toISOString(), expires: Date.now() + SESSION_TTL_MS, ended: new Set() })
        await deps.audit?.record({ event: 'login', outcome: 'success', user: person, details: { username: user.username, address: req.ip } })
        const secure = req.protocol === 'https' ? '; Secure' : ''
        void reply.header('set-cookie', `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_TTL_MS / 1000}${secure}`)
        return { user: { username: user.username, name: user.name, role: user.role }, caller: { kind: 'session', name: user.username, displayName: user.name, role: user.role, csrfToken: csrf }, csrfToken: csrf }
      } catch (err) {
        if (isBeeldnetError(err)) await deps.audit?.record({ event: 'login', outcome: err.code === 'BEELDNET_ERR_ACCOUNT_LOCKED' ? 'locked' : 'failed', user: { system: `login as ${body.username.slice(0, 64)} from ${req.ip}` }, details: { code: err.code } })
        throw err
      }
    })
  })

  app.post('/api/logout', async (req, reply) => {
    const id = cookieOf(req, SESSION_COOKIE)
    if (id !== undefined) end(id)
    return reply.header('set-cookie', `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`).send({ loggedOut: true })
  })

  // The web app asks after a reload: who is logged in, and the session's CSRF token (same origin only).
  app.get('/api/me', async (req) => {
    if (req.caller === undefined) return { caller: null }
    const session = req.caller.kind === 'session' ? sessionOf(req) : undefined
    return { caller: { kind: req.caller.kind, name: req.caller.name, displayName: req.caller.person?.name, role: req.caller.role, ...(session === undefined ? {} : { csrfToken: session.csrf }) } }
  })
}

/**
 * Scripts may compile WebAssembly ('wasm-unsafe-eval': no eval of JS text): the viewer decodes JPEG 2000,
 * JPEG-LS and JPEG in a worker with the node's own wasm, and a worker answers to the CSP of its own script's response.
 */
const SCRIPT_SRC = "script-src 'self' 'wasm-unsafe-eval'"

/** Headers every answer carries: no sniffing, no framing (but a PDF by our own pages), no referrer, nothing loaded from elsewhere. */
export function registerSecurityHeaders (app: FastifyInstance): void {
  app.addHook('onSend', async (_req, reply) => {
    // A PDF report is shown inside the web app's own page (an iframe): it alone may be framed, by us.
    const framedByUs = String(reply.getHeader('content-type') ?? '').startsWith('application/pdf')
    void reply.header('x-content-type-options', 'nosniff')
    void reply.header('x-frame-options', framedByUs ? 'SAMEORIGIN' : 'DENY')
    void reply.header('referrer-policy', 'no-referrer')
    void reply.header('content-security-policy', `default-src 'self'; ${SCRIPT_SRC}; frame-ancestors ${framedByUs ? "'self'" : "'none'"}; object-src 'none'; base-uri 'none'`)
    void reply.header('cross-origin-resource-policy', 'same-origin')
  })
}
