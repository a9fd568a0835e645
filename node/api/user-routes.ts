import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { parseDocument } from '../../protocol/registry/documents.ts'
import type { AuditSink } from '../audit/audit-log.ts'
import { auditRequester } from '../audit/events.ts'
import { generatePassword, ROLES, type UserStore } from '../users/user-store.ts'

/*
 * The accounts and API tokens of this node on its API, for IT (the route table in auth.ts keeps
 * /api/users and /api/tokens to it-admin): the same changes as `beeldnet node user|token`, each
 * in the audit trail with the person who made it. A password or token made here is shown once.
 */

const NewUser = z.strictObject({
  username: z.string().min(2).max(64),
  name: z.string().min(1).max(256),
  role: z.enum(ROLES),
  uzi: z.string().optional(),
  roleCode: z.string().regex(/^[0-9]{2}\.[0-9]{3}$/, 'a UZI role code such as 01.015').optional(),
  password: z.string().max(1024).optional()
})
const NewPassword = z.strictObject({ password: z.string().max(1024).optional() })
const NewToken = z.strictObject({ name: z.string().min(1).max(128), role: z.enum(ROLES) })

export function registerUserRoutes (app: FastifyInstance, components: { users: UserStore, audit?: AuditSink }): void {
  const { users, audit } = components
  const recordChange = async (req: Parameters<typeof auditRequester>[0], outcome: string, details: Record<string, string>): Promise<void> => {
    await audit?.record({ event: 'account-change', outcome, user: auditRequester(req, 'API'), details })
  }

  app.get('/api/users', async () => ({ users: await users.list(), tokens: await users.listTokens() }))

  app.post('/api/users', async (req, reply) => {
    const { password: given, ...user } = parseDocument(NewUser, req.body, 'new account')
    const password = given ?? generatePassword()
    await users.add(user, password)
    await recordChange(req, 'account added', { username: user.username, role: user.role, name: user.name, ...(user.uzi === undefined ? {} : { uzi: user.uzi }) })
    return reply.status(201).send({ username: user.username, role: user.role, ...(given === undefined ? { password } : {}) })
  })

  app.post<{ Params: { username: string } }>('/api/users/:username/disable', async (req) => {
    await users.disable(req.params.username)
    await recordChange(req, 'account disabled', { username: req.params.username })
    return { username: req.params.username, disabled: true }
  })

  app.post<{ Params: { username: string } }>('/api/users/:username/reset-password', async (req) => {
    const given = parseDocument(NewPassword, req.body ?? {}, 'new password').password
    const password = given ?? generatePassword()
    await users.resetPassword(req.params.username, password)
    await recordChange(req, 'password reset', { username: req.params.username })
    return { username: req.params.username, ...(given === undefined ? { password } : {}) }
  })

  app.post('/api/tokens', async (req, reply) => {
    const body = parseDocument(NewToken, req.body, 'new token')
    const made = await users.addToken(body.name, body.role)
    await recordChange(req, 'token added', { token: made.id, name: body.name, role: body.role })
    return reply.status(201).send({ ...made, name: body.name, role: body.role })
  })

  app.post<{ Params: { id: string } }>('/api/tokens/:id/revoke', async (req) => {
    await users.revokeToken(req.params.id)
    await recordChange(req, 'token revoked', { token: req.params.id })
    return { id: req.params.id, revoked: true }
  })
}
