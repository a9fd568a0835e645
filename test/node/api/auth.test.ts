import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { AuditLog } from '../../../node/audit/audit-log.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'

/* Logins, tokens, roles and CSRF on a node with http.auth required, over real HTTP. */

describe('who may use the node API', () => {
  let work: string
  let store: StudyStore
  let audit: AuditLog
  let app: FastifyInstance
  let url: string
  let token: string
  let users: UserStore

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'beeldnet-auth-'))
    store = new StudyStore({ dir: join(work, 'node') })
    await store.start()
    audit = new AuditLog(join(work, 'node', 'audit', 'trail.jsonl'))
    await audit.start()
    users = new UserStore(join(work, 'node', 'users.json'))
    await users.add({ username: 'arts', name: 'dr. A. Jansen', role: 'clinician', uzi: '123456789', roleCode: '01.015' }, 'clinician password')
    await users.add({ username: 'controle', name: 'M. de Wit', role: 'auditor' }, 'auditor password')
    await users.add({ username: 'beheer', name: 'IT beheer', role: 'it-admin' }, 'it-admin password')
    token = (await users.addToken('PACS', 'clinician')).token
    app = createHttpServer({ store, logger: pino({ level: 'silent' }), audit, users }, { nodeName: 'test', peerId: 'test' })
    url = await listenOnLoopback(app)
  })

  afterAll(async () => {
    await app.close()
    await audit.stop()
    await store.stop()
    await rm(work, { recursive: true, force: true })
  })

  const login = async (username: string, password: string): Promise<{ status: number, cookie: string, csrf: string, body: { code?: string } }> => {
    const res = await fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) })
    const body = await res.json() as { csrfToken?: string, code?: string }
    return { status: res.status, cookie: (res.headers.get('set-cookie') ?? '').split(';')[0]!, csrf: body.csrfToken ?? '', body }
  }

  it('lets nobody in without a login or a token, except to /health', async () => {
    expect((await fetch(`${url}/health`)).status).toBe(200)
    // Percent-encoded paths reach the same routes (the router decodes them): they are refused alike.
    for (const path of ['/api/studies', '/dicomweb/studies', '/api/audit/verify', '/metrics', '/%61pi/studies', '/%64icomweb/studies', '/api/%73tudies/1.2.3']) {
      const res = await fetch(`${url}${path}`)
      expect(res.status, path).toBe(401)
      expect((await res.json() as { code: string }).code).toBe('BEELDNET_ERR_UNAUTHENTICATED')
    }
    expect((await fetch(`${url}/api/studies`, { headers: { authorization: 'Bearer bn_000000000000_forged' } })).status).toBe(401)
  })

  it('gives each role its own routes: a clinician no audit, an auditor no images', async () => {
    const clinician = await login('arts', 'clinician password')
    expect(clinician.status).toBe(200)
    expect(clinician.cookie).toMatch(/^beeldnet_session=/)
    expect((await fetch(`${url}/dicomweb/studies`, { headers: { cookie: clinician.cookie } })).status).toBe(200)
    const denied = await fetch(`${url}/api/audit/verify`, { headers: { cookie: clinician.cookie } })
    expect(denied.status).toBe(403)
    expect((await denied.json() as { code: string }).code).toBe('BEELDNET_ERR_FORBIDDEN')

    const auditor = await login('controle', 'auditor password')
    expect((await fetch(`${url}/api/audit/verify`, { headers: { cookie: auditor.cookie } })).status).toBe(200)
    expect((await fetch(`${url}/dicomweb/studies`, { headers: { cookie: auditor.cookie } })).status).toBe(403)
    expect((await fetch(`${url}/api/studies`, { headers: { cookie: auditor.cookie } })).status).toBe(403)
    expect((await fetch(`${url}/%61pi/studies`, { headers: { cookie: auditor.cookie } })).status).toBe(403)

    const admin = await login('beheer', 'it-admin password')
    expect((await fetch(`${url}/api/consents?bsn=111222333`, { headers: { cookie: admin.cookie } })).status).toBe(403)

    // An integration's token works without a session (and without CSRF: no cookie, no cross-site form).
    expect((await fetch(`${url}/dicomweb/studies`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200)
  })

  it('lets IT manage accounts and tokens on the API, each change in the trail; a clinician may not', async () => {
    // Tokens, not logins: the login rate limit of this address is for the tests below.
    const admin = { authorization: `Bearer ${(await users.addToken('IT console', 'it-admin')).token}`, 'content-type': 'application/json' }
    const clinician = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    const newUser = JSON.stringify({ username: 'radioloog', name: 'dr. R. Bos', role: 'clinician', uzi: '111222333', roleCode: '01.015' })
    const refused = await fetch(`${url}/api/users`, { method: 'POST', headers: clinician, body: newUser })
    expect(refused.status).toBe(403)
    expect((await fetch(`${url}/api/users`, { headers: clinician })).status).toBe(403)

    const added = await fetch(`${url}/api/users`, { method: 'POST', headers: admin, body: newUser })
    expect(added.status).toBe(201)
    const { password } = await added.json() as { password: string }
    expect(await users.authenticate('radioloog', password)).toMatchObject({ role: 'clinician', uzi: '111222333' })
    const made = await (await fetch(`${url}/api/tokens`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'viewer', role: 'clinician' }) })).json() as { id: string, token: string }
    expect((await fetch(`${url}/dicomweb/studies`, { headers: { authorization: `Bearer ${made.token}` } })).status).toBe(200)
    expect((await fetch(`${url}/api/tokens/${made.id}/revoke`, { method: 'POST', headers: admin, body: '{}' })).status).toBe(200)
    expect((await fetch(`${url}/dicomweb/studies`, { headers: { authorization: `Bearer ${made.token}` } })).status).toBe(401)
    expect((await fetch(`${url}/api/users/radioloog/disable`, { method: 'POST', headers: admin, body: '{}' })).status).toBe(200)
    const listed = await (await fetch(`${url}/api/users`, { headers: admin })).json() as { users: Array<{ username: string, disabled: boolean, passwordHash?: string }>, tokens: Array<{ id: string, revoked: boolean, tokenHash?: string }> }
    expect(listed.users.find((u) => u.username === 'radioloog')).toMatchObject({ disabled: true })
    expect(listed.users.every((u) => u.passwordHash === undefined) && listed.tokens.every((t) => t.tokenHash === undefined)).toBe(true)

    const trail = (await readFile(audit.path, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { event: string, outcome: string, user: { system?: string } })
    expect(trail.filter((r) => r.event === 'account-change').map((r) => r.outcome)).toEqual(['account added', 'token added', 'token revoked', 'account disabled'])
    expect(trail.find((r) => r.event === 'account-change')!.user.system).toMatch(/^API token [0-9a-f]{12} \(IT console\)$/)
  })

  it('refuses a change made with a session but without its CSRF token', async () => {
    const clinician = await login('arts', 'clinician password')
    const forged = await fetch(`${url}/api/logout`, { method: 'POST', headers: { cookie: clinician.cookie } })
    expect(forged.status).toBe(403)
    expect((await forged.json() as { code: string }).code).toBe('BEELDNET_ERR_CSRF')
    const wrong = await fetch(`${url}/api/logout`, { method: 'POST', headers: { cookie: clinician.cookie, 'x-csrf-token': 'guess' } })
    expect(wrong.status).toBe(403)
    // The session still holds (nothing changed), until the real logout ends it.
    expect((await fetch(`${url}/dicomweb/studies`, { headers: { cookie: clinician.cookie } })).status).toBe(200)
    const real = await fetch(`${url}/api/logout`, { method: 'POST', headers: { cookie: clinician.cookie, 'x-csrf-token': clinician.csrf } })
    expect(real.status).toBe(200)
    expect((await fetch(`${url}/dicomweb/studies`, { headers: { cookie: clinician.cookie } })).status).toBe(401)
  })

  it('locks an account after repeated failures, records every login, and answers with security headers', async () => {
    for (let i = 0; i < 5; i++) expect((await login('beheer', 'wrong password')).status).toBe(401)
    const locked = await login('beheer', 'it-admin password')
    expect(locked.status).toBe(423)
    expect(locked.body.code).toBe('BEELDNET_ERR_ACCOUNT_LOCKED')
    const trail = (await readFile(audit.path, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { event: string, outcome: string })
    const logins = trail.filter((r) => r.event === 'login').map((r) => r.outcome)
    expect(logins.filter((o) => o === 'failed')).toHaveLength(5)
    expect(logins).toContain('locked')
    expect(logins).toContain('success')
    const res = await fetch(`${url}/health`)
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    expect(res.headers.get('x-frame-options')).toBe('DENY')
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'")
    // Scripts may compile WebAssembly (the viewer's decoders) and nothing more: no eval of JS text, no inline script.
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self' 'wasm-unsafe-eval'")
    expect(res.headers.get('content-security-policy')).not.toMatch(/'unsafe-eval'|'unsafe-inline'/)
  })

  it('limits login attempts per address', async () => {
    let limited = 0
    for (let i = 0; i < 12; i++) if ((await login('nobody', 'whatever password')).status === 429) limited++
    expect(limited).toBeGreaterThan(0)
  })
})

describe('behind a reverse proxy', () => {
  it('believes X-Forwarded-Proto and -For only from the proxy named in http.trustProxy', async () => {
    const work = await mkdtemp(join(tmpdir(), 'beeldnet-proxy-'))
    const store = new StudyStore({ dir: join(work, 'node') })
    await store.start()
    const users = new UserStore(join(work, 'node', 'users.json'))
    await users.add({ username: 'arts', name: 'dr. A. Jansen', role: 'clinician', uzi: '123456789', roleCode: '01.015' }, 'clinician password')
    const servers: FastifyInstance[] = []
    try {
      const loginVia = async (trustProxy: string | undefined, headers: Record<string, string>): Promise<Response> => {
        const app = createHttpServer({ store, logger: pino({ level: 'silent' }), users }, { nodeName: 'test', peerId: 'test', ...(trustProxy === undefined ? {} : { trustProxy }) })
        servers.push(app)
        return fetch(`${await listenOnLoopback(app)}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ username: 'arts', password: 'clinician password' }) })
      }
      const trusted = await loginVia('127.0.0.1', { 'x-forwarded-proto': 'https', 'x-forwarded-for': '10.1.2.3' })
      expect(trusted.headers.get('set-cookie')).toMatch(/; Secure$/)
      const untrusted = await loginVia(undefined, { 'x-forwarded-proto': 'https' })
      expect(untrusted.headers.get('set-cookie')).not.toContain('Secure')
    } finally {
      for (const app of servers) await app.close()
      await store.stop()
      await rm(work, { recursive: true, force: true })
    }
  })
})
