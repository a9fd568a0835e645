import { useState } from 'preact/hooks'
import { api } from '../api.ts'
import { ErrorLine, Loading, useLoad } from '../components.tsx'
import { useI18n } from '../i18n.ts'

/* What is in force from the config file (read-only), and a C-ECHO per PACS destination. */

interface Settings {
  routing: { rules: unknown[] }
  policy: { pull: Array<{ ura: string, purposes?: string[], departments?: string[], requireConsent?: boolean, decision: string }> }
  transfers: { bulkPatientLimit: number }
  dimse: { enabled: boolean, aeTitle: string, port: number, destinations: Array<{ aeTitle: string, host: string, port: number }> }
  pacs: { destination: string, forward: string }
}

export function Settings (): preact.JSX.Element {
  const { t } = useI18n()
  const { data, error } = useLoad(async () => api.get<Settings>('/api/admin/settings'))
  const [echo, setEcho] = useState<Record<string, string>>({})
  const run = async (ae: string): Promise<void> => {
    try {
      const answer = await api.post<{ ok: boolean, ms?: number, reason?: string }>(`/api/admin/pacs/${encodeURIComponent(ae)}/echo`)
      setEcho((e) => ({ ...e, [ae]: answer.ok ? t('settings.echoOk', { ms: answer.ms ?? 0 }) : answer.reason ?? '' }))
    } catch (err) { setEcho((e) => ({ ...e, [ae]: String((err as Error).message) })) }
  }
  if (data === undefined) return error === undefined ? <Loading /> : <ErrorLine error={error} />
  return (
    <div>
      <h1>{t('settings.title')}</h1>
      <h2>{t('settings.pacs')}</h2>
      <ul>{data.dimse.destinations.map((d) => (
        <li key={d.aeTitle}>{d.aeTitle} ({d.host}:{d.port}) <button type='button' onClick={() => { void run(d.aeTitle) }}>{t('settings.echo')}</button> <span role='status'>{echo[d.aeTitle]}</span></li>
      ))}</ul>
      <h2>{t('settings.policy')}</h2>
      <pre>{JSON.stringify({ pull: data.policy.pull, bulkPatientLimit: data.transfers.bulkPatientLimit }, null, 2)}</pre>
      <h2>{t('settings.routing')}</h2>
      <pre>{JSON.stringify(data.routing.rules, null, 2)}</pre>
    </div>
  )
}
