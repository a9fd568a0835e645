import { useEffect, useState } from 'preact/hooks'
import { api } from '../api.ts'
import { dicomDate, duration, ErrorLine, Loading, personName, ProgressBar, time, useLoad } from '../components.tsx'
import { useI18n, type TextKey } from '../i18n.ts'
import { onNodeEvent } from '../notices.tsx'
import type { Transfer } from '../types.ts'

/*
 * Received and sent studies, newest first. "New" marks what arrived since this browser last
 * looked (kept per browser); live events refresh the list.
 */

const SEEN_KEY = 'beeldnet.inboxSeen'

export function Inbox (): preact.JSX.Element {
  const { t, lang } = useI18n()
  const { data, error, reload } = useLoad(async () => api.get<{ transfers: Transfer[] }>('/api/inbox'))
  const [seenBefore] = useState(() => localStorage.getItem(SEEN_KEY) ?? '')
  // Reloaded on news, at most every two seconds: each load is recorded per patient in the audit trail.
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined
    const off = onNodeEvent((name) => {
      if ((name === 'state' || name === 'study-complete' || name === 'report-arrived') && timer === undefined) timer = setTimeout(() => { timer = undefined; reload() }, 2000)
    })
    return () => { off(); if (timer !== undefined) clearTimeout(timer) }
  }, [])
  useEffect(() => { if (data !== undefined) localStorage.setItem(SEEN_KEY, new Date().toISOString()) }, [data])
  if (data === undefined) return error === undefined ? <Loading /> : <ErrorLine error={error} />

  const table = (direction: 'incoming' | 'outgoing'): preact.JSX.Element => {
    const rows = data.transfers.filter((x) => x.direction === direction)
    return (
      <section aria-labelledby={`h-${direction}`}>
        <h2 id={`h-${direction}`}>{t(direction === 'incoming' ? 'inbox.incoming' : 'inbox.outgoing')}</h2>
        {rows.length === 0 ? <p>{t('none')}</p> : (
          <div class='scroll'>
            <table data-testid={`${direction}-table`}>
              <thead><tr>
                <th scope='col'>{t('col.patient')}</th><th scope='col'>{t('col.study')}</th>
                <th scope='col'>{t(direction === 'incoming' ? 'col.from' : 'col.to')}</th><th scope='col'>{t('col.note')}</th>
                <th scope='col'>{t('col.status')}</th><th scope='col'>{t('col.duration')}</th><th scope='col'>{t('col.time')}</th>
              </tr></thead>
              <tbody>
                {rows.map((x) => (
                  <tr key={x.transferId} class={x.createdAt > seenBefore && direction === 'incoming' ? 'new' : ''}>
                    <td>{personName(x.study.patient.name)}<br /><small>{dicomDate(x.study.patient.birthDate, lang)}</small></td>
                    <td><a href={`#/studies/${encodeURIComponent(x.studyInstanceUID)}`}>{x.study.description || x.study.modalities.join(', ')}</a>
                      {x.createdAt > seenBefore && direction === 'incoming' && <span class='badge'>{t('inbox.new')}</span>}
                      {direction === 'incoming' && x.state === 'complete' && <small><a href={`#/viewer/studies/${encodeURIComponent(x.studyInstanceUID)}`}>{t('viewer.open')}</a></small>}</td>
                    <td>{x.institution.name ?? x.institution.ura} <small>{x.department}</small></td>
                    <td>{x.note}<br /><small>{x.reason}</small></td>
                    <td>
                      {x.state === 'complete' || x.state === 'failed' || x.state === 'cancelled' || x.state === 'declined'
                        ? <span class={`state ${x.state}`}>{t(`state.${x.state}` as TextKey)}</span>
                        : <a href={`#/transfers/${x.transferId}`}><ProgressBar done={x.progress.instancesDone} total={x.progress.instancesTotal} label={t(`state.${x.state}` as TextKey)} /></a>}
                      {x.lastError !== undefined && <small class='error'>{x.lastError.message}</small>}
                    </td>
                    <td>{duration(x.createdAt, x.completedAt)}</td>
                    <td>{time(x.createdAt, lang)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    )
  }
  return (
    <div>
      <h1>{t('inbox.title')}</h1>
      {table('incoming')}
      {table('outgoing')}
    </div>
  )
}
