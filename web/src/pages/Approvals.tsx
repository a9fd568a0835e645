import { useState } from 'preact/hooks'
import { api } from '../api.ts'
import { ErrorLine, Loading, personName, time, useLoad } from '../components.tsx'
import { useI18n, type TextKey } from '../i18n.ts'
import type { Approval } from '../types.ts'

/* Requests from other hospitals waiting for someone here: who asked, for which patient, why. */

export function Approvals (): preact.JSX.Element {
  const { t, lang } = useI18n()
  const { data, error, reload } = useLoad(async () => (await api.get<{ approvals: Approval[] }>('/api/approvals?state=waiting')).approvals)
  const [actionError, setActionError] = useState<unknown>(undefined)
  const decide = async (id: string, form?: HTMLFormElement): Promise<void> => {
    try {
      setActionError(undefined)
      if (form === undefined) await api.post(`/api/approvals/${encodeURIComponent(id)}/approve`)
      else await api.post(`/api/approvals/${encodeURIComponent(id)}/refuse`, { reason: String(new FormData(form).get('reason')) })
      reload()
    } catch (err) { setActionError(err) }
  }
  if (data === undefined) return error === undefined ? <Loading /> : <ErrorLine error={error} />
  return (
    <div>
      <h1>{t('approvals.title')}</h1>
      <ErrorLine error={actionError} />
      {data.length === 0 ? <p>{t('approvals.none')}</p> : data.map((a) => (
        <article class='card' key={a.requestId} data-testid='approval'>
          <h2>{a.from.name}: {personName(a.patient.name)} {a.patient.bsn === undefined ? '' : `(BSN ${a.patient.bsn})`}</h2>
          <p>{t('col.requester')}: {a.requester.clinician.name} (UZI {a.requester.clinician.uzi}), {t(`purpose.${a.requester.purpose}` as TextKey)}{a.requester.department === undefined ? '' : `, ${a.requester.department}`}</p>
          <p><small>{time(a.receivedAt, lang)}; {a.reason}</small></p>
          <button type='button' onClick={() => { void decide(a.requestId) }}>{t('approvals.approve')}</button>
          <form class='inline' onSubmit={(e) => { e.preventDefault(); void decide(a.requestId, e.currentTarget) }}>
            <label>{t('approvals.refuseReason')}<input name='reason' required maxLength={1024} /></label>
            <button type='submit' class='secondary'>{t('approvals.refuse')}</button>
          </form>
        </article>
      ))}
    </div>
  )
}
