import { useState } from 'preact/hooks'
import { api, ApiError, query } from '../api.ts'
import { dicomDate, ErrorLine, personName, useLoad } from '../components.tsx'
import { useI18n } from '../i18n.ts'
import { go } from '../router.ts'
import type { Institution, Study } from '../types.ts'
import { TypeAhead } from './TypeAhead.tsx'

/*
 * Send a study: find it here (BSN, name, birth date, accession number, date, modality), pick the
 * hospital and department from the directory, add a note, a reason and perhaps a PDF report. The
 * progress page follows the transfer; its address survives a reload. Sent de-identified (PS3.15) if
 * the clinician ticks it, and always to an institution governance marks for teaching or research;
 * images that may show text need the clinician's confirmation that they checked them.
 */

export function Send (): preact.JSX.Element {
  const { t, lang } = useI18n()
  const [studies, setStudies] = useState<Study[] | undefined>(undefined)
  const [picked, setPicked] = useState<Study | undefined>(undefined)
  const [to, setTo] = useState<(Institution & { kind?: string }) | undefined>(undefined)
  const [error, setError] = useState<unknown>(undefined)
  const [needsConfirm, setNeedsConfirm] = useState(false)
  const [deidentify, setDeidentify] = useState(false)
  const [needsBurnedIn, setNeedsBurnedIn] = useState(false)
  const [busy, setBusy] = useState(false)
  // A teaching or research institution gets studies de-identified only: the node insists too.
  const teaching = to?.kind === 'teaching-research'
  const deidentified = deidentify || teaching
  const institutions = useLoad(async () => {
    const { self, institutions: all } = await api.get<{ self: string | null, institutions: Array<Institution & { kind?: string }> }>('/api/institutions')
    return all.filter((i) => i.status === 'active' && i.ura !== self)
  })

  const search = async (e: Event): Promise<void> => {
    e.preventDefault()
    const f = new FormData(e.currentTarget as HTMLFormElement)
    const value = (k: string): string => String(f.get(k) ?? '').trim()
    try {
      setError(undefined)
      const found = await api.get<{ studies: Study[] }>(`/api/studies${query({ bsn: value('bsn'), name: value('name'), birthDate: value('birthDate'), accessionNumber: value('accession'), dateFrom: value('date'), dateTo: value('date'), modality: value('modality').toUpperCase(), limit: 50 })}`)
      setStudies(found.studies)
    } catch (err) { setError(err) }
  }

  const send = async (e: Event): Promise<void> => {
    e.preventDefault()
    if (picked === undefined || to === undefined) return
    const f = new FormData(e.currentTarget as HTMLFormElement)
    const report = f.get('report') as File | null
    setBusy(true)
    try {
      setError(undefined)
      if (report !== null && report.size > 0) await api.postFile(`/api/studies/${encodeURIComponent(picked.studyInstanceUID)}/reports${query({ title: report.name.replace(/\.pdf$/i, '') })}`, report)
      const record = await api.post<{ transferId: string }>('/api/transfers', {
        studyInstanceUID: picked.studyInstanceUID,
        to: { ura: to.ura, department: String(f.get('department')) },
        note: String(f.get('note') ?? ''),
        reason: String(f.get('reason') ?? ''),
        ...(f.get('confirmBulk') === 'on' ? { confirmBulk: true } : {}),
        ...(deidentified
          ? {
              deidentify: {
                profile: ['basic', ...(f.get('retainDates') === 'on' ? ['retain-dates'] : []), ...(f.get('cleanDescriptors') === 'on' ? ['clean-descriptors'] : [])].join(','),
                ...(f.get('confirmBurnedIn') === 'on' ? { confirmBurnedIn: true } : {})
              }
            }
          : {})
      })
      go(`transfers/${record.transferId}`)
    } catch (err) {
      if (err instanceof ApiError && err.code === 'BEELDNET_ERR_CONFIRM_BULK') setNeedsConfirm(true)
      if (err instanceof ApiError && err.code === 'BEELDNET_ERR_BURNED_IN_ANNOTATION') setNeedsBurnedIn(true)
      setError(err)
    } finally {
      setBusy(false)
    }
  }

  return (
    <div>
      <h1>{t('send.title')}</h1>
      <form class='card search' onSubmit={(e) => { void search(e) }} aria-labelledby='h-search'>
        <h2 id='h-search'>{t('send.search')}</h2>
        <div class='grid'>
          <label>{t('col.bsn')}<input name='bsn' inputMode='numeric' pattern='[0-9]{9}' /></label>
          <label>{t('send.name')}<input name='name' /></label>
          <label>{t('col.birthDate')}<input name='birthDate' placeholder='JJJJMMDD' pattern='[0-9]{8}' /></label>
          <label>{t('col.accession')}<input name='accession' /></label>
          <label>{t('col.date')}<input name='date' placeholder='JJJJMMDD' pattern='[0-9]{8}' /></label>
          <label>{t('col.modality')}<input name='modality' maxLength={4} /></label>
        </div>
        <button type='submit'>{t('send.searchButton')}</button>
      </form>
      {studies !== undefined && (studies.length === 0 ? <p>{t('none')}</p> : (
        <div class='scroll'>
          <table data-testid='study-results'>
            <thead><tr><th scope='col'>{t('col.patient')}</th><th scope='col'>{t('col.birthDate')}</th><th scope='col'>{t('col.date')}</th><th scope='col'>{t('col.modality')}</th><th scope='col'>{t('col.description')}</th><th scope='col'>{t('col.actions')}</th></tr></thead>
            <tbody>{studies.map((s) => (
              <tr key={s.studyInstanceUID} class={picked?.studyInstanceUID === s.studyInstanceUID ? 'picked' : ''}>
                <td>{personName(s.patient.name)}</td><td>{dicomDate(s.patient.birthDate, lang)}</td><td>{dicomDate(s.date, lang)}</td>
                <td>{s.modalities.join(', ')}</td><td>{s.description}</td>
                <td><button type='button' onClick={() => { setPicked(s) }} aria-pressed={picked?.studyInstanceUID === s.studyInstanceUID}>{t('send.pick')}</button></td>
              </tr>
            ))}</tbody>
          </table>
        </div>
      ))}
      {picked !== undefined && (
        <form class='card' onSubmit={(e) => { void send(e) }} aria-labelledby='h-send'>
          <h2 id='h-send'>{t('send.picked')}: {personName(picked.patient.name)}, {picked.description} ({dicomDate(picked.date, lang)})</h2>
          <TypeAhead label={t('send.destination')} options={institutions.data ?? []} optionLabel={(i) => `${i.name} (URA ${i.ura})`} onPick={setTo} />
          {to !== undefined && (
            <label>{t('send.department')}
              <select name='department' required>{to.departments.map((d) => <option key={d.code} value={d.code}>{d.name} ({d.code})</option>)}</select>
            </label>
          )}
          <label>{t('send.note')}<textarea name='note' rows={3} maxLength={4000} /></label>
          <label>{t('send.reason')}<input name='reason' required maxLength={512} /></label>
          <label>{t('send.report')}<input name='report' type='file' accept='application/pdf' /></label>
          {needsConfirm && <label class='check'><input type='checkbox' name='confirmBulk' />{t('send.confirmBulk')}</label>}
          <div class='deidentify'>
            <label class='check'>
              <input type='checkbox' name='deidentify' checked={deidentified} disabled={teaching} onChange={(e) => { setDeidentify(e.currentTarget.checked) }} />
              {t('send.deidentify')}
            </label>
            {teaching && <small>{t('send.deidentifyForced')}</small>}
            {deidentified && (
              <>
                <label class='check'><input type='checkbox' name='retainDates' />{t('send.retainDates')}</label>
                <label class='check'><input type='checkbox' name='cleanDescriptors' />{t('send.cleanDescriptors')}</label>
                {needsBurnedIn && <label class='check'><input type='checkbox' name='confirmBurnedIn' />{t('send.confirmBurnedIn')}</label>}
              </>
            )}
          </div>
          <ErrorLine error={error} />
          <button type='submit' disabled={busy || to === undefined}>{t('send.submit')}</button>
        </form>
      )}
      {picked === undefined && <ErrorLine error={error} />}
    </div>
  )
}
