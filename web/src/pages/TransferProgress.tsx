import { useEffect, useState } from 'preact/hooks'
import { api } from '../api.ts'
import { ErrorLine, Loading, ProgressBar, useLoad } from '../components.tsx'
import { useI18n, type TextKey } from '../i18n.ts'
import { onNodeEvent } from '../notices.tsx'

/*
 * One transfer's progress, live: the record as the node has it now (so a reload picks up where it
 * was), then the node's progress and state events for this transfer.
 */

interface Record { transferId: string, state: string, studyInstanceUID: string, done: { instances: number }, totals: { instances: number }, lastError?: { message: string } }

const FINAL = new Set(['complete', 'failed', 'cancelled', 'declined'])

export function TransferProgressPage ({ id }: { id: string }): preact.JSX.Element {
  const { t } = useI18n()
  const { data, error, reload } = useLoad(async () => api.get<Record>(`/api/transfers/${encodeURIComponent(id)}`), [id])
  const [live, setLive] = useState<{ state?: string, done?: number, total?: number, reason?: string }>({})
  useEffect(() => onNodeEvent((name, e) => {
    // The record may have been read before the event stream opened: a transfer that ended in
    // between would otherwise show its old state for good.
    if (name === 'connected') { setLive({}); reload(); return }
    if (e.transferId !== id) return
    if (name === 'progress') setLive((l) => ({ ...l, state: String(e.state), done: Number(e.instancesDone), total: Number(e.instancesTotal) }))
    if (name === 'state') setLive((l) => ({ ...l, state: String(e.state) }))
    if (name === 'study-complete') setLive((l) => ({ ...l, state: 'complete', done: l.total ?? l.done }))
    if (name === 'transfer-failed') setLive((l) => ({ ...l, state: String(e.state), reason: String((e.error as { message?: string } | undefined)?.message ?? '') }))
  }), [id])
  if (data === undefined) return error === undefined ? <Loading /> : <ErrorLine error={error} />
  const state = live.state ?? data.state
  const total = live.total ?? data.totals.instances
  const done = state === 'complete' ? total : live.done ?? data.done.instances
  return (
    <div class='card'>
      <h1>{t('progress.title')}</h1>
      <p><a href={`#/studies/${encodeURIComponent(data.studyInstanceUID)}`}>{data.studyInstanceUID}</a></p>
      <ProgressBar done={done} total={total} label={`${t(`state.${state}` as TextKey)}: ${t('progress.instances', { done, total })}`} />
      <p data-testid='transfer-state' data-state={state} role='status'>
        {state === 'complete' ? t('progress.complete') : FINAL.has(state) ? t('progress.failed', { reason: live.reason ?? data.lastError?.message ?? state }) : t(`state.${state}` as TextKey)}
      </p>
    </div>
  )
}
