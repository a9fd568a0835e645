import { useState } from 'preact/hooks'
import { api } from '../api.ts'
import { ErrorLine, Loading, time, useLoad } from '../components.tsx'
import { useI18n, type TextKey } from '../i18n.ts'
import type { ShareMade, ShareView } from '../types.ts'

/*
 * A study's links for its patient, on the study page: make one (valid for some days, a number of
 * downloads), hand over the link and, apart from it, the code (shown once, to print or read out),
 * see who made which and how far each has been used, and revoke one.
 */

export function ShareTable ({ shares, onRevoke, showStudy = false }: { shares: ShareView[], onRevoke: (id: string) => void, showStudy?: boolean }): preact.JSX.Element {
  const { t, lang } = useI18n()
  return (
    <table data-testid='shares'>
      <thead><tr>
        {showStudy && <th scope='col'>{t('col.study')}</th>}
        <th scope='col'>{t('shares.createdBy')}</th><th scope='col'>{t('shares.expires')}</th><th scope='col'>{t('shares.downloads')}</th>
        <th scope='col'>{t('col.status')}</th><th scope='col'>{t('col.actions')}</th>
      </tr></thead>
      <tbody>{shares.map((s) => (
        <tr key={s.id} data-share={s.id}>
          {showStudy && <td><small>{s.studyInstanceUID}</small></td>}
          <td>{s.createdBy}<small>{time(s.createdAt, lang)}</small></td>
          <td>{time(s.expiresAt, lang)}</td>
          <td>{s.downloads} / {s.maxDownloads}<small>{t('shares.opens', { count: s.opens, failed: s.failedAttempts })}</small></td>
          <td>{t(`shares.state.${s.state}` as TextKey)}</td>
          <td>{s.state === 'active' && <button type='button' class='secondary' onClick={() => { onRevoke(s.id) }}>{t('shares.revoke')}</button>}</td>
        </tr>
      ))}</tbody>
    </table>
  )
}

export function ShareLinks ({ uid }: { uid: string }): preact.JSX.Element {
  const { t, lang } = useI18n()
  const path = `/api/studies/${encodeURIComponent(uid)}/shares`
  const { data, error, reload } = useLoad(async () => (await api.get<{ shares: ShareView[] }>(path)).shares, [uid])
  const [made, setMade] = useState<ShareMade | undefined>(undefined)
  const [actionError, setActionError] = useState<unknown>(undefined)
  const create = async (e: Event): Promise<void> => {
    e.preventDefault()
    const f = new FormData(e.currentTarget as HTMLFormElement)
    try {
      setActionError(undefined)
      setMade(await api.post<ShareMade>(path, { days: Number(f.get('days')), maxDownloads: Number(f.get('maxDownloads')) }))
      reload()
    } catch (err) { setActionError(err) }
  }
  const revoke = async (id: string): Promise<void> => {
    try { await api.del(`/api/shares/${encodeURIComponent(id)}`); reload() } catch (err) { setActionError(err) }
  }
  return (
    <section class='card' aria-labelledby='h-shares'>
      <h2 id='h-shares'>{t('shares.title')}</h2>
      {made !== undefined && (
        <div class='share-made' role='status' data-testid='share-made'>
          <p>{t('shares.made')}</p>
          <p><strong>{t('shares.link')}</strong> <code data-testid='share-url'>{made.url}</code></p>
          {made.code === undefined
            ? <p>{t('shares.codeSent', { via: made.handedOver })}</p>
            : <p><strong>{t('shares.code')}</strong> <code class='share-code' data-testid='share-code'>{made.code}</code></p>}
          <p><small>{t('shares.codeOnce', { date: time(made.expiresAt, lang), downloads: made.maxDownloads })}</small></p>
          <button type='button' class='secondary' onClick={() => { print() }}>{t('shares.print')}</button>
        </div>
      )}
      <form onSubmit={(e) => { void create(e) }} class='inline-form'>
        <label>{t('shares.days')}<input name='days' type='number' min={1} max={90} value={14} required /></label>
        <label>{t('shares.maxDownloads')}<input name='maxDownloads' type='number' min={1} max={20} value={5} required /></label>
        <button type='submit'>{t('shares.create')}</button>
      </form>
      <ErrorLine error={actionError} />
      {data === undefined ? (error === undefined ? <Loading /> : <ErrorLine error={error} />) : data.length === 0 ? <p>{t('shares.none')}</p> : <ShareTable shares={data} onRevoke={(id) => { void revoke(id) }} />}
    </section>
  )
}
