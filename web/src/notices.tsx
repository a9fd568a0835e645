import { useEffect, useState } from 'preact/hooks'
import { useI18n, type TextKey, type Translate } from './i18n.ts'

/*
 * The node's live events (server-sent events, the session cookie goes along): a notice when a
 * report or a whole study arrives, or when a hospital decides a request. Pages listen too, via
 * onNodeEvent, to refresh what they show; 'connected' tells them the stream (re)opened.
 */

export interface Notice { id: number, text: string, study?: string }

type Listener = (event: string, data: Record<string, unknown>) => void
const listeners = new Set<Listener>()

export function onNodeEvent (listener: Listener): () => void {
  listeners.add(listener)
  return () => { listeners.delete(listener) }
}

const EVENTS = ['state', 'progress', 'report-arrived', 'study-complete', 'transfer-failed', 'pull-decided']

function noticeText (t: Translate, event: string, data: Record<string, unknown>): string | undefined {
  const study = String(data.studyInstanceUID ?? '').slice(-12)
  if (event === 'report-arrived' && data.direction === 'incoming') return t('notice.reportArrived', { study })
  if (event === 'study-complete' && data.direction === 'incoming') return t('notice.studyComplete', { study })
  if (event === 'pull-decided') {
    const at = data.at as { name?: string, ura: string }
    return t('notice.pullDecided', { institution: at.name ?? at.ura, decision: t(`decision.${String(data.decision)}` as TextKey), reason: String(data.reason ?? '') })
  }
  return undefined
}

export function useNodeEvents (enabled: boolean): Notice[] {
  const { t } = useI18n()
  const [notices, setNotices] = useState<Notice[]>([])
  useEffect(() => {
    if (!enabled) return
    const source = new EventSource('/api/transfers/events')
    // Events sent before the stream (re)connected are lost: pages hear 'connected' and read afresh.
    source.addEventListener('open', () => { for (const listener of listeners) listener('connected', {}) })
    let next = 1
    for (const name of EVENTS) {
      source.addEventListener(name, (e: MessageEvent<string>) => {
        const data = JSON.parse(e.data) as Record<string, unknown>
        for (const listener of listeners) listener(name, data)
        const text = noticeText(t, name, data)
        const study = name === 'pull-decided' ? undefined : data.studyInstanceUID as string | undefined
        if (text !== undefined) setNotices((list) => [...list.slice(-4), { id: next++, text, ...(study === undefined ? {} : { study }) }])
      })
    }
    return () => { source.close() }
  }, [enabled, t])
  useEffect(() => {
    const dismiss = (e: Event): void => {
      const id = (e as CustomEvent<number>).detail
      setNotices((list) => list.filter((n) => n.id !== id))
    }
    addEventListener('beeldnet-dismiss', dismiss)
    return () => { removeEventListener('beeldnet-dismiss', dismiss) }
  }, [])
  return notices
}

export function Notices ({ notices }: { notices: Notice[] }): preact.JSX.Element {
  const { t } = useI18n()
  return (
    <section class='notices' aria-live='polite'>
      {notices.map((n) => (
        <div class='notice' role='status' key={n.id}>
          <span>{n.text}{n.study !== undefined && <> <a href={`#/studies/${encodeURIComponent(n.study)}`}>{t('study.open')}</a></>}</span>
          <button type='button' class='link' onClick={() => { dispatchEvent(new CustomEvent('beeldnet-dismiss', { detail: n.id })) }}>{t('notice.close')}</button>
        </div>
      ))}
    </section>
  )
}
