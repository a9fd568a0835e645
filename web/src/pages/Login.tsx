import { useState } from 'preact/hooks'
import { api } from '../api.ts'
import { ErrorLine } from '../components.tsx'
import { useI18n } from '../i18n.ts'
import type { Me } from '../types.ts'

export function Login ({ onLogin }: { onLogin: (me: Me) => void }): preact.JSX.Element {
  const { t } = useI18n()
  const [error, setError] = useState<unknown>(undefined)
  const [busy, setBusy] = useState(false)
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault()
    const form = new FormData(e.currentTarget as HTMLFormElement)
    setBusy(true)
    try {
      const answer = await api.post<{ caller: Me }>('/api/login', { username: String(form.get('username')), password: String(form.get('password')) })
      onLogin(answer.caller)
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }
  return (
    <form class='card narrow' onSubmit={(e) => { void submit(e) }}>
      <h1>{t('login.title')}</h1>
      <label>{t('login.username')}<input name='username' autocomplete='username' required autofocus /></label>
      <label>{t('login.password')}<input name='password' type='password' autocomplete='current-password' required /></label>
      <ErrorLine error={error} />
      <button type='submit' disabled={busy}>{t('login.submit')}</button>
    </form>
  )
}
