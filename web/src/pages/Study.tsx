import { useState } from 'preact/hooks'
import { api } from '../api.ts'
import { dicomDate, duration, ErrorLine, Loading, personName, time, useLoad } from '../components.tsx'
import { useI18n, type TextKey } from '../i18n.ts'
import type { Report, StudyDetail, Transfer } from '../types.ts'
import { ShareLinks } from './ShareLinks.tsx'

/*
 * One study: patient and study details, a thumbnail per series (rendered by the node), the
 * reports (an SR as text, a PDF inline), this study's transfers, and "send to our PACS" with the
 * reconciliation shown: sent under the local id found, or held with a form for the id.
 */

/** Series of documents, not images: no thumbnail to show. */
const NOT_IMAGES = new Set(['SR', 'DOC', 'KO', 'PR'])

export function ReportView ({ uid, report, url = `/api/studies/${encodeURIComponent(uid)}/reports/${encodeURIComponent(report.sopInstanceUID)}` }: { uid: string, report: Report, url?: string }): preact.JSX.Element {
  const text = useLoad(async () => report.kind === 'sr' ? (await fetch(url, { credentials: 'same-origin' })).text() : '', [url])
  return (
    <article class='report' data-testid='report'>
      <h3>{report.title ?? report.kind.toUpperCase()}</h3>
      {report.kind === 'sr' && <pre>{text.data ?? ''}</pre>}
      {report.kind === 'pdf' && <iframe src={url} title={report.title ?? 'PDF'} class='pdf' />}
      {report.kind === 'cda' && <a href={url}>{report.title ?? 'CDA'}</a>}
    </article>
  )
}

export function StudyPage ({ uid }: { uid: string }): preact.JSX.Element {
  const { t, lang } = useI18n()
  const study = useLoad(async () => api.get<StudyDetail>(`/api/studies/${encodeURIComponent(uid)}`), [uid])
  const reports = useLoad(async () => (await api.get<{ reports: Report[] }>(`/api/studies/${encodeURIComponent(uid)}/reports`)).reports, [uid])
  const history = useLoad(async () => (await api.get<{ transfers: Transfer[] }>('/api/inbox')).transfers.filter((x) => x.studyInstanceUID === uid), [uid])
  const [pacs, setPacs] = useState<{ status: string, reason?: string, local?: { patientId: string } } | undefined>(undefined)
  const [pacsError, setPacsError] = useState<unknown>(undefined)
  const toPacs = async (body: Record<string, string>): Promise<void> => {
    try {
      setPacsError(undefined)
      setPacs(await api.post(`/api/studies/${encodeURIComponent(uid)}/pacs`, body))
    } catch (err) { setPacsError(err) }
  }
  if (study.data === undefined) return study.error === undefined ? <Loading /> : <ErrorLine error={study.error} />
  const s = study.data
  return (
    <div>
      <h1>{t('study.title')}: {s.description || s.modalities.join(', ')}</h1>
      <p class='actions'>
        <a class='button' href={`#/viewer/studies/${encodeURIComponent(uid)}`}>{t('viewer.open')}</a>
        <a class='button secondary' href={`/api/studies/${encodeURIComponent(uid)}/media.zip`}>{t('study.mediaZip')}</a>
      </p>
      <section class='card facts' aria-label={t('study.patient')}>
        <dl>
          <dt>{t('col.patient')}</dt><dd>{personName(s.patient.name)}</dd>
          <dt>{t('col.birthDate')}</dt><dd>{dicomDate(s.patient.birthDate, lang)}</dd>
          {s.patient.bsn !== undefined && <><dt>{t('col.bsn')}</dt><dd>{s.patient.bsn}</dd></>}
          <dt>{t('col.date')}</dt><dd>{dicomDate(s.date, lang)}</dd>
          <dt>{t('col.modality')}</dt><dd>{s.modalities.join(', ')}</dd>
          <dt>{t('col.accession')}</dt><dd>{s.accessionNumber}</dd>
        </dl>
      </section>
      <section aria-labelledby='h-series'>
        <h2 id='h-series'>{t('study.series')}</h2>
        <ul class='series'>
          {s.series.map((x) => (
            <li key={x.seriesInstanceUID}>
              {!NOT_IMAGES.has(x.modality) && <img src={`/api/studies/${encodeURIComponent(uid)}/series/${encodeURIComponent(x.seriesInstanceUID)}/thumbnail`} alt={t('study.thumbnail', { number: x.number ?? '' })} width={128} height={128} loading='lazy'
                onError={(e) => { (e.currentTarget as HTMLImageElement).classList.add('missing') }} />}
              <span>{x.modality} {x.description}</span>
              <small>{t('study.images', { count: x.numberOfInstances })}</small>
            </li>
          ))}
        </ul>
      </section>
      <section aria-labelledby='h-reports'>
        <h2 id='h-reports'>{t('study.reports')}</h2>
        {reports.data === undefined ? <Loading /> : reports.data.length === 0 ? <p>{t('study.noReports')}</p> : reports.data.map((r) => <ReportView key={r.sopInstanceUID} uid={uid} report={r} />)}
      </section>
      <section aria-labelledby='h-history'>
        <h2 id='h-history'>{t('study.history')}</h2>
        {(history.data ?? []).length === 0 ? <p>{t('none')}</p> : (
          <ul>{history.data!.map((x) => (
            <li key={x.transferId}>{time(x.createdAt, lang)}: {t(x.direction === 'incoming' ? 'col.from' : 'col.to')} {x.institution.name ?? x.institution.ura}, {t(`state.${x.state}` as TextKey)} {duration(x.createdAt, x.completedAt)}</li>
          ))}</ul>
        )}
      </section>
      <ShareLinks uid={uid} />
      <section class='card' aria-labelledby='h-pacs'>
        <h2 id='h-pacs'>{t('study.pacs')}</h2>
        <button type='button' onClick={() => { void toPacs({}) }}>{t('study.pacsSend')}</button>
        {pacs?.status === 'queued' && <p role='status'>{t('study.pacsQueued', { id: pacs.local?.patientId ?? '' })}</p>}
        {pacs?.status === 'held' && (
          <form onSubmit={(e) => { e.preventDefault(); void toPacs({ patientId: String(new FormData(e.currentTarget).get('patientId')) }) }}>
            <p role='status'>{t('study.pacsHeld', { reason: pacs.reason ?? '' })}</p>
            <label>{t('study.localId')}<input name='patientId' required /></label>
            <button type='submit'>{t('study.pacsSend')}</button>
          </form>
        )}
        <ErrorLine error={pacsError} />
      </section>
    </div>
  )
}
