import { useState } from 'preact/hooks'
import { api } from '../api.ts'
import { ErrorLine, ProgressBar } from '../components.tsx'
import { useI18n } from '../i18n.ts'

/*
 * IT imports a patient's DVD or USB stick into the running node: the folder is chosen whole, its
 * names go to the node, which reads the DICOMDIR (sent first) and says which files to send, as
 * `beeldnet node import` would walk the folder; each file is then sent as it is (the browser reads
 * it from disk) and its outcome shown at once; the end is the per-file report of `node import`.
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
interface Plan { files: string[], missing: string[], warnings: string[] }

function sizeText (n: number): string {
  return n < 1024 * 1024 ? `${Math.round(n / 1024)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`
}

/** A file's name within the chosen folder (the folder's own name first), as the node plans it. */
const nameOf = (file: File): string => file.webkitRelativePath !== '' ? file.webkitRelativePath : file.name

export function ImportMedia (): preact.JSX.Element {
  const { t } = useI18n()
  const [files, setFiles] = useState<File[]>([])
  const [phase, setPhase] = useState<'choose' | 'planning' | 'sending' | 'done'>('choose')
  const [total, setTotal] = useState(0)
  const [bytes, setBytes] = useState({ sent: 0, total: 0 })
  const [current, setCurrent] = useState<{ name: string, sent: number, size: number } | undefined>(undefined)
  const [outcomes, setOutcomes] = useState<Outcome[]>([])
  const [summary, setSummary] = useState<Summary | undefined>(undefined)
  const [error, setError] = useState<unknown>(undefined)

  const start = async (e: Event): Promise<void> => {
    e.preventDefault()
    setError(undefined)
    setSummary(undefined)
    setOutcomes([])
    setPhase('planning')
    const byName = new Map(files.map((f) => [nameOf(f), f]))
    let id: string | undefined
    try {
      const begun = await api.post<{ id: string, dicomdirs: string[] }>('/api/imports', { files: [...byName.keys()] })
      id = begun.id
      for (const dicomdir of begun.dicomdirs) await api.putBytes(`/api/imports/${id}/dicomdir?path=${encodeURIComponent(dicomdir)}`, byName.get(dicomdir)!)
      const plan = await api.get<Plan>(`/api/imports/${id}/plan`)
      setTotal(plan.files.length)
      const bytesTotal = plan.files.reduce((sum, name) => sum + byName.get(name)!.size, 0)
      setBytes({ sent: 0, total: bytesTotal })
      setPhase('sending')
      const sent: Outcome[] = []
      let before = 0
      for (const name of plan.files) {
        const file = byName.get(name)!
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
    } catch (err) {
      setError(err)
      setPhase('choose')
      setCurrent(undefined)
      // What was staged is dropped at once rather than when the node finds the import idle.
      if (id !== undefined) await api.del(`/api/imports/${id}`).catch(() => {})
    }
  }

  const shown = summary?.outcomes ?? outcomes
  const busy = phase === 'planning' || phase === 'sending'
  return (
    <div>
      <h1>{t('import.title')}</h1>
      <form class='card' onSubmit={(e) => { void start(e) }}>
        <label>{t('import.folder')}
          <input type='file' name='folder' multiple disabled={busy} {...{ webkitdirectory: true }}
            onChange={(e) => { setFiles([...(e.currentTarget.files ?? [])]); setPhase('choose'); setSummary(undefined); setOutcomes([]) }} />
        </label>
        {files.length > 0 && <p>{t('import.chosen', { count: files.length })}</p>}
        <ErrorLine error={error} />
        <button type='submit' disabled={files.length === 0 || busy}>{t('import.start')}</button>
      </form>
      {phase === 'planning' && <p role='status'>{t('import.planning')}</p>}
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
            <ul data-testid='import-studies'>{summary.studies.map((s) => <li key={s.studyInstanceUID}><code>{s.studyInstanceUID}</code>: {t('import.status.stored')} {s.stored}, {t('import.status.duplicate')} {s.duplicates}</li>)}</ul>
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
