import { useState } from 'preact/hooks'
import { api } from '../api.ts'
import { dicomDate, ErrorLine, personName, ProgressBar } from '../components.tsx'
import { useI18n } from '../i18n.ts'

/*
 * A clinician or IT imports a patient's DVD or USB stick into the running node: the folder is
 * chosen whole, its names go to the node, which reads the DICOMDIR (sent first), says what is on
 * the medium and which files to send, as `beeldnet node import` would walk the folder. The studies
 * the DICOMDIR lists are shown, all ticked; only the ticked ones are picked and sent (the node
 * refuses any other of the medium's studies in that import). Each file is sent as it is (the
 * browser reads it from disk) and its outcome shown at once; the end is the per-file report of
 * `node import`, with a link to each study imported (for a clinician, whose pages those are).
 */

interface Outcome { path: string, status: 'stored' | 'duplicate' | 'rejected', code?: string, message?: string }
interface Summary {
  files: number
  stored: number
  duplicates: number
  rejected: Array<{ path: string, code: string, message: string }>
  outcomes: Outcome[]
  studies: Array<{ studyInstanceUID: string, stored: number, duplicates: number }>
  missing: string[]
  warnings: string[]
}
interface MediaStudy { studyInstanceUID: string, date: string, description: string, accessionNumber: string, modalities: string[], series: number, instances: number, files: number }
interface MediaPatient { name: string, id: string, issuer: string, birthDate: string, bsn?: string, studies: MediaStudy[] }
interface Plan { files: string[], missing: string[], warnings: string[], overview: { patients: MediaPatient[], unlisted: number } }

function sizeText (n: number): string {
  return n < 1024 * 1024 ? `${Math.round(n / 1024)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`
}

/** A file's name within the chosen folder (the folder's own name first), as the node plans it. */
const nameOf = (file: File): string => file.webkitRelativePath !== '' ? file.webkitRelativePath : file.name

/** `studyLinks`: link each imported study to its page (a clinician's; IT has no study pages). */
export function ImportMedia ({ studyLinks = false }: { studyLinks?: boolean }): preact.JSX.Element {
  const { t, lang } = useI18n()
  const [files, setFiles] = useState<File[]>([])
  const [phase, setPhase] = useState<'choose' | 'planning' | 'picking' | 'sending' | 'done'>('choose')
  const [begun, setBegun] = useState<{ id: string, plan: Plan } | undefined>(undefined)
  const [ticked, setTicked] = useState<Set<string>>(new Set())
  const [total, setTotal] = useState(0)
  const [bytes, setBytes] = useState({ sent: 0, total: 0 })
  const [current, setCurrent] = useState<{ name: string, sent: number, size: number } | undefined>(undefined)
  const [outcomes, setOutcomes] = useState<Outcome[]>([])
  const [summary, setSummary] = useState<Summary | undefined>(undefined)
  const [error, setError] = useState<unknown>(undefined)

  const byName = (): Map<string, File> => new Map(files.map((f) => [nameOf(f), f]))

  const failed = async (err: unknown, id: string | undefined): Promise<void> => {
    setError(err)
    setPhase('choose')
    setBegun(undefined)
    setCurrent(undefined)
    // What was staged is dropped at once rather than when the node finds the import idle.
    if (id !== undefined) await api.del(`/api/imports/${id}`).catch(() => {})
  }

  /** Announces the folder, sends its DICOMDIRs and shows what is on it; a medium without one is imported at once, as before. */
  const read = async (e: Event): Promise<void> => {
    e.preventDefault()
    setError(undefined)
    setSummary(undefined)
    setOutcomes([])
    setPhase('planning')
    const named = byName()
    let id: string | undefined
    try {
      const answer = await api.post<{ id: string, dicomdirs: string[] }>('/api/imports', { files: [...named.keys()] })
      id = answer.id
      for (const dicomdir of answer.dicomdirs) await api.putBytes(`/api/imports/${id}/dicomdir?path=${encodeURIComponent(dicomdir)}`, named.get(dicomdir)!)
      const plan = await api.get<Plan>(`/api/imports/${id}/plan`)
      const studies = plan.overview.patients.flatMap((p) => p.studies.map((s) => s.studyInstanceUID))
      setBegun({ id, plan })
      if (studies.length === 0) { await send(id, plan); return }
      setTicked(new Set(studies))
      setPhase('picking')
    } catch (err) {
      await failed(err, id)
    }
  }

  /** The ticked studies are picked (when not all are), and the files the node then plans are sent. */
  const importTicked = async (e: Event): Promise<void> => {
    e.preventDefault()
    if (begun === undefined) return
    setError(undefined)
    const all = begun.plan.overview.patients.flatMap((p) => p.studies)
    try {
      const plan = ticked.size === all.length ? begun.plan : await api.post<Plan>(`/api/imports/${begun.id}/pick`, { studies: [...ticked] })
      await send(begun.id, plan)
    } catch (err) {
      await failed(err, begun.id)
    }
  }

  const cancel = async (): Promise<void> => {
    if (begun !== undefined) await api.del(`/api/imports/${begun.id}`).catch(() => {})
    setBegun(undefined)
    setPhase('choose')
  }

  const send = async (id: string, plan: Plan): Promise<void> => {
    const named = byName()
    setTotal(plan.files.length)
    const bytesTotal = plan.files.reduce((sum, name) => sum + named.get(name)!.size, 0)
    setBytes({ sent: 0, total: bytesTotal })
    setPhase('sending')
    const sent: Outcome[] = []
    let before = 0
    for (const name of plan.files) {
      const file = named.get(name)!
      setCurrent({ name, sent: 0, size: file.size })
      const { outcome } = await api.putBytes<{ outcome: Outcome }>(`/api/imports/${id}/files?path=${encodeURIComponent(name)}`, file, (loaded) => {
        setCurrent({ name, sent: loaded, size: file.size })
        setBytes({ sent: before + loaded, total: bytesTotal })
      })
      before += file.size
      setBytes({ sent: before, total: bytesTotal })
      sent.push(outcome)
      setOutcomes([...sent])
    }
    setCurrent(undefined)
    setSummary(await api.post<Summary>(`/api/imports/${id}/commit`))
    setPhase('done')
  }

  const toggle = (uid: string, on: boolean): void => {
    const next = new Set(ticked)
    if (on) next.add(uid)
    else next.delete(uid)
    setTicked(next)
  }
  const described = new Map((begun?.plan.overview.patients ?? []).flatMap((p) => p.studies.map((s) => [s.studyInstanceUID, { patient: p, study: s }])))
  const studyText = (s: MediaStudy): string => t('import.studyLine', { date: dicomDate(s.date, lang), description: s.description === '' ? '—' : s.description, modalities: s.modalities.join('/'), accession: s.accessionNumber === '' ? '—' : s.accessionNumber, series: s.series, instances: s.instances })

  const shown = summary?.outcomes ?? outcomes
  const busy = phase === 'planning' || phase === 'sending'
  return (
    <div>
      <h1>{t('import.title')}</h1>
      <form class='card' onSubmit={(e) => { void read(e) }}>
        <label>{t('import.folder')}
          <input type='file' name='folder' multiple disabled={busy || phase === 'picking'} {...{ webkitdirectory: true }}
            onChange={(e) => { setFiles([...(e.currentTarget.files ?? [])]); setPhase('choose'); setSummary(undefined); setOutcomes([]) }} />
        </label>
        {files.length > 0 && <p>{t('import.chosen', { count: files.length })}</p>}
        <ErrorLine error={error} />
        {phase !== 'picking' && <button type='submit' disabled={files.length === 0 || busy}>{t('import.read')}</button>}
      </form>
      {phase === 'planning' && <p role='status'>{t('import.planning')}</p>}
      {phase === 'picking' && begun !== undefined && (
        <form class='card' data-testid='import-overview' onSubmit={(e) => { void importTicked(e) }}>
          <h2>{t('import.overview')}</h2>
          <p>{t('import.pickHint')}</p>
          {begun.plan.overview.patients.map((p) => (
            <fieldset key={`${p.issuer}|${p.id}`} data-testid='import-patient'>
              <legend>{t('import.patientLine', { name: personName(p.name), id: p.id, birthDate: dicomDate(p.birthDate, lang) })}{p.bsn !== undefined && `, ${t('col.bsn')} ${p.bsn}`}</legend>
              {p.studies.map((s) => (
                <label key={s.studyInstanceUID} class='check' data-uid={s.studyInstanceUID}>
                  <input type='checkbox' checked={ticked.has(s.studyInstanceUID)} onChange={(e) => { toggle(s.studyInstanceUID, e.currentTarget.checked) }} />
                  <span>{studyText(s)} <small><code>{s.studyInstanceUID}</code></small></span>
                </label>
              ))}
            </fieldset>
          ))}
          {begun.plan.overview.unlisted > 0 && <p>{t('import.unlisted', { count: begun.plan.overview.unlisted })}</p>}
          <button type='submit' disabled={ticked.size === 0}>{t('import.start', { count: ticked.size })}</button>
          {' '}<button type='button' class='link' onClick={() => { void cancel() }}>{t('import.cancel')}</button>
        </form>
      )}
      {(phase === 'sending' || phase === 'done') && (
        <div data-testid='import-progress' data-done={outcomes.length} data-total={total}>
          <ProgressBar done={bytes.sent} total={bytes.total} label={t('import.progress', { done: outcomes.length, total })} />
          {current !== undefined && phase === 'sending' && <p data-testid='import-current'>{t('import.current', { name: current.name, sent: sizeText(current.sent), size: sizeText(current.size) })}</p>}
        </div>
      )}
      {summary !== undefined && (
        <section data-testid='import-report'>
          <p role='status' class={summary.rejected.length > 0 ? 'error' : 'ok'}>
            {t('import.summary', { files: summary.files, stored: summary.stored, duplicates: summary.duplicates, rejected: summary.rejected.length, studies: summary.studies.length })}
          </p>
          {summary.files === 0 && <p>{t('import.nothing')}</p>}
          {summary.studies.length > 0 && <>
            <h2>{t('import.studies')}</h2>
            <ul data-testid='import-studies'>{summary.studies.map((s) => {
              const known = described.get(s.studyInstanceUID)
              const name = known === undefined ? s.studyInstanceUID : `${personName(known.patient.name)}: ${studyText(known.study)}`
              return (
                <li key={s.studyInstanceUID}>
                  {studyLinks ? <a href={`#/studies/${encodeURIComponent(s.studyInstanceUID)}`}>{name}</a> : name}
                  {known !== undefined && <> <small><code>{s.studyInstanceUID}</code></small></>}: {t('import.status.stored')} {s.stored}, {t('import.status.duplicate')} {s.duplicates}
                </li>
              )
            })}</ul>
            {studyLinks && <p data-testid='import-pacs-hint'>{t('import.pacsHint')}</p>}
          </>}
          {summary.missing.length > 0 && <>
            <h2>{t('import.missing')}</h2>
            <ul data-testid='import-missing'>{summary.missing.map((m) => <li key={m}><code>{m}</code></li>)}</ul>
          </>}
          {summary.warnings.length > 0 && <>
            <h2>{t('import.warnings')}</h2>
            <ul>{summary.warnings.map((w) => <li key={w}>{w}</li>)}</ul>
          </>}
        </section>
      )}
      {shown.length > 0 && (
        <table data-testid='import-files'>
          <thead><tr><th scope='col'>{t('import.file')}</th><th scope='col'>{t('col.outcome')}</th></tr></thead>
          <tbody>{shown.map((o, i) => (
            <tr key={`${i}:${o.path}`} data-status={o.status}>
              <td><code>{o.path}</code></td>
              <td class={o.status === 'rejected' ? 'error' : undefined}>{t(`import.status.${o.status}`)}{o.code === undefined ? '' : ` — ${o.code}: ${o.message ?? ''}`}</td>
            </tr>
          ))}</tbody>
        </table>
      )}
    </div>
  )
}
