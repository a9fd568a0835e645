import { api } from '../api.ts'
import { ErrorLine, Loading, time, useLoad } from '../components.tsx'
import { useI18n } from '../i18n.ts'

/* Node health for IT: registry and directory, peers, disk, problems in words (GET /health). */

interface Health {
  status: 'ok' | 'degraded'
  problems: Array<{ code: string, message: string }>
  node: string
  peerId: string
  store: { studies: number, instances: number, storedBytes: number, freeBytes: number, totalBytes: number }
  directory: { directoryVersion: number | null, ageSeconds: number | null, institutions: number, registryUrl: string | null, lastRefreshed: string | null, lastError: { message: string } | null, expires: string | null } | null
  p2p: { peers: Array<{ peerId: string, ura?: string }> } | null
}

const mb = (bytes: number | undefined): string => bytes === undefined ? '?' : `${(bytes / 1e6).toFixed(0)} MB`
const age = (seconds: number | null): string => seconds === null ? '?' : seconds < 120 ? `${seconds} s` : seconds < 7200 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds / 3600)} h`

export function Health (): preact.JSX.Element {
  const { t, lang } = useI18n()
  const queue = useLoad(async () => {
    const { outgoing, incoming } = await api.get<{ outgoing: Array<{ state: string }>, incoming: Array<{ state: string }> }>('/api/transfers')
    return [...outgoing, ...incoming].filter((x) => !['complete', 'failed', 'cancelled', 'declined'].includes(x.state)).length
  })
  const { data, error } = useLoad(async () => {
    const res = await fetch('/health', { credentials: 'same-origin' })
    return await res.json() as Health
  })
  if (data === undefined) return error === undefined ? <Loading /> : <ErrorLine error={error} />
  const peers = data.p2p?.peers.length ?? 0
  const d = data.directory
  return (
    <div>
      <h1>{t('health.title')}: {data.node}</h1>
      <p role='status' class={data.status === 'ok' ? 'ok' : 'error'} data-testid='health-status'>{t(data.status === 'ok' ? 'health.ok' : 'health.degraded')}</p>
      {data.problems.length > 0 && <ul>{data.problems.map((p) => <li key={p.code}>{p.message} <small>({p.code})</small></li>)}</ul>}
      <dl class='card facts'>
        <dt>{t('health.registry')}</dt><dd>{d?.registryUrl ?? '-'}: {d?.lastError === null || d?.lastError === undefined ? t('health.reachable', { at: time(d?.lastRefreshed ?? undefined, lang) }) : <span class='error'>{d.lastError.message}</span>}</dd>
        <dt>{t('health.directory')}</dt><dd>{d === null ? '-' : t('health.directoryVersion', { version: d.directoryVersion ?? '-', age: age(d.ageSeconds) })}</dd>
        <dt>{t('health.peers')}</dt><dd>{peers}</dd>
        <dt>{t('health.disk')}</dt><dd>{t('health.diskUse', { studies: data.store.studies, stored: mb(data.store.storedBytes), free: mb(data.store.freeBytes) })}</dd>
        <dt>{t('health.queue')}</dt><dd>{queue.data ?? '…'}</dd>
        <dt>Peer ID</dt><dd><code>{data.peerId}</code></dd>
      </dl>
    </div>
  )
}
