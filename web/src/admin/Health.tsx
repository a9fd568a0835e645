import { ErrorLine, Loading, useLoad } from '../components.tsx'
import { useI18n } from '../i18n.ts'

/* Node health for IT: registry and directory, peers, disk, problems in words (GET /health). */

interface Health {
  status: 'ok' | 'degraded'
  problems: Array<{ code: string, message: string }>
  node: string
  peerId: string
  store: { studies: number, bytes: number, freeBytes?: number }
  directory: { directoryVersion: number | null, ageSeconds: number | null, institutions: number } | null
  p2p: { connectedPeers?: number, peers?: unknown[] } | null
}

const mb = (bytes: number | undefined): string => bytes === undefined ? '?' : `${(bytes / 1e6).toFixed(0)} MB`
const age = (seconds: number | null): string => seconds === null ? '?' : seconds < 120 ? `${seconds} s` : seconds < 7200 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds / 3600)} h`

export function Health (): preact.JSX.Element {
  const { t } = useI18n()
  const { data, error } = useLoad(async () => {
    const res = await fetch('/health', { credentials: 'same-origin' })
    return await res.json() as Health
  })
  if (data === undefined) return error === undefined ? <Loading /> : <ErrorLine error={error} />
  const peers = data.p2p?.connectedPeers ?? data.p2p?.peers?.length ?? 0
  return (
    <div>
      <h1>{t('health.title')}: {data.node}</h1>
      <p role='status' class={data.status === 'ok' ? 'ok' : 'error'} data-testid='health-status'>{t(data.status === 'ok' ? 'health.ok' : 'health.degraded')}</p>
      {data.problems.length > 0 && <ul>{data.problems.map((p) => <li key={p.code}>{p.message} <small>({p.code})</small></li>)}</ul>}
      <dl class='card facts'>
        <dt>{t('health.directory')}</dt><dd>{data.directory === null ? '-' : t('health.directoryVersion', { version: data.directory.directoryVersion ?? '-', age: age(data.directory.ageSeconds) })}</dd>
        <dt>{t('health.peers')}</dt><dd>{peers}</dd>
        <dt>{t('health.disk')}</dt><dd>{data.store.studies} / {mb(data.store.bytes)} ({mb(data.store.freeBytes)} vrij)</dd>
        <dt>Peer ID</dt><dd><code>{data.peerId}</code></dd>
      </dl>
    </div>
  )
}
