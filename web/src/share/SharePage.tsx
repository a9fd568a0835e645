import { useState } from 'preact/hooks'
import { api, ApiError } from '../api.ts'
import { dicomDate, ErrorLine, Loading, personName, useLoad } from '../components.tsx'
import { useI18n } from '../i18n.ts'
import type { StudyDetail } from '../types.ts'
import { shareSource } from './share-source.ts'

/*
 * What a patient sees at their share link (/share/<token>), without an account: the code their
 * clinician gave them, then their study: what it is, the downloads (the study as a ZIP with a
 * DICOMDIR for another hospital or a viewer, the reports as PDF) and the read-only viewer.
 */

interface Session { id: string, expiresAt: string, downloadsLeft: number }

/** The share link's own refusals, in words a patient understands. */
function codeSentence (err: unknown, t: ReturnType<typeof useI18n>['t']): string | undefined {
  if (!(err instanceof ApiError)) return undefined
  if (err.code === 'BEELDNET_ERR_SHARE_CODE') return t('share.wrongCode')
  if (err.code === 'BEELDNET_ERR_SHARE_LOCKED') return t('share.locked')
  if (err.code === 'BEELDNET_ERR_SHARE_ENDED') return t('share.ended')
  if (err.code === 'BEELDNET_ERR_RATE_LIMITED') return t('share.locked')
  return undefined
}

function Viewer ({ base, uid }: { base: string, uid: string }): preact.JSX.Element {
  // The viewer (Cornerstone3D) is a chunk of its own, fetched once the code is accepted.
  const module = useLoad(async () => import('../viewer/Viewer.tsx'), [])
  if (module.error !== undefined) return <ErrorLine error={module.error} />
  if (module.data === undefined) return <Loading />
  const { Viewer: Component } = module.data
  return <Component uid={uid} source={shareSource(base)} cpu={localStorage.getItem('beeldnet.viewer.render') === 'cpu'} />
}

export function SharePage ({ base }: { base: string }): preact.JSX.Element {
  const { t, lang } = useI18n()
  const [round, setRound] = useState(0)
  const [session, setSession] = useState<Session | undefined>(undefined)
  const [codeError, setCodeError] = useState<unknown>(undefined)
  // A reload keeps the link's session (its cookie): the study answers, or the code is asked.
  const study = useLoad(async () => api.get<StudyDetail>(`${base}/api/study`), [round])
  const reports = useLoad(async () => study.data === undefined ? [] : shareSource(base).reports(''), [study.data?.studyInstanceUID])

  const open = async (code: string): Promise<void> => {
    try {
      setCodeError(undefined)
      setSession(await api.post<Session>(`${base}/session`, { code }))
      setRound((r) => r + 1)
    } catch (err) { setCodeError(err) }
  }

  if (study.data === undefined && study.error === undefined) return <Loading />
  if (study.data === undefined) {
    const ended = study.error instanceof ApiError && study.error.code === 'BEELDNET_ERR_SHARE_ENDED'
    return (
      <section class='card narrow' aria-labelledby='h-share'>
        <h1 id='h-share'>{t('share.title')}</h1>
        {ended
          ? <p role='alert' class='error'>{t('share.ended')}</p>
          : (
            <form onSubmit={(e) => { e.preventDefault(); void open(String(new FormData(e.currentTarget).get('code') ?? '')) }}>
              <p>{t('share.intro')}</p>
              <label>{t('share.code')}<input name='code' autocomplete='off' autocapitalize='characters' spellcheck={false} required /></label>
              <button type='submit'>{t('share.open')}</button>
              {codeError !== undefined && (codeSentence(codeError, t) === undefined ? <ErrorLine error={codeError} /> : <p role='alert' class='error'>{codeSentence(codeError, t)}</p>)}
            </form>
            )}
      </section>
    )
  }
  const s = study.data
  const pdfs = (reports.data ?? []).filter((r) => r.kind === 'pdf')
  return (
    <div class='share'>
      <section class='card' aria-labelledby='h-study'>
        <h1 id='h-study'>{t('share.yourStudy')}: {s.description || s.modalities.join(', ')}</h1>
        <p>{personName(s.patient.name)}, {dicomDate(s.date, lang)} · {s.modalities.join(', ')} · {t('study.images', { count: s.numberOfInstances })}</p>
        <h2>{t('share.downloads')}</h2>
        <ul class='downloads'>
          <li><a href={`${base}/download/study.zip`}>{t('share.zip')}</a><small>{t('share.zipHelp')}</small></li>
          {pdfs.map((r) => <li key={r.sopInstanceUID}><a href={`${base}/api/reports/${encodeURIComponent(r.sopInstanceUID)}`} download={`${r.title ?? 'verslag'}.pdf`}>{t('share.report', { title: r.title ?? 'PDF' })}</a></li>)}
        </ul>
        {session !== undefined && <p><small>{t('share.validUntil', { date: new Date(session.expiresAt).toLocaleDateString(lang === 'nl' ? 'nl-NL' : 'en-GB'), downloads: session.downloadsLeft })}</small></p>}
      </section>
      <Viewer base={base} uid={s.studyInstanceUID} />
    </div>
  )
}
