import { Command, Option } from 'commander'
import { createOutput, reportError, type Output } from '../../protocol/cli/output.ts'
import { AuditLog } from '../audit/audit-log.ts'
import { cliUser } from './cli-user.ts'
import { nodePaths } from '../paths.ts'
import { generatePassword, ROLES, UserStore, type Role } from '../users/user-store.ts'

/*
 * `beeldnet node user ...` and `beeldnet node token ...`: the accounts and API tokens of a node,
 * kept in <data-dir>/users.json (they can change while the node runs). A password made here, or a
 * token, is shown once. Every change goes into the node's audit trail, with the operating-system
 * account that made it (NEN 7513: changes to who may access patient data are logged too).
 */

interface GlobalOptions { dataDir: string, json: boolean }

/** Records one account change in the trail: what changed (outcome) and of whom (details). */
type RecordChange = (outcome: string, details: Record<string, string>) => Promise<void>

async function withUsers (cmd: Command, action: (users: UserStore, out: Output, recordChange: RecordChange) => Promise<void>): Promise<void> {
  const g = cmd.optsWithGlobals<GlobalOptions>()
  const out = createOutput(g.json)
  const paths = nodePaths(g.dataDir)
  const trail = new AuditLog(paths.auditTrail)
  try {
    await trail.start()
    const actor = cliUser()
    await action(new UserStore(paths.users), out, async (outcome, details) => { await trail.record({ event: 'account-change', outcome, user: actor, details }) })
  } catch (err) {
    process.exitCode = reportError(err, g.json)
  } finally {
    await trail.stop()
  }
}

/** A password from standard input (--password-stdin), or a new one to show once. */
async function passwordFrom (stdin: boolean): Promise<{ password: string, generated: boolean }> {
  if (!stdin) return { password: generatePassword(), generated: true }
  let text = ''
  for await (const chunk of process.stdin) text += String(chunk)
  return { password: text.replace(/\r?\n$/, ''), generated: false }
}

const roleOption = (): Option => new Option('--role <role>', 'what the account may do').choices([...ROLES]).makeOptionMandatory()

export function addUserCommands (node: Command): void {
  const user = node.command('user').description('the people who may use this node: clinicians, IT admins, auditors')

  user.command('add')
    .description('create an account; without --password-stdin a password is made and shown once')
    .argument('<username>')
    .addOption(roleOption())
    .requiredOption('--name <name>', 'the person\'s name as the audit trail shows it')
    .option('--uzi <number>', 'a clinician\'s UZI number (9 digits)')
    .option('--role-code <code>', 'a clinician\'s UZI role code, e.g. 01.015')
    .option('--password-stdin', 'read the password from standard input', false)
    .action(async (username: string, opts: { role: Role, name: string, uzi?: string, roleCode?: string, passwordStdin: boolean }, cmd: Command) => withUsers(cmd, async (users, out, recordChange) => {
      const { password, generated } = await passwordFrom(opts.passwordStdin)
      await users.add({ username, name: opts.name, role: opts.role, ...(opts.uzi === undefined ? {} : { uzi: opts.uzi }), ...(opts.roleCode === undefined ? {} : { roleCode: opts.roleCode }) }, password)
      await recordChange('account added', { username, role: opts.role, name: opts.name, ...(opts.uzi === undefined ? {} : { uzi: opts.uzi }) })
      out.result({ username, role: opts.role, ...(generated ? { password } : {}) }, () => `added ${username} (${opts.role})${generated ? `\n  password (shown once): ${password}` : ''}`)
    }))

  user.command('list')
    .description('the accounts, their roles and whether they are disabled or locked')
    .action(async (_opts: unknown, cmd: Command) => withUsers(cmd, async (users, out) => {
      const list = await users.list()
      out.result({ users: list }, () => list.length === 0
        ? 'no accounts yet: beeldnet node user add'
        : list.map((u) => `${u.username.padEnd(20)} ${u.role.padEnd(10)} ${u.name}${u.uzi === undefined ? '' : ` (UZI ${u.uzi})`}${u.disabled ? '  DISABLED' : ''}${u.lockedUntil !== undefined ? `  locked until ${u.lockedUntil}` : ''}`).join('\n'))
    }))

  user.command('disable')
    .description('stop an account from logging in (it stays in the audit trail)')
    .argument('<username>')
    .action(async (username: string, _opts: unknown, cmd: Command) => withUsers(cmd, async (users, out, recordChange) => {
      await users.disable(username)
      await recordChange('account disabled', { username })
      out.result({ username, disabled: true }, () => `disabled ${username}`)
    }))

  user.command('reset-password')
    .description('set a new password (also lifts a lockout); without --password-stdin one is made and shown once')
    .argument('<username>')
    .option('--password-stdin', 'read the password from standard input', false)
    .action(async (username: string, opts: { passwordStdin: boolean }, cmd: Command) => withUsers(cmd, async (users, out, recordChange) => {
      const { password, generated } = await passwordFrom(opts.passwordStdin)
      await users.resetPassword(username, password)
      await recordChange('password reset', { username })
      out.result({ username, ...(generated ? { password } : {}) }, () => `new password for ${username}${generated ? ` (shown once): ${password}` : ' set'}`)
    }))

  const token = node.command('token').description('API tokens for integrations: a PACS, a viewer, scripts')
  token.command('add')
    .description('make a token; it is shown once')
    .argument('<name>', 'what uses it, e.g. "PACS Sectra"')
    .addOption(roleOption())
    .action(async (name: string, opts: { role: Role }, cmd: Command) => withUsers(cmd, async (users, out, recordChange) => {
      const made = await users.addToken(name, opts.role)
      await recordChange('token added', { token: made.id, name, role: opts.role })
      out.result({ ...made, name, role: opts.role }, () => `token ${made.id} for ${name} (${opts.role}), shown once:\n  ${made.token}`)
    }))
  token.command('revoke')
    .argument('<id>')
    .action(async (id: string, _opts: unknown, cmd: Command) => withUsers(cmd, async (users, out, recordChange) => {
      await users.revokeToken(id)
      await recordChange('token revoked', { token: id })
      out.result({ id, revoked: true }, () => `revoked token ${id}`)
    }))
}
