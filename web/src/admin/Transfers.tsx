import { useState } from 'preact/hooks'
import { api } from '../api.ts'
import { ErrorLine, Loading, ProgressBar, time, useLoad } from '../components.tsx'
import { useI18n, type TextKey } from '../i18n.ts'
import type { Institution } from '../types.ts'
import { AdminPacsExports } from './PacsExports.tsx'

/* All transfers for IT, with retry and cancel of outgoing ones, and the exports to the PACS; no patient data (that is for clinicians). */

interface TransferRecord {
  transferId: string
  direction: 'outgoing' | 'incoming'
  state: string
  createdAt: string
  destination?: { ura: string }
  senderUra?: string
  done: { instances: number }
  totals: { instances: number }
  lastError?: { message: string }
  /** an outgoing transfer waiting for its retry: when it is due */
  nextAttemptAt?: string
}

const ENDED = new Set(['complete', 'cancelled'])

export function AdminTransfers (): preact.JSX.Element {
  const { t, lang } = useI18n()
  const { data, error, reload } = useLoad(async () => {
    const [{ outgoing, incoming }, { institutions }] = await Promise.all([
      api.get<{ outgoing: TransferRecord[], incoming: TransferRecord[] }>('/api/transfers'),
      api.get<{ institutions: Institution[] }>('/api/institutions')
    ])
    const names = new Map(institutions.map((i) => [i.ura, i.name]))
    return [...outgoing, ...incoming].sort((a, b) => b.createdAt.localeCompare(a.createdAt)).map((x) => {
      const ura = x.destination?.ura ?? x.senderUra ?? ''
      return { ...x, institution: { ura, name: names.get(ura) } }
    })
  })
  const [actionError, setActionError] = useState<unknown>(undefined)
  const act = async (id: string, action: 'retry' | 'cancel'): Promise<void> => {
    try { setActionError(undefined); await api.post(`/api/transfers/${id}/${action}`); reload() } catch (err) { setActionError(err) }
  }
  if (data === undefined) return error === undefined ? <Loading /> : <ErrorLine error={error} />
  return (
    <div>
      <h1>{t('nav.transfers')}</h1>
      <ErrorLine error={actionError} />
      <div class='scroll'><table>
        <thead><tr><th scope='col'>{t('col.time')}</th><th scope='col'>{t('col.institution')}</th><th scope='col'>{t('col.status')}</th><th scope='col'>{t('col.actions')}</th></tr></thead>
        <tbody>{data.map((x) => (
          <tr key={x.transferId}>
            <td>{time(x.createdAt, lang)}</td>
            <td>{x.direction === 'incoming' ? '←' : '→'} {x.institution.name ?? x.institution.ura}</td>
            <td><ProgressBar done={x.done.instances} total={x.totals.instances} label={t(`state.${x.state}` as TextKey)} />{x.lastError !== undefined && <small class='error'>{x.lastError.message}</small>}{x.state === 'queued' && x.nextAttemptAt !== undefined && <small data-testid='next-attempt'>{t('transfers.next', { time: time(x.nextAttemptAt, lang) })}</small>}</td>
            <td>{x.direction === 'outgoing' && !ENDED.has(x.state) && <>
              <button type='button' onClick={() => { void act(x.transferId, 'retry') }}>{t('transfers.retry')}</button>{' '}
              <button type='button' class='secondary' onClick={() => { void act(x.transferId, 'cancel') }}>{t('transfers.cancel')}</button>
            </>}</td>
          </tr>
        ))}</tbody>
      </table></div>
      <AdminPacsExports />
    </div>
  )
}
