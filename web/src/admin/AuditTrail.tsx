import { useState } from 'preact/hooks'
import { api } from '../api.ts'
import { ErrorLine, time, useLoad } from '../components.tsx'
import { useI18n } from '../i18n.ts'

/* The audit trail, newest first, a page at a time, and its verification (auditors and IT). */

interface AuditRecord { seq: number, time: string, event: string, outcome: string, user: { name?: string, uzi?: string, system?: string }, patient?: { bsn?: string, name?: string }, institution?: { ura: string, name?: string } }
interface Verification { ok: boolean, records: number, problems: Array<{ line: number, kind: string, message: string }> }

export function AuditTrail ({ canPage = true }: { canPage?: boolean }): preact.JSX.Element {
  const { t, lang } = useI18n()
  const [before, setBefore] = useState<number | undefined>(undefined)
  const [verification, setVerification] = useState<Verification | undefined>(undefined)
  const [error, setError] = useState<unknown>(undefined)
  const page = useLoad(async () => canPage ? api.get<{ records: AuditRecord[], next: number | null }>(`/api/admin/audit${before === undefined ? '' : `?before=${before}`}`) : undefined, [before])
  const verify = async (): Promise<void> => {
    try { setError(undefined); setVerification(await api.get<Verification>('/api/audit/verify')) } catch (err) { setError(err) }
  }
  return (
    <div>
      <h1>{t('audit.title')}</h1>
      <button type='button' onClick={() => { void verify() }}>{t('audit.verify')}</button>
      {verification !== undefined && (
        <p role='status' class={verification.ok ? 'ok' : 'error'}>
          {verification.ok ? t('audit.intact', { records: verification.records }) : t('audit.broken', { problems: verification.problems.map((p) => `${p.kind} (${p.line})`).join(', ') })}
        </p>
      )}
      <ErrorLine error={error ?? page.error} />
      {page.data !== undefined && (
        <>
          <div class='scroll'><table>
            <thead><tr><th scope='col'>#</th><th scope='col'>{t('col.time')}</th><th scope='col'>{t('col.event')}</th><th scope='col'>{t('col.outcome')}</th><th scope='col'>{t('col.user')}</th><th scope='col'>{t('col.patient')}</th><th scope='col'>{t('col.institution')}</th></tr></thead>
            <tbody>{page.data.records.map((r) => (
              <tr key={r.seq}><td>{r.seq}</td><td>{time(r.time, lang)}</td><td>{r.event}</td><td>{r.outcome}</td>
                <td>{r.user.name ?? r.user.system}{r.user.uzi === undefined ? '' : ` (UZI ${r.user.uzi})`}</td>
                <td>{r.patient?.bsn ?? ''}</td><td>{r.institution?.name ?? r.institution?.ura ?? ''}</td></tr>
            ))}</tbody>
          </table></div>
          {page.data.next !== null && <button type='button' class='secondary' onClick={() => { setBefore(page.data!.next ?? undefined) }}>{t('audit.older')}</button>}
        </>
      )}
    </div>
  )
}
