import { useState } from 'preact/hooks'
import { api } from '../api.ts'
import { ErrorLine, Loading, useLoad } from '../components.tsx'
import { useI18n } from '../i18n.ts'

/* Accounts of this node for IT: list, add (a password is made and shown once), disable. */

interface User { username: string, name: string, role: string, uzi?: string, disabled: boolean, lockedUntil?: string }

export function Users (): preact.JSX.Element {
  const { t } = useI18n()
  const { data, error, reload } = useLoad(async () => (await api.get<{ users: User[] }>('/api/users')).users)
  const [message, setMessage] = useState('')
  const [actionError, setActionError] = useState<unknown>(undefined)
  const add = async (e: Event): Promise<void> => {
    e.preventDefault()
    const form = e.currentTarget as HTMLFormElement
    const f = new FormData(form)
    const value = (k: string): string | undefined => { const v = String(f.get(k) ?? '').trim(); return v === '' ? undefined : v }
    try {
      setActionError(undefined)
      const made = await api.post<{ username: string, password: string }>('/api/users', { username: value('username'), name: value('name'), role: value('role'), uzi: value('uzi'), roleCode: value('roleCode') })
      setMessage(t('users.created', made))
      form.reset()
      reload()
    } catch (err) { setActionError(err) }
  }
  const disable = async (username: string): Promise<void> => {
    try { await api.post(`/api/users/${encodeURIComponent(username)}/disable`); reload() } catch (err) { setActionError(err) }
  }
  const resetPassword = async (username: string): Promise<void> => {
    try {
      const made = await api.post<{ username: string, password: string }>(`/api/users/${encodeURIComponent(username)}/reset-password`)
      setMessage(t('users.newPassword', made))
      reload()
    } catch (err) { setActionError(err) }
  }
  if (data === undefined) return error === undefined ? <Loading /> : <ErrorLine error={error} />
  return (
    <div>
      <h1>{t('users.title')}</h1>
      <table>
        <thead><tr><th scope='col'>{t('users.username')}</th><th scope='col'>{t('users.name')}</th><th scope='col'>{t('users.role')}</th><th scope='col'>{t('col.actions')}</th></tr></thead>
        <tbody>{data.map((u) => (
          <tr key={u.username}><td>{u.username}</td><td>{u.name}{u.uzi === undefined ? '' : ` (UZI ${u.uzi})`}</td><td>{u.role}</td>
            <td>{u.disabled ? t('users.disabled') : <>
              <button type='button' class='secondary' onClick={() => { void resetPassword(u.username) }}>{t('users.resetPassword')}</button>{' '}
              <button type='button' class='secondary' onClick={() => { void disable(u.username) }}>{t('users.disable')}</button>
            </>}{u.lockedUntil !== undefined && <small>{t('users.locked')}</small>}</td></tr>
        ))}</tbody>
      </table>
      <form class='card' onSubmit={(e) => { void add(e) }}>
        <h2>{t('users.add')}</h2>
        <div class='grid'>
          <label>{t('users.username')}<input name='username' required pattern='[a-z0-9._\-]{2,64}' /></label>
          <label>{t('users.name')}<input name='name' required /></label>
          <label>{t('users.role')}<select name='role'><option value='clinician'>clinician</option><option value='it-admin'>it-admin</option><option value='auditor'>auditor</option></select></label>
          <label>{t('users.uzi')}<input name='uzi' pattern='[0-9]{9}' /></label>
          <label>{t('users.roleCode')}<input name='roleCode' placeholder='01.015' /></label>
        </div>
        <ErrorLine error={actionError} />
        <button type='submit'>{t('users.add')}</button>
        {message !== '' && <p role='status'>{message}</p>}
      </form>
    </div>
  )
}
