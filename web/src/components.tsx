import { useEffect, useState } from 'preact/hooks'
import { sentenceFor } from './errors.ts'
import { useI18n } from './i18n.ts'

/* Small pieces every page uses: loading an API answer, showing an error as a sentence, formatting. */

export function useLoad<T> (load: () => Promise<T>, deps: unknown[] = []): { data: T | undefined, error: unknown, reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined)
  const [error, setError] = useState<unknown>(undefined)
  const [round, setRound] = useState(0)
  useEffect(() => {
    let live = true
    load().then((d) => { if (live) { setData(d); setError(undefined) } }, (e: unknown) => { if (live) setError(e) })
    return () => { live = false }
  }, [...deps, round])
  return { data, error, reload: () => { setRound((r) => r + 1) } }
}

export function ErrorLine ({ error }: { error: unknown }): preact.JSX.Element | null {
  const { lang } = useI18n()
  if (error === undefined || error === null) return null
  return <p role='alert' class='error'>{sentenceFor(error, lang)}</p>
}

export function Loading (): preact.JSX.Element {
  const { t } = useI18n()
  return <p aria-busy='true'>{t('loading')}</p>
}

/** A DICOM person name (Jansen^Anna) as people write it (Anna Jansen). */
export function personName (pn: string): string {
  const [family = '', given = '', middle = '', prefix = ''] = pn.split('^')
  return [prefix, given, middle, family].filter((p) => p !== '').join(' ') || pn
}

/** YYYYMMDD as DD-MM-YYYY (Dutch) or YYYY-MM-DD. */
export function dicomDate (date: string, lang: string): string {
  if (!/^[0-9]{8}$/.test(date)) return date
  return lang === 'nl' ? `${date.slice(6, 8)}-${date.slice(4, 6)}-${date.slice(0, 4)}` : `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}`
}

export function time (iso: string | undefined, lang: string): string {
  if (iso === undefined) return ''
  return new Date(iso).toLocaleString(lang === 'nl' ? 'nl-NL' : 'en-GB', { dateStyle: 'short', timeStyle: 'short' })
}

export function duration (from: string, to: string | undefined): string {
  if (to === undefined) return ''
  const seconds = Math.max(0, Math.round((Date.parse(to) - Date.parse(from)) / 1000))
  return seconds < 60 ? `${seconds} s` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`
}

export function ProgressBar ({ done, total, label }: { done: number, total: number, label: string }): preact.JSX.Element {
  const percent = total === 0 ? 0 : Math.round((done / total) * 100)
  return (
    <div class='progress'>
      <progress max={100} value={percent} aria-label={label}>{percent}%</progress>
      <span>{label} ({percent}%)</span>
    </div>
  )
}
