import { useState } from 'preact/hooks'
import { api } from '../api.ts'
import { ErrorLine, Loading, ProgressBar, time, useLoad } from '../components.tsx'
import { useI18n, type TextKey } from '../i18n.ts'

/* The export queue to the PACS for IT, with retry and cancel as for transfers; no patient data. */

interface ExportRecord {
  exportId: string
  studyInstanceUID: string
  destination: string
  state: string
  attempts: number
  createdAt: string
  nextAttemptAt?: string
  done: { instances: number }
  totals: { instances: number }
  lastError?: { code: string, message: string }
}

const ENDED = new Set(['complete', 'cancelled'])

export function AdminPacsExports (): preact.JSX.Element {
  const { t, lang } = useI18n()
  const { data, error, reload } = useLoad(async () => (await api.get<{ exports: ExportRecord[] }>('/api/pacs/exports')).exports)
  const [actionError, setActionError] = useState<unknown>(undefined)
  const act = async (id: string, action: 'retry' | 'cancel'): Promise<void> => {
    try { setActionError(undefined); await api.post(`/api/pacs/exports/${encodeURIComponent(id)}/${action}`); reload() } catch (err) { setActionError(err) }
  }
  return (
    <section aria-labelledby='h-exports'>
      <h2 id='h-exports'>{t('exports.title')}</h2>
      <ErrorLine error={actionError} />
      {data === undefined
        ? (error === undefined ? <Loading /> : <ErrorLine error={error} />)
        : data.length === 0
          ? <p>{t('exports.none')}</p>
          : (
            <div class='scroll'><table>
              <thead><tr><th scope='col'>{t('col.time')}</th><th scope='col'>{t('col.destination')}</th><th scope='col'>{t('col.status')}</th><th scope='col'>{t('col.actions')}</th></tr></thead>
              <tbody>{data.map((x) => (
                <tr key={x.exportId} data-export={x.exportId}>
                  <td>{time(x.createdAt, lang)}</td>
                  <td>{x.destination}</td>
                  <td>
                    <ProgressBar done={x.done.instances} total={x.totals.instances} label={t(`state.${x.state}` as TextKey)} />
                    {x.state === 'queued' && x.nextAttemptAt !== undefined && <small>{t('exports.next', { time: time(x.nextAttemptAt, lang) })}</small>}
                    {x.lastError !== undefined && !ENDED.has(x.state) && <small class='error'>{x.lastError.message}</small>}
                  </td>
                  <td>
                    {(x.state === 'failed' || x.state === 'cancelled') && <button type='button' onClick={() => { void act(x.exportId, 'retry') }}>{t('transfers.retry')}</button>}
                    {(x.state === 'queued' || x.state === 'sending') && <button type='button' class='secondary' onClick={() => { void act(x.exportId, 'cancel') }}>{t('transfers.cancel')}</button>}
                  </td>
                </tr>
              ))}</tbody>
            </table></div>
            )}
    </section>
  )
}
