import { useState } from 'preact/hooks'
import { api } from '../api.ts'
import { ErrorLine, Loading, useLoad } from '../components.tsx'
import { useI18n } from '../i18n.ts'
import { ShareTable } from '../pages/ShareLinks.tsx'
import type { ShareView } from '../types.ts'

/* Every patient link of this node for IT (no patient is named), to revoke one on request. */

export function AdminShares (): preact.JSX.Element {
  const { t } = useI18n()
  const { data, error, reload } = useLoad(async () => (await api.get<{ shares: ShareView[] }>('/api/shares')).shares)
  const [actionError, setActionError] = useState<unknown>(undefined)
  const revoke = async (id: string): Promise<void> => {
    try { await api.del(`/api/shares/${encodeURIComponent(id)}`); reload() } catch (err) { setActionError(err) }
  }
  return (
    <div>
      <h1>{t('nav.shares')}</h1>
      <p>{t('shares.adminIntro')}</p>
      <ErrorLine error={actionError} />
      {data === undefined ? (error === undefined ? <Loading /> : <ErrorLine error={error} />) : data.length === 0 ? <p>{t('shares.none')}</p> : <ShareTable shares={data} showStudy onRevoke={(id) => { void revoke(id) }} />}
    </div>
  )
}
