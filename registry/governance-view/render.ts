import type { Change } from '../../protocol/registry/documents.ts'
import type { DirectoryChange, RootChange } from './diff.ts'
import type { HistoryEvent } from './history.ts'
import { html, type Html, type Interpolation } from './html.ts'
import { DICTIONARIES, LANGUAGES, type Dictionary, type Language } from './i18n.ts'
import type { CandidateModel, Effect, EnrolmentRow, GovernanceViewModel, InstitutionRow, KeyRef, ProposalRow, VersionRow } from './model.ts'

/*
 * View model -> HTML. Pure and without scripts: links only (language, sections), one stylesheet
 * from this server, every document value escaped by `html`.
 */

export interface RenderOptions {
  lang: Language
  /** the zone times are shown in (default Europe/Amsterdam); the ISO time is in each <time> */
  timeZone?: string
  /** the stylesheet, relative to the page (default governance.css) */
  stylesheet?: string
}

interface Ctx { d: Dictionary, time: (iso: string) => Html }

const formatters = new Map<string, Intl.DateTimeFormat>()

/** A time for people in `locale` and `timeZone`, e.g. `12 mrt 2026 14:05`; the ISO form stays machine-readable. */
export function formatTime (iso: string, locale: string, timeZone: string): Html {
  const key = `${locale} ${timeZone}`
  let format = formatters.get(key)
  if (format === undefined) {
    format = new Intl.DateTimeFormat(locale, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZone, timeZoneName: 'short' })
    formatters.set(key, format)
  }
  const date = new Date(iso)
  const text = Number.isNaN(date.getTime()) ? iso : format.format(date)
  return html`<time datetime="${iso}" title="${iso}">${text}</time>`
}

/** A long identifier shortened for reading, whole in its title: `12D3KooWAbcD…x9Yz`. */
export function shortId (id: string, head = 12, tail = 6): Html {
  const short = id.length <= head + tail + 1 ? id : `${id.slice(0, head)}…${id.slice(-tail)}`
  return html`<code class="id" title="${id}">${short}</code>`
}

function keyRef (ref: KeyRef, d: Dictionary): Html {
  return html`<span class="key">${ref.name ?? d.unknownKey} ${shortId(ref.keyid, 8, 4)}</span>`
}

function keyList (refs: readonly KeyRef[], d: Dictionary): Html {
  if (refs.length === 0) return html`<span class="muted">${d.none}</span>`
  return html`<ul class="inline">${refs.map((r) => html`<li>${keyRef(r, d)}</li>`)}</ul>`
}

function badge (kind: string, label: string): Html {
  return html`<span class="badge badge-${kind}">${label}</span>`
}

function reasonOf (reason: string | undefined, d: Dictionary): Interpolation {
  return reason === undefined ? null : html` <span class="reason">(${d.reason(reason)})</span>`
}

/** A list of multiaddrs as text. */
function addressText (addresses: readonly string[], d: Dictionary): string {
  return addresses.length === 0 ? d.institutions.noAddresses : addresses.join(', ')
}

/* ---------- changes, in words ---------- */

export function describeChange (c: DirectoryChange, { d, time }: Ctx): Html {
  const t = d.changes
  switch (c.type) {
    case 'institution-added': return t.institutionAdded(d.states[c.state])
    case 'institution-removed': return html`${t.institutionRemoved}`
    case 'status-changed': {
      const label = c.to === 'suspended'
        ? t.suspended
        : c.to === 'revoked' ? t.revoked : c.from === 'suspended' && c.to === 'active' ? t.reinstated : t.statusChanged(d.states[c.from], d.states[c.to])
      return html`${label}${reasonOf(c.reason, d)}`
    }
    case 'name-changed': return t.nameChanged(c.from, c.to)
    case 'kind-changed': return t.kindChanged(d.kinds[c.from as keyof Dictionary['kinds']] ?? c.from, d.kinds[c.to as keyof Dictionary['kinds']] ?? c.to)
    case 'departments-changed': return t.departmentsChanged(c.from.join(', '), c.to.join(', '))
    case 'key-added': return t.keyAdded(shortId(c.peerId), addressText(c.addresses, d))
    case 'key-rotated': return t.keyRotated(shortId(c.oldPeerId), shortId(c.peerId), time(c.until))
    case 'key-revoked': return html`${t.keyRevoked(shortId(c.peerId))}${reasonOf(c.reason, d)}`
    case 'key-removed': return t.keyRemoved(shortId(c.peerId))
    case 'key-validity-changed': return t.keyValidityChanged(shortId(c.peerId), c.from === undefined ? t.open : time(c.from), c.to === undefined ? t.open : time(c.to))
    case 'addresses-changed': return t.addressesChanged(shortId(c.peerId), c.from.join(', '), c.to.join(', '))
  }
}

export function describeRootChange (c: RootChange, { d }: Ctx): Html {
  const t = d.changes
  switch (c.type) {
    case 'threshold-changed': return t.thresholdChanged(c.from ?? '–', c.to, c.of)
    case 'governance-key-added': return t.governanceKeyAdded(keyRef({ keyid: c.key.keyid, ...(c.key.name === undefined ? {} : { name: c.key.name }) }, d))
    case 'governance-key-removed': return t.governanceKeyRemoved(keyRef({ keyid: c.key.keyid, ...(c.key.name === undefined ? {} : { name: c.key.name }) }, d))
    case 'timestamp-key-changed': return t.timestampKeyChanged(shortId(c.keyid, 8, 4))
  }
}

/** What a proposal asks for, in words. */
export function describeAction (change: Change, { d }: Ctx): Html {
  const a = d.actions
  switch (change.action) {
    case 'admit': return a.admit(change.enrolment.signed.name, change.enrolment.signed.ura, shortId(change.enrolment.signed.peerId))
    case 'update-addresses': return a.updateAddresses(shortId(change.peerId), change.ura, addressText(change.addresses, d))
    case 'add-node-key': return a.addNodeKey(shortId(change.enrolment.signed.peerId), change.ura)
    case 'rotate-node-key': return a.rotateNodeKey(shortId(change.oldPeerId), shortId(change.enrolment.signed.peerId), change.ura, change.overlapDays)
    case 'revoke-node-key': return html`${a.revokeNodeKey(shortId(change.peerId), change.ura)}${reasonOf(change.reason, d)}`
    case 'suspend': return html`${a.suspend(change.ura)}${reasonOf(change.reason, d)}`
    case 'reinstate': return html`${a.reinstate(change.ura)}${reasonOf(change.reason, d)}`
    case 'revoke': return html`${a.revoke(change.ura)}${reasonOf(change.reason, d)}`
    case 'set-kind': return html`${a.setKind(change.ura, d.kinds[change.kind])}${reasonOf(change.reason, d)}`
    case 'renew': return html`${a.renew}`
    case 'update-root': return a.updateRoot(change.threshold, change.governanceKeys.length)
  }
}

const CHANGE_CLASS: Record<DirectoryChange['type'], 'added' | 'changed' | 'removed'> = {
  'institution-added': 'added',
  'key-added': 'added',
  'institution-removed': 'removed',
  'key-removed': 'removed',
  'key-revoked': 'removed',
  'status-changed': 'changed',
  'name-changed': 'changed',
  'kind-changed': 'changed',
  'departments-changed': 'changed',
  'key-rotated': 'changed',
  'key-validity-changed': 'changed',
  'addresses-changed': 'changed'
}

function names (changes: readonly DirectoryChange[]): Map<string, string> {
  const map = new Map<string, string>()
  for (const c of changes) map.set(c.ura, c.type === 'name-changed' ? c.to : c.name)
  return map
}

export function renderEffect (effect: Effect, ctx: Ctx): Html {
  const { d } = ctx
  if (effect.kind === 'problem') return html`<p class="problem">${d.proposals.wouldNotApply(effect.message)}</p>`
  if (effect.changes.length === 0) return html`<p class="muted">${d.changes.noChanges}</p>`
  if (effect.kind === 'root') {
    return html`<ul class="changes">${effect.changes.map((c) => html`<li class="change-changed">${describeRootChange(c, ctx)}</li>`)}</ul>`
  }
  const nameOf = names(effect.changes)
  return html`<ul class="changes">${effect.changes.map((c) => html`<li class="change-${CHANGE_CLASS[c.type]}"><span class="inst">${d.changes.institution(nameOf.get(c.ura) ?? '', c.ura)}</span>: ${describeChange(c, ctx)}</li>`)}</ul>`
}

/* ---------- tables ---------- */

interface Column<Row> { label: string, cell: (row: Row) => Interpolation, className?: string }

/**
 * A table labelled by its caption. Wide ones (more than three columns) sit in a named, focusable
 * region so a keyboard can scroll them sideways if they must, and become one card per row on
 * narrow screens; narrow ones (the many history tables) add no tab stops.
 */
function table<Row> (id: string, caption: Interpolation, columns: ReadonlyArray<Column<Row>>, rows: readonly Row[]): Html {
  const wide = columns.length > 3
  return html`<div class="table-wrap"${wide ? html` role="region" aria-labelledby="${id}-caption" tabindex="0"` : ''}>
<table${wide ? html` class="stack"` : ''} id="${id}">
<caption id="${id}-caption">${caption}</caption>
<thead><tr>${columns.map((c) => html`<th scope="col">${c.label}</th>`)}</tr></thead>
<tbody>
${rows.map((row) => html`<tr>${columns.map((c) => html`<td data-label="${c.label}"${c.className === undefined ? '' : html` class="${c.className}"`}>${c.cell(row)}</td>`)}</tr>
`)}</tbody>
</table>
</div>`
}

function section (id: string, heading: string, body: Interpolation): Html {
  return html`<section id="${id}" aria-labelledby="${id}-heading">
<h2 id="${id}-heading">${heading}</h2>
${body}
</section>`
}

/* ---------- the sections ---------- */

function renderRoot (m: GovernanceViewModel, ctx: Ctx): Html {
  const { d, time } = ctx
  const r = d.root
  const root = m.root
  const rootFacts = root === null
    ? html`<p class="notice">${r.none}</p>`
    : html`<dl class="facts">
<div><dt>${r.heading(root.version)}</dt><dd>${r.issued} ${time(root.issued)}; ${r.expires.toLowerCase()} ${time(root.expires)}${root.expired ? html` ${badge('expired', d.expired)}` : null}</dd></div>
<div><dt>${r.threshold}</dt><dd><strong>${r.thresholdValue(root.threshold, root.keys.length)}</strong></dd></div>
<div><dt>${r.timestampKey}</dt><dd>${shortId(root.timestampKey, 8, 4)}</dd></div>
</dl>
${table<KeyRef>('governance-keys', r.keys, [
  { label: r.name, cell: (k) => k.name ?? d.unknownKey },
  { label: r.keyid, cell: (k) => html`<code class="id wrap">${k.keyid}</code>` }
], root.keys)}`
  const dir = m.directory
  const directory = dir === null
    ? html`<p>${r.noDirectory}</p>`
    : html`<dl class="facts">
<div><dt>${r.directory}</dt><dd>${r.directoryValue(dir.version, time(dir.issued), time(dir.expires))}${dir.expired ? html` ${badge('expired', d.expired)}` : null} ${shortId(dir.hash, 8, 4)}</dd></div>
<div><dt>${d.sections.institutions}</dt><dd>${r.counts(dir.counts.active, dir.counts.suspended, dir.counts.revoked)}</dd></div>
</dl>`
  return section('root', d.sections.root, html`<dl class="facts"><div><dt>${r.network}</dt><dd><strong>${m.network}</strong></dd></div></dl>
${rootFacts}
${directory}`)
}

function renderNodes (row: InstitutionRow, ctx: Ctx): Html {
  const { d, time } = ctx
  return html`<ul class="nodes">${row.nodes.map((n) => html`<li>
${shortId(n.peerId)} ${badge(n.status, d.keyStates[n.status])}${n.notAfter === undefined ? null : html` <span class="muted">${d.institutions.validUntil(time(n.notAfter))}</span>`}${n.revoked === undefined ? null : reasonOf(n.revoked.reason, d)}
${n.addresses.length === 0 ? html`<div class="muted">${d.institutions.noAddresses}</div>` : html`<ul class="addresses">${n.addresses.map((a) => html`<li><code class="wrap">${a}</code></li>`)}</ul>`}
</li>`)}</ul>`
}

function renderInstitutions (m: GovernanceViewModel, ctx: Ctx): Html {
  const { d, time } = ctx
  const t = d.institutions
  if (m.directory === null || m.institutions.length === 0) return section('institutions', d.sections.institutions, html`<p>${t.empty}</p>`)
  return section('institutions', d.sections.institutions, table<InstitutionRow>('institutions-table', t.caption(m.directory.version), [
    { label: t.status, cell: (i) => html`${badge(i.state, d.states[i.state])}<div class="muted small">${t.since(time(i.since))}</div>${i.reason === undefined ? null : html`<div class="reason small">${d.reason(i.reason)}</div>`}` },
    { label: t.ura, cell: (i) => i.ura, className: 'nowrap' },
    { label: t.name, cell: (i) => html`<strong>${i.name}</strong><div class="muted small">${d.kinds[i.kind]}</div>` },
    { label: t.departments, cell: (i) => i.departments.length === 0 ? html`<span class="muted">${d.none}</span>` : html`<ul class="plain">${i.departments.map((dep) => html`<li><abbr title="${dep.name}">${dep.code}</abbr> ${dep.name}</li>`)}</ul>` },
    { label: t.nodes, cell: (i) => renderNodes(i, ctx) },
    { label: t.history, cell: (i) => html`<a href="#history-${i.ura}">${t.historyLink}<span class="visually-hidden"> ${t.historyOf(i.name)}</span> (${i.history.length})</a>` }
  ], m.institutions))
}

function renderHistory (m: GovernanceViewModel, ctx: Ctx): Html {
  const { d, time } = ctx
  const h = d.history
  if (m.institutions.length === 0) return section('history', d.sections.history, html`<p>${d.institutions.empty}</p>`)
  return section('history', d.sections.history, html`<p class="muted">${h.intro}</p>
${m.institutions.map((i) => html`<section class="history" aria-labelledby="history-${i.ura}">
<h3 id="history-${i.ura}" tabindex="-1">${h.heading(i.name, i.ura)} ${badge(i.state, d.states[i.state])}</h3>
${table<HistoryEvent>(`history-table-${i.ura}`, h.caption(i.name), [
  { label: h.version, cell: (e) => `v${e.version}`, className: 'nowrap' },
  { label: h.date, cell: (e) => time(e.at) },
  { label: h.event, cell: (e) => html`<span class="change-${CHANGE_CLASS[e.change.type]}">${describeChange(e.change, ctx)}</span>` }
], i.history)}
<p class="back"><a href="#institutions">↑ ${d.sections.institutions}</a></p>
</section>`)}`)
}

function renderCandidate (m: GovernanceViewModel, ctx: Ctx): Html {
  const { d, time } = ctx
  const t = d.candidate
  const c: CandidateModel | null = m.candidate
  const problem = m.candidateError === null ? null : html`<p class="problem">${t.error} ${m.candidateError}</p>`
  if (c === null) return section('candidate', d.sections.candidate, html`<p class="muted">${t.explain}</p>${problem}<p>${t.none}</p>`)
  return section('candidate', d.sections.candidate, html`<p class="muted">${t.explain}</p>
<h3>${t.heading(t.kinds[c.kind], c.version)}</h3>
<dl class="facts">
<div><dt>${t.frozen}</dt><dd>${time(c.frozen)}</dd></div>
<div><dt>${t.hash}</dt><dd>${shortId(c.hash, 12, 6)}</dd></div>
<div><dt>${t.base}</dt><dd>${c.base === null ? t.firstVersion : t.baseValue(c.base.version)}</dd></div>
<div><dt>${t.signatures}</dt><dd><strong class="progress-text">${t.progress(c.collected, c.needed)}</strong>
<progress max="${c.needed}" value="${Math.min(c.collected, c.needed)}" aria-label="${t.signatures}">${c.collected}/${c.needed}</progress></dd></div>
</dl>
${c.thresholds.map((th) => html`<div class="threshold">
<p><strong>${t.thresholdOf(th.of, th.collected, th.needed)}</strong></p>
<dl class="facts">
<div><dt>${t.signedBy}</dt><dd>${keyList(th.signed, d)}</dd></div>
<div><dt>${t.notYetSigned}</dt><dd>${keyList(th.missing, d)}</dd></div>
</dl>
</div>`)}
<h4>${t.changes}</h4>
${renderEffect(c.effect, ctx)}
<h4>${t.proposals}</h4>
${c.proposals.length === 0 ? html`<p class="muted">${d.none}</p>` : html`<ul class="proposals">${c.proposals.map((p) => html`<li>${describeAction(p.change, ctx)} <span class="muted">— ${d.proposals.proposedBy.toLowerCase()} ${keyList(p.signers, d)}, ${time(p.received)}</span></li>`)}</ul>`}`)
}

function renderProposals (m: GovernanceViewModel, ctx: Ctx): Html {
  const { d, time } = ctx
  const t = d.proposals
  if (m.proposals.length === 0) return section('proposals', d.sections.proposals, html`<p>${t.empty}</p>`)
  return section('proposals', d.sections.proposals, html`<p class="muted">${t.explain}</p>
${table<ProposalRow>('proposals-table', t.caption, [
  { label: t.received, cell: (p) => time(p.received) },
  { label: t.proposedBy, cell: (p) => keyList(p.signers, d) },
  { label: t.change, cell: (p) => describeAction(p.change, ctx) },
  { label: t.effect, cell: (p) => renderEffect(p.effect, ctx) }
], m.proposals)}`)
}

function renderEnrolments (m: GovernanceViewModel, ctx: Ctx): Html {
  const { d, time } = ctx
  const t = d.enrolments
  if (m.enrolments.length === 0) return section('enrolments', d.sections.enrolments, html`<p>${t.empty}</p>`)
  return section('enrolments', d.sections.enrolments, html`<p class="muted">${t.explain}</p>
${table<EnrolmentRow>('enrolments-table', t.caption, [
  { label: t.received, cell: (e) => time(e.received) },
  { label: t.ura, cell: (e) => e.ura, className: 'nowrap' },
  { label: t.name, cell: (e) => html`<strong>${e.name}</strong><div class="muted small">${d.kinds[e.kind]}</div>` },
  { label: t.departments, cell: (e) => e.departments.length === 0 ? html`<span class="muted">${d.none}</span>` : html`<ul class="plain">${e.departments.map((dep) => html`<li><abbr title="${dep.name}">${dep.code}</abbr> ${dep.name}</li>`)}</ul>` },
  { label: t.key, cell: (e) => shortId(e.peerId) },
  { label: t.addresses, cell: (e) => e.addresses.length === 0 ? html`<span class="muted">${d.institutions.noAddresses}</span>` : html`<ul class="plain">${e.addresses.map((a) => html`<li><code class="wrap">${a}</code></li>`)}</ul>` },
  { label: t.concerns, cell: (e) => e.existing ? t.extraKey : t.newInstitution }
], m.enrolments)}`)
}

function renderVersions (m: GovernanceViewModel, ctx: Ctx): Html {
  const { d, time } = ctx
  const t = d.versions
  if (m.versions.length === 0) return section('versions', d.sections.versions, html`<p>${t.empty}</p>`)
  return section('versions', d.sections.versions, table<VersionRow>('versions-table', t.caption, [
    { label: t.version, cell: (v) => html`v${v.version}${v.current ? html` ${badge('current', d.current)}` : null}`, className: 'nowrap' },
    { label: t.issued, cell: (v) => time(v.issued) },
    { label: t.expires, cell: (v) => html`${time(v.expires)}${v.expired ? html` ${badge('expired', d.expired)}` : null}` },
    { label: t.hash, cell: (v) => shortId(v.hash, 12, 6) },
    { label: t.signedBy, cell: (v) => keyList(v.signers, d) }
  ], m.versions))
}

/* ---------- the page ---------- */

export function renderPage (m: GovernanceViewModel, options: RenderOptions): string {
  const d = DICTIONARIES[options.lang]
  const timeZone = options.timeZone ?? 'Europe/Amsterdam'
  const ctx: Ctx = { d, time: (iso) => formatTime(iso, d.locale, timeZone) }
  const s = d.sections
  const toc: Array<[string, string, number | null]> = [
    ['root', s.root, null],
    ['institutions', s.institutions, m.institutions.length],
    ['candidate', s.candidate, m.candidate === null ? 0 : 1],
    ['proposals', s.proposals, m.proposals.length],
    ['enrolments', s.enrolments, m.enrolments.length],
    ['versions', s.versions, m.versions.length],
    ['history', s.history, null]
  ]
  const title = d.title(m.network)
  return html`<!doctype html>
<html lang="${options.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title}</title>
<link rel="stylesheet" href="${options.stylesheet ?? 'governance.css'}">
</head>
<body>
<a class="skip" href="#main">${d.skipToContent}</a>
<header class="page-header">
<div class="title-row">
<h1>${title}</h1>
<nav class="languages" aria-label="${d.languageNav}"><ul>${LANGUAGES.map((lang) => html`<li><a href="?lang=${lang}" hreflang="${lang}" lang="${lang}"${lang === options.lang ? html` aria-current="true"` : ''}>${DICTIONARIES[lang].languageName}</a></li>`)}</ul></nav>
</div>
<p class="read-only" role="note">${d.readOnly}</p>
<nav class="toc" aria-label="${d.onThisPage}"><ul>${toc.map(([id, label, count]) => html`<li><a href="#${id}">${label}${count === null ? '' : ` (${count})`}</a></li>`)}</ul></nav>
</header>
<main id="main" tabindex="-1">
${m.integrity.ok ? null : html`<div class="alert"><p><strong>${d.tampered}</strong></p><ul>${m.integrity.problems.map((p) => html`<li>${p}</li>`)}</ul></div>`}
${renderRoot(m, ctx)}
${renderInstitutions(m, ctx)}
${renderCandidate(m, ctx)}
${renderProposals(m, ctx)}
${renderEnrolments(m, ctx)}
${renderVersions(m, ctx)}
${renderHistory(m, ctx)}
</main>
<footer class="page-footer"><p>${d.generated(ctx.time(m.generated))}</p></footer>
</body>
</html>
`.value
}
