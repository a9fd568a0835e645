import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { AuditLog, type AuditRecord } from '../../../node/audit/audit-log.ts'
import { verifyTrail } from '../../../node/audit/verify.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { runBeeldnet } from '../../helpers/beeldnet-cli.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

const tempDir = useTempDirs()

describe('accounts and API tokens of a node', () => {
  it('keeps passwords only as scrypt hashes, and logs in with the right one', async () => {
    const users = new UserStore(join(await tempDir('users'), 'users.json'))
    await users.add({ username: 'arts', name: 'dr. A. Jansen', role: 'clinician', uzi: '123456789', roleCode: '01.015' }, 'correct horse battery')
    const file = await readFile(users.path, 'utf8')
    expect(file).not.toContain('correct horse battery')
    expect(file).toMatch(/"passwordHash": "scrypt\$/)
    expect(((await stat(users.path)).mode & 0o777).toString(8)).toBe('600')
    expect(await users.authenticate('arts', 'correct horse battery')).toMatchObject({ username: 'arts', role: 'clinician', uzi: '123456789' })
    await expect(users.authenticate('arts', 'wrong password!!')).rejects.toMatchObject({ code: 'BEELDNET_ERR_LOGIN_FAILED' })
    await expect(users.authenticate('nobody', 'correct horse battery')).rejects.toMatchObject({ code: 'BEELDNET_ERR_LOGIN_FAILED' })
    await expect(users.add({ username: 'arts', name: 'x', role: 'auditor' }, 'long enough password')).rejects.toMatchObject({ code: 'BEELDNET_ERR_USER_EXISTS' })
    await expect(users.add({ username: 'kort', name: 'x', role: 'auditor' }, 'short')).rejects.toMatchObject({ code: 'BEELDNET_ERR_WEAK_PASSWORD' })
    await expect(users.add({ username: 'arts2', name: 'x', role: 'clinician' }, 'long enough password')).rejects.toMatchObject({ code: 'BEELDNET_ERR_BAD_REQUEST' })
  })

  it('locks an account after five failed logins, until the lock ends or the password is reset; a disabled account cannot log in', async () => {
    let now = new Date('2026-11-26T10:00:00Z')
    const users = new UserStore(join(await tempDir('users'), 'users.json'), { now: () => now })
    await users.add({ username: 'it', name: 'IT beheer', role: 'it-admin' }, 'the right password')
    for (let i = 0; i < 5; i++) await expect(users.authenticate('it', 'a wrong password')).rejects.toMatchObject({ code: 'BEELDNET_ERR_LOGIN_FAILED' })
    await expect(users.authenticate('it', 'the right password')).rejects.toMatchObject({ code: 'BEELDNET_ERR_ACCOUNT_LOCKED' })
    now = new Date('2026-11-26T10:16:00Z')
    expect(await users.authenticate('it', 'the right password')).toMatchObject({ username: 'it' })
    for (let i = 0; i < 5; i++) await expect(users.authenticate('it', 'a wrong password')).rejects.toBeDefined()
    await users.resetPassword('it', 'a brand new password')
    expect(await users.authenticate('it', 'a brand new password')).toMatchObject({ username: 'it' })
    await users.disable('it')
    await expect(users.authenticate('it', 'a brand new password')).rejects.toMatchObject({ code: 'BEELDNET_ERR_LOGIN_FAILED' })
  })

  it('counts parallel guesses one by one: the right password after five wrong ones in flight finds the account locked', async () => {
    const users = new UserStore(join(await tempDir('users'), 'users.json'))
    await users.add({ username: 'beheer', name: 'IT beheer', role: 'it-admin' }, 'the right password')
    const guesses = [...Array.from({ length: 6 }, () => users.authenticate('beheer', 'a wrong password')), users.authenticate('beheer', 'the right password')]
    const outcomes = await Promise.allSettled(guesses)
    const codes = outcomes.map((o) => o.status === 'fulfilled' ? 'ok' : (o.reason as { code: string }).code)
    expect(codes).toEqual([...Array<string>(5).fill('BEELDNET_ERR_LOGIN_FAILED'), 'BEELDNET_ERR_ACCOUNT_LOCKED', 'BEELDNET_ERR_ACCOUNT_LOCKED'])
  })

  it('answers a name that is no account the same way, lockout included: guessing tells nobody which names exist', async () => {
    const users = new UserStore(join(await tempDir('users'), 'users.json'))
    await users.add({ username: 'beheer', name: 'IT beheer', role: 'it-admin' }, 'the right password')
    const codes = async (username: string): Promise<string[]> => {
      const out: string[] = []
      for (let i = 0; i < 6; i++) out.push(await users.authenticate(username, 'a wrong password').then(() => 'ok', (err: { code: string }) => err.code))
      return out
    }
    const real = await codes('beheer')
    expect(real).toEqual([...Array<string>(5).fill('BEELDNET_ERR_LOGIN_FAILED'), 'BEELDNET_ERR_ACCOUNT_LOCKED'])
    expect(await codes('nobody-here')).toEqual(real)
  })

  it('keeps API tokens as hashes, recognises a live one and not a revoked or forged one', async () => {
    const users = new UserStore(join(await tempDir('users'), 'users.json'))
    const { id, token } = await users.addToken('PACS Sectra', 'clinician')
    expect(await readFile(users.path, 'utf8')).not.toContain(token)
    expect(await users.tokenFor(token)).toMatchObject({ id, name: 'PACS Sectra', role: 'clinician' })
    expect(await users.tokenFor(`${token.slice(0, -2)}xx`)).toBeUndefined()
    await users.revokeToken(id)
    expect(await users.tokenFor(token)).toBeUndefined()
  })

  it('is managed with beeldnet node user and token; a made password is shown once', async () => {
    const dataDir = await tempDir('users-cli')
    const cli = async (...args: string[]): ReturnType<typeof runBeeldnet> => runBeeldnet(['node', '--data-dir', dataDir, ...args])
    const added = await cli('--json', 'user', 'add', 'arts', '--role', 'clinician', '--name', 'dr. A. Jansen', '--uzi', '123456789', '--role-code', '01.015')
    expect(added.code, added.stderr).toBe(0)
    const { password } = JSON.parse(added.stdout) as { password: string }
    const users = new UserStore(join(dataDir, 'users.json'))
    expect(await users.authenticate('arts', password)).toMatchObject({ role: 'clinician' })
    const listed = await cli('user', 'list')
    expect(listed.stdout).toMatch(/arts\s+clinician\s+dr\. A\. Jansen \(UZI 123456789\)/)
    expect((await cli('user', 'disable', 'arts')).code).toBe(0)
    expect((await cli('user', 'list')).stdout).toContain('DISABLED')
    const noUzi = await cli('user', 'add', 'arts2', '--role', 'clinician', '--name', 'x')
    expect(noUzi.code).not.toBe(0)
    expect(noUzi.stderr).toContain('UZI')
    const token = await cli('--json', 'token', 'add', 'PACS', '--role', 'clinician')
    const made = JSON.parse(token.stdout) as { token: string, id: string }
    expect(await users.tokenFor(made.token)).toMatchObject({ name: 'PACS' })
    expect((await cli('token', 'revoke', made.id)).code).toBe(0)

    // Every change is in the node's trail, with the OS account that made it, in one unbroken chain.
    const trail = (await readFile(join(dataDir, 'audit', 'trail.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as AuditRecord)
    expect(trail.map((r) => [r.event, r.outcome, r.details?.username ?? r.details?.token])).toEqual([
      ['account-change', 'account added', 'arts'], ['account-change', 'account disabled', 'arts'], ['account-change', 'token added', made.id], ['account-change', 'token revoked', made.id]
    ])
    expect(trail[0]!.user.system).toMatch(/^beeldnet CLI as \S+@\S+$/)
    expect(await verifyTrail(join(dataDir, 'audit', 'trail.jsonl'))).toMatchObject({ ok: true, records: 4 })
  })

  it('changes made by the CLI while the node runs join the node trail without breaking its chain', async () => {
    const dataDir = await tempDir('users-running')
    const running = new AuditLog(join(dataDir, 'audit', 'trail.jsonl'))
    await running.start()
    try {
      await running.record({ event: 'login', outcome: 'success', user: { name: 'someone' } })
      const added = await runBeeldnet(['node', '--data-dir', dataDir, 'user', 'add', 'controle', '--role', 'auditor', '--name', 'M. de Wit'])
      expect(added.code, added.stderr).toBe(0)
      const after = await running.record({ event: 'login', outcome: 'failed', user: { name: 'someone' } })
      expect(after.seq).toBe(3)
    } finally {
      await running.stop()
    }
    const result = await verifyTrail(join(dataDir, 'audit', 'trail.jsonl'))
    expect(result).toMatchObject({ ok: true, records: 3 })
  })
})
