import { useState } from 'preact/hooks'
import { api } from '../api.ts'
import { ErrorLine, time } from '../components.tsx'
import { useI18n } from '../i18n.ts'

/* Every access to one patient's data on this node (NEN 7513), as a table and as a printable page. */

interface Access { time: string, event: string, outcome: string, user: { name?: string, uzi?: string, system?: string }, institution?: { ura: string, name?: string } }

export function PatientReport (): preact.JSX.Element {
  const { t, lang } = useI18n()
  const [bsn, setBsn] = useState('')
  const [accesses, setAccesses] = useState<Access[] | undefined>(undefined)
  const [error, setError] = useState<unknown>(undefined)
  const show = async (e: Event): Promise<void> => {
    e.preventDefault()
    try { setError(undefined); setAccesses((await api.get<{ accesses: Access[] }>(`/api/audit/patients/${bsn}`)).accesses) } catch (err) { setError(err) }
  }
  return (
    <div>
      <h1>{t('report.title')}</h1>
      <form class='card' onSubmit={(e) => { void show(e) }}>
        <label>{t('col.bsn')}<input value={bsn} onInput={(e) => { setBsn((e.currentTarget as HTMLInputElement).value.trim()) }} required pattern='[0-9]{9}' inputMode='numeric' /></label>
        <button type='submit'>{t('report.submit')}</button>
        {accesses !== undefined && <a href={`/api/audit/patients/${bsn}?format=html`} target='_blank' rel='noopener'>{t('report.html')}</a>}
      </form>
      <ErrorLine error={error} />
      {accesses !== undefined && (
        <div class='scroll'><table>
          <thead><tr><th scope='col'>{t('col.time')}</th><th scope='col'>{t('col.event')}</th><th scope='col'>{t('col.outcome')}</th><th scope='col'>{t('col.user')}</th><th scope='col'>{t('col.institution')}</th></tr></thead>
          <tbody>{accesses.map((a, i) => (
            <tr key={i}><td>{time(a.time, lang)}</td><td>{a.event}</td><td>{a.outcome}</td><td>{a.user.name ?? a.user.system}</td><td>{a.institution?.name ?? a.institution?.ura ?? ''}</td></tr>
          ))}</tbody>
        </table></div>
      )}
    </div>
  )
}
