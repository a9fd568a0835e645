import { render } from 'preact'
import { useEffect, useMemo, useState } from 'preact/hooks'
import { ErrorLine, Loading, useLoad } from './components.tsx'
import { api, setCsrfToken, whenLoggedOut } from './api.ts'
import { I18n, initialLang, translator, type Lang, type TextKey } from './i18n.ts'
import { useRoute, type Route } from './router.ts'
import { Notices, useNodeEvents } from './notices.tsx'
import type { Me } from './types.ts'
import { Login } from './pages/Login.tsx'
import { Inbox } from './pages/Inbox.tsx'
import { Send } from './pages/Send.tsx'
import { TransferProgressPage } from './pages/TransferProgress.tsx'
import { Find } from './pages/Find.tsx'
import { StudyPage } from './pages/Study.tsx'
import { Approvals } from './pages/Approvals.tsx'
import { Health } from './admin/Health.tsx'
import { AdminTransfers } from './admin/Transfers.tsx'
import { Settings } from './admin/Settings.tsx'
import { Users } from './admin/Users.tsx'
import { AuditTrail } from './admin/AuditTrail.tsx'
import { PatientReport } from './admin/PatientReport.tsx'
import { ImportMedia } from './admin/ImportMedia.tsx'
import { AdminShares } from './admin/Shares.tsx'
import { SharePage } from './share/SharePage.tsx'
import './styles.css'

/*
 * The node's web app: who is logged in decides the menu (clinician, it-admin, auditor); pages are
 * hash routes, so a reload keeps the page (and a transfer's progress). Live events come from the
 * node's server-sent events and show as notices.
 */

type Role = Me['role']
interface Page { path: string, label: TextKey, roles: Role[] }

const PAGES: Page[] = [
  { path: 'inbox', label: 'nav.inbox', roles: ['clinician'] },
  { path: 'send', label: 'nav.send', roles: ['clinician'] },
  { path: 'find', label: 'nav.find', roles: ['clinician'] },
  { path: 'approvals', label: 'nav.approvals', roles: ['clinician'] },
  { path: 'import', label: 'nav.importDisc', roles: ['clinician'] },
  { path: 'admin/health', label: 'nav.health', roles: ['it-admin'] },
  { path: 'admin/transfers', label: 'nav.transfers', roles: ['it-admin'] },
  { path: 'admin/settings', label: 'nav.settings', roles: ['it-admin'] },
  { path: 'admin/users', label: 'nav.users', roles: ['it-admin'] },
  { path: 'admin/audit', label: 'nav.audit', roles: ['it-admin', 'auditor'] },
  { path: 'admin/patient-report', label: 'nav.patientReport', roles: ['it-admin', 'auditor'] },
  { path: 'admin/import', label: 'nav.importMedia', roles: ['it-admin'] },
  { path: 'admin/shares', label: 'nav.shares', roles: ['it-admin'] }
]

const HOME: Record<Role, string> = { clinician: 'inbox', 'it-admin': 'admin/health', auditor: 'admin/audit' }

function pageFor (route: Route, me: Me): preact.JSX.Element {
  const allowed = (path: string): boolean => PAGES.find((p) => p.path === path)?.roles.includes(me.role) ?? me.role === 'clinician'
  const [first, second] = route.parts
  const path = first === 'admin' ? `admin/${second ?? ''}` : first ?? HOME[me.role]
  if (!allowed(path)) return <Forbidden />
  switch (path) {
    case 'viewer': return <LazyViewer uid={route.parts[2] ?? ''} cpu={new URLSearchParams(route.path.split('?')[1]).get('render') === 'cpu'} />
    case 'inbox': return <Inbox />
    case 'send': return <Send />
    case 'transfers': return <TransferProgressPage id={second ?? ''} />
    case 'find': return <Find />
    case 'studies': return <StudyPage uid={second ?? ''} />
    case 'approvals': return <Approvals />
    case 'import': return <ImportMedia studyLinks />
    case 'admin/health': return <Health />
    case 'admin/transfers': return <AdminTransfers />
    case 'admin/settings': return <Settings />
    case 'admin/users': return <Users />
    case 'admin/audit': return <AuditTrail />
    case 'admin/patient-report': return <PatientReport />
    case 'admin/import': return <ImportMedia />
    case 'admin/shares': return <AdminShares />
    default: return <Forbidden />
  }
}

/** The viewer and Cornerstone are a chunk of their own (about 1 MB gzipped): fetched when a viewer page opens. */
function LazyViewer ({ uid, cpu }: { uid: string, cpu: boolean }): preact.JSX.Element {
  const module = useLoad(async () => import('./viewer/Viewer.tsx'), [])
  if (module.error !== undefined) return <ErrorLine error={module.error} />
  if (module.data === undefined) return <Loading />
  const { Viewer } = module.data
  // Keyed by the study: another study is a new viewer, not this one with stale panes.
  return <Viewer key={uid} uid={uid} cpu={cpu} />
}

function Forbidden (): preact.JSX.Element {
  return <I18n.Consumer>{({ t }) => <p role='alert' class='error'>{t('forbidden.page')}</p>}</I18n.Consumer>
}

function App (): preact.JSX.Element {
  const [lang, setLang] = useState<Lang>(initialLang())
  const i18n = useMemo(() => ({ lang, t: translator(lang) }), [lang])
  const [me, setMe] = useState<Me | null | undefined>(undefined)
  const route = useRoute()
  const { t } = i18n

  useEffect(() => { document.documentElement.lang = lang; localStorage.setItem('beeldnet.lang', lang) }, [lang])
  useEffect(() => {
    whenLoggedOut(() => { setMe(null) })
    api.get<{ caller: Me | null }>('/api/me').then(({ caller }) => {
      if (caller?.csrfToken !== undefined) setCsrfToken(caller.csrfToken)
      setMe(caller)
    }, () => { setMe(null) })
  }, [])
  const notices = useNodeEvents(me?.role === 'clinician')

  const logout = async (): Promise<void> => {
    await api.post('/api/logout').catch(() => {})
    setMe(null)
    location.hash = ''
  }
  const switcher = <button type='button' class='link' onClick={() => { setLang(lang === 'nl' ? 'en' : 'nl') }} aria-label={t('lang.switchLabel')}>{t('lang.switch')}</button>

  return (
    <I18n.Provider value={i18n}>
      <header class='top'>
        <a class='brand' href='#/'>{t('app.name')}</a>
        {me !== null && me !== undefined && (
          <nav aria-label={t('nav.main')}>
            {PAGES.filter((p) => p.roles.includes(me.role)).map((p) => (
              <a key={p.path} href={`#/${p.path}`} aria-current={route.path.startsWith(`/${p.path}`) ? 'page' : undefined}>{t(p.label)}</a>
            ))}
          </nav>
        )}
        <div class='who'>
          {me !== null && me !== undefined && <span>{me.displayName ?? me.name} ({me.role})</span>}
          {switcher}
          {me !== null && me !== undefined && <button type='button' class='link' onClick={() => { void logout() }}>{t('logout')}</button>}
        </div>
      </header>
      <main id='main'>
        {me === undefined ? <p>{t('loading')}</p> : me === null ? <Login onLogin={(caller) => { setCsrfToken(caller.csrfToken ?? ''); setMe(caller) }} /> : pageFor(route, me)}
      </main>
      <Notices notices={notices} />
    </I18n.Provider>
  )
}

/** A patient's share link (/share/<token>): no account, no menu; the link's own page. */
function ShareApp ({ base }: { base: string }): preact.JSX.Element {
  const [lang, setLang] = useState<Lang>(initialLang())
  const i18n = useMemo(() => ({ lang, t: translator(lang) }), [lang])
  useEffect(() => { document.documentElement.lang = lang; localStorage.setItem('beeldnet.lang', lang) }, [lang])
  return (
    <I18n.Provider value={i18n}>
      <header class='top'>
        <span class='brand'>{i18n.t('app.name')}</span>
        <div class='who'><button type='button' class='link' onClick={() => { setLang(lang === 'nl' ? 'en' : 'nl') }} aria-label={i18n.t('lang.switchLabel')}>{i18n.t('lang.switch')}</button></div>
      </header>
      <main id='main'><SharePage base={base} /></main>
    </I18n.Provider>
  )
}

const shared = /^\/share\/[^/]+/.exec(location.pathname)?.[0]
render(shared === undefined ? <App /> : <ShareApp base={shared} />, document.getElementById('app')!)
