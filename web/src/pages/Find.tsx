import { useState } from 'preact/hooks'
import { api } from '../api.ts'
import { dicomDate, ErrorLine, personName, time, useLoad } from '../components.tsx'
import { useI18n, type TextKey } from '../i18n.ts'
import type { Institution, PullMade } from '../types.ts'

/*
 * Find a patient's studies at another hospital (BSN and birth date) and request one for a purpose.
 * The answer says at once whether it is allowed, waits for approval there, or is refused, and why;
 * a later decision shows in "my requests" and as a notice.
 */

interface Found { studyInstanceUID: string, date: string, description: string, modalities: string[], numberOfInstances: number, patient: { name: string, birthDate: string } }
const PURPOSES = ['treatment', 'second-opinion', 'referral', 'emergency'] as const

export function Find (): preact.JSX.Element {
  const { t, lang } = useI18n()
  const institutions = useLoad(async () => api.get<{ self: string | null, institutions: Institution[] }>('/api/institutions'))
  const pulls = useLoad(async () => (await api.get<{ pulls: PullMade[] }>('/api/pulls')).pulls)
  const [found, setFound] = useState<{ at: string, purpose: string, studies: Found[] } | undefined>(undefined)
  const [answers, setAnswers] = useState<Record<string, { decision: string, reason: string }>>({})
  const [error, setError] = useState<unknown>(undefined)

  const search = async (e: Event): Promise<void> => {
    e.preventDefault()
    const f = new FormData(e.currentTarget as HTMLFormElement)
    const at = String(f.get('at'))
    const purpose = String(f.get('purpose'))
    try {
      setError(undefined)
      const answer = await api.post<{ studies: Found[] }>('/api/query', { at, criteria: { bsn: String(f.get('bsn')), birthDate: String(f.get('birthDate')), limit: 50 }, requester: { purpose } })
      setFound({ at, purpose, studies: answer.studies })
    } catch (err) { setError(err) }
  }
  const request = async (study: Found, deliverTo: string): Promise<void> => {
    if (found === undefined) return
    try {
      setError(undefined)
      const answer = await api.post<{ decision: string, reason: string }>('/api/pulls', { at: found.at, studyInstanceUID: study.studyInstanceUID, requester: { purpose: found.purpose }, deliverTo })
      setAnswers((a) => ({ ...a, [study.studyInstanceUID]: answer }))
      pulls.reload()
    } catch (err) { setError(err) }
  }
  const all = institutions.data?.institutions ?? []
  const others = all.filter((i) => i.status === 'active' && i.ura !== institutions.data?.self)
  const ownDepartments = all.find((i) => i.ura === institutions.data?.self)?.departments ?? []
  const [deliverTo, setDeliverTo] = useState('RAD')
  return (
    <div>
      <h1>{t('find.title')}</h1>
      <form class='card' onSubmit={(e) => { void search(e) }}>
        <div class='grid'>
          <label>{t('find.institution')}<select name='at' required>{others.map((i) => <option key={i.ura} value={i.ura}>{i.name}</option>)}</select></label>
          <label>{t('col.bsn')}<input name='bsn' required inputMode='numeric' pattern='[0-9]{9}' /></label>
          <label>{t('find.birthDate')}<input name='birthDate' required pattern='[0-9]{8}' /></label>
          <label>{t('find.purpose')}<select name='purpose'>{PURPOSES.map((p) => <option key={p} value={p}>{t(`purpose.${p}` as TextKey)}</option>)}</select></label>
          <label>{t('find.deliverTo')}<select value={deliverTo} onChange={(e) => { setDeliverTo((e.currentTarget as HTMLSelectElement).value) }}>{ownDepartments.map((d) => <option key={d.code} value={d.code}>{d.name}</option>)}</select></label>
        </div>
        <button type='submit'>{t('find.submit')}</button>
      </form>
      <ErrorLine error={error} />
      {found !== undefined && (found.studies.length === 0 ? <p>{t('none')}</p> : (
        <div class='scroll'><table data-testid='peer-results'>
          <thead><tr><th scope='col'>{t('col.patient')}</th><th scope='col'>{t('col.date')}</th><th scope='col'>{t('col.modality')}</th><th scope='col'>{t('col.description')}</th><th scope='col'>{t('col.actions')}</th></tr></thead>
          <tbody>{found.studies.map((s) => (
            <tr key={s.studyInstanceUID}>
              <td>{personName(s.patient.name)}</td><td>{dicomDate(s.date, lang)}</td><td>{s.modalities.join(', ')}</td><td>{s.description}</td>
              <td>{answers[s.studyInstanceUID] === undefined
                ? <button type='button' onClick={() => { void request(s, deliverTo) }}>{t('find.request')}</button>
                : <span role='status' data-testid='pull-answer'>{t('find.requested', { decision: t(`decision.${answers[s.studyInstanceUID]!.decision}` as TextKey), reason: answers[s.studyInstanceUID]!.reason })}</span>}</td>
            </tr>
          ))}</tbody>
        </table></div>
      ))}
      <h2>{t('find.myRequests')}</h2>
      {(pulls.data ?? []).length === 0 ? <p>{t('none')}</p> : (
        <div class='scroll'><table data-testid='my-requests'>
          <thead><tr><th scope='col'>{t('col.time')}</th><th scope='col'>{t('col.institution')}</th><th scope='col'>{t('col.study')}</th><th scope='col'>{t('col.decision')}</th><th scope='col'>{t('col.reason')}</th></tr></thead>
          <tbody>{pulls.data!.map((p) => (
            <tr key={p.requestId}><td>{time(p.askedAt, lang)}</td><td>{p.at.name ?? p.at.ura}</td><td>{p.studyInstanceUID}</td><td>{t(`decision.${p.decision}` as TextKey)}</td><td>{p.reason}</td></tr>
          ))}</tbody>
        </table></div>
      )}
    </div>
  )
}
