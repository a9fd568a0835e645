import type { Institution } from '../../protocol/registry/documents.ts'
import type { State } from './diff.ts'
import { html, type Html, type Interpolation } from './html.ts'

/*
 * Every word on the page, per language. Strings are text (escaped where they are used); the
 * functions put values (already rendered: peer ids as <code>, times as <time>) into a sentence.
 * Dutch is the default; a key missing from a language is a type error.
 */

export const LANGUAGES = ['nl', 'en'] as const
export type Language = typeof LANGUAGES[number]
export const DEFAULT_LANGUAGE: Language = 'nl'

type I = Interpolation
type Kind = Institution['kind']

export interface Dictionary {
  locale: string
  languageName: string
  title: (network: I) => Html
  skipToContent: string
  languageNav: string
  onThisPage: string
  readOnly: string
  generated: (time: I) => Html
  tampered: string
  sections: { root: string, institutions: string, history: string, candidate: string, proposals: string, enrolments: string, versions: string }
  none: string
  unknownKey: string
  reason: (reason: I) => Html
  expired: string
  current: string
  states: Record<State, string>
  keyStates: Record<'active' | 'revoked', string>
  kinds: Record<Kind, string>
  root: {
    heading: (version: I) => Html
    none: string
    network: string
    threshold: string
    thresholdValue: (k: I, n: I) => Html
    issued: string
    expires: string
    keys: string
    name: string
    keyid: string
    timestampKey: string
    directory: string
    directoryValue: (version: I, issued: I, expires: I) => Html
    noDirectory: string
    counts: (active: I, suspended: I, revoked: I) => Html
  }
  institutions: {
    caption: (version: I) => Html
    empty: string
    status: string
    ura: string
    name: string
    kind: string
    departments: string
    nodes: string
    history: string
    historyLink: string
    /** completes the link text for screen readers: `history` + ` of <name>` */
    historyOf: (name: I) => Html
    since: (time: I) => Html
    validUntil: (time: I) => Html
    noAddresses: string
  }
  history: {
    intro: string
    heading: (name: I, ura: I) => Html
    caption: (name: I) => Html
    version: string
    date: string
    event: string
  }
  changes: {
    institutionAdded: (state: I) => Html
    institutionRemoved: string
    suspended: string
    reinstated: string
    revoked: string
    statusChanged: (from: I, to: I) => Html
    nameChanged: (from: I, to: I) => Html
    kindChanged: (from: I, to: I) => Html
    departmentsChanged: (from: I, to: I) => Html
    keyAdded: (peer: I, addresses: I) => Html
    keyRotated: (old: I, peer: I, until: I) => Html
    keyRevoked: (peer: I) => Html
    keyRemoved: (peer: I) => Html
    keyValidityChanged: (peer: I, from: I, to: I) => Html
    addressesChanged: (peer: I, from: I, to: I) => Html
    open: string
    thresholdChanged: (from: I, to: I, of: I) => Html
    governanceKeyAdded: (key: I) => Html
    governanceKeyRemoved: (key: I) => Html
    timestampKeyChanged: (keyid: I) => Html
    noChanges: string
    institution: (name: I, ura: I) => Html
  }
  actions: {
    admit: (name: I, ura: I, peer: I) => Html
    updateAddresses: (peer: I, ura: I, addresses: I) => Html
    addNodeKey: (peer: I, ura: I) => Html
    rotateNodeKey: (old: I, peer: I, ura: I, days: I) => Html
    revokeNodeKey: (peer: I, ura: I) => Html
    suspend: (ura: I) => Html
    reinstate: (ura: I) => Html
    revoke: (ura: I) => Html
    setKind: (ura: I, kind: I) => Html
    renew: string
    updateRoot: (k: I, n: I) => Html
  }
  candidate: {
    none: string
    heading: (kind: I, version: I) => Html
    kinds: { root: string, directory: string }
    frozen: string
    hash: string
    base: string
    baseValue: (version: I) => Html
    firstVersion: string
    signatures: string
    progress: (collected: I, needed: I) => Html
    thresholdOf: (of: I, collected: I, needed: I) => Html
    signedBy: string
    notYetSigned: string
    changes: string
    proposals: string
    explain: string
    error: string
  }
  proposals: {
    caption: string
    empty: string
    explain: string
    received: string
    proposedBy: string
    change: string
    effect: string
    wouldNotApply: (message: I) => Html
  }
  enrolments: {
    caption: string
    empty: string
    explain: string
    received: string
    ura: string
    name: string
    kind: string
    departments: string
    key: string
    addresses: string
    concerns: string
    newInstitution: string
    extraKey: string
  }
  versions: {
    caption: string
    empty: string
    version: string
    issued: string
    expires: string
    hash: string
    signedBy: string
  }
}

const nl: Dictionary = {
  locale: 'nl-NL',
  languageName: 'Nederlands',
  title: (network) => html`Beeldnet-register ${network}: governance-overzicht`,
  skipToContent: 'Naar de inhoud',
  languageNav: 'Taal',
  onThisPage: 'Op deze pagina',
  readOnly: 'Alleen-lezen. Deze pagina toont wat het register bewaart; hier kan niets worden voorgesteld of ondertekend. ' +
    'Voorstellen en handtekeningen gaan via de CLI (beeldnet governance …) met de offline sleutels van de leden. ' +
    'De registerserver heeft geen sleutel waarmee hij zelf een directory kan publiceren.',
  generated: (time) => html`Opgebouwd op ${time}.`,
  tampered: 'De opslag van het register verifieert niet (met de hand bewerkt of beschadigd). Nodes weigeren wat hier staat.',
  sections: {
    root: 'Root en governance',
    institutions: 'Instellingen',
    history: 'Geschiedenis per instelling',
    candidate: 'Kandidaat',
    proposals: 'Openstaande voorstellen',
    enrolments: 'Openstaande aanmeldingen',
    versions: 'Gepubliceerde versies'
  },
  none: 'geen',
  unknownKey: 'onbekende sleutel',
  reason: (reason) => html`reden: ${reason}`,
  expired: 'verlopen',
  current: 'in gebruik',
  states: { active: 'actief', suspended: 'geschorst', revoked: 'ingetrokken' },
  keyStates: { active: 'actief', revoked: 'ingetrokken' },
  kinds: {
    hospital: 'ziekenhuis',
    'independent-treatment-centre': 'zelfstandig behandelcentrum',
    'diagnostic-centre': 'diagnostisch centrum',
    'general-practice': 'huisartsenpraktijk',
    laboratory: 'laboratorium',
    'teaching-research': 'onderwijs- of onderzoeksinstelling',
    other: 'overig'
  },
  root: {
    heading: (version) => html`Root v${version}`,
    none: 'Nog geen root gepubliceerd: root v1 wacht op de handtekeningen van de governance-leden.',
    network: 'Netwerk',
    threshold: 'Drempel',
    thresholdValue: (k, n) => html`${k} van ${n} governance-sleutels`,
    issued: 'Uitgegeven',
    expires: 'Verloopt',
    keys: 'Governance-sleutels',
    name: 'Naam',
    keyid: 'Sleutel-id',
    timestampKey: 'Tijdstempelsleutel (online, tekent alleen tijdstempels)',
    directory: 'Directory in gebruik',
    directoryValue: (version, issued, expires) => html`v${version}, uitgegeven ${issued}, verloopt ${expires}`,
    noDirectory: 'Nog geen directory gepubliceerd.',
    counts: (active, suspended, revoked) => html`${active} actief, ${suspended} geschorst, ${revoked} ingetrokken`
  },
  institutions: {
    caption: (version) => html`Instellingen in directory v${version}`,
    empty: 'Er staan nog geen instellingen in de directory.',
    status: 'Status',
    ura: 'URA',
    name: 'Naam',
    kind: 'Soort',
    departments: 'Afdelingen',
    nodes: 'Node-sleutels en adressen',
    history: 'Geschiedenis',
    historyLink: 'geschiedenis',
    historyOf: (name) => html`van ${name}`,
    since: (time) => html`sinds ${time}`,
    validUntil: (time) => html`geldig tot ${time}`,
    noAddresses: 'geen adressen'
  },
  history: {
    intro: 'Afgeleid uit de gepubliceerde directoryversies: elke gebeurtenis is een verschil tussen een versie en de vorige.',
    heading: (name, ura) => html`${name} (URA ${ura})`,
    caption: (name) => html`Gebeurtenissen van ${name}`,
    version: 'Versie',
    date: 'Datum',
    event: 'Gebeurtenis'
  },
  changes: {
    institutionAdded: (state) => html`toegelaten tot de directory (${state})`,
    institutionRemoved: 'uit de directory verwijderd (hoort als grafsteen te blijven staan)',
    suspended: 'geschorst',
    reinstated: 'hersteld (weer actief)',
    revoked: 'ingetrokken (definitief)',
    statusChanged: (from, to) => html`status ${from} → ${to}`,
    nameChanged: (from, to) => html`naam ${from} → ${to}`,
    kindChanged: (from, to) => html`soort ${from} → ${to}`,
    departmentsChanged: (from, to) => html`afdelingen [${from}] → [${to}]`,
    keyAdded: (peer, addresses) => html`node-sleutel ${peer} toegevoegd (${addresses})`,
    keyRotated: (old, peer, until) => html`node-sleutel vervangen: ${old} → ${peer}; de oude blijft geldig tot ${until}`,
    keyRevoked: (peer) => html`node-sleutel ${peer} ingetrokken`,
    keyRemoved: (peer) => html`node-sleutel ${peer} verwijderd (hoort als grafsteen te blijven staan)`,
    keyValidityChanged: (peer, from, to) => html`geldigheid van ${peer}: ${from} → ${to}`,
    addressesChanged: (peer, from, to) => html`adressen van ${peer}: [${from}] → [${to}]`,
    open: 'onbeperkt',
    thresholdChanged: (from, to, of) => html`drempel ${from} → ${to} van ${of} sleutels`,
    governanceKeyAdded: (key) => html`governance-sleutel toegevoegd: ${key}`,
    governanceKeyRemoved: (key) => html`governance-sleutel verwijderd: ${key}`,
    timestampKeyChanged: (keyid) => html`nieuwe tijdstempelsleutel ${keyid}`,
    noChanges: 'geen wijzigingen aan instellingen (alleen verlenging)',
    institution: (name, ura) => html`${name} (URA ${ura})`
  },
  actions: {
    admit: (name, ura, peer) => html`${name} (URA ${ura}) toelaten met node-sleutel ${peer}`,
    updateAddresses: (peer, ura, addresses) => html`adressen van ${peer} (URA ${ura}) vervangen door [${addresses}]`,
    addNodeKey: (peer, ura) => html`node-sleutel ${peer} toevoegen aan URA ${ura}`,
    rotateNodeKey: (old, peer, ura, days) => html`node-sleutel ${old} van URA ${ura} vervangen door ${peer} (${days} dagen overlap)`,
    revokeNodeKey: (peer, ura) => html`node-sleutel ${peer} van URA ${ura} intrekken`,
    suspend: (ura) => html`URA ${ura} schorsen`,
    reinstate: (ura) => html`URA ${ura} herstellen`,
    revoke: (ura) => html`URA ${ura} intrekken (definitief)`,
    setKind: (ura, kind) => html`URA ${ura} aanmerken als ${kind}`,
    renew: 'de directory ongewijzigd verlengen',
    updateRoot: (k, n) => html`nieuwe root: ${k} van ${n} governance-sleutels`
  },
  candidate: {
    none: 'Er is geen bevroren kandidaat: er ligt niets klaar om te ondertekenen.',
    heading: (kind, version) => html`Kandidaat: ${kind} v${version}`,
    kinds: { root: 'root', directory: 'directory' },
    frozen: 'Bevroren op',
    hash: 'Hash',
    base: 'Volgt op',
    baseValue: (version) => html`v${version}`,
    firstVersion: 'eerste versie',
    signatures: 'Handtekeningen',
    progress: (collected, needed) => html`${collected} van ${needed} nodig`,
    thresholdOf: (of, collected, needed) => html`sleutels van ${of}: ${collected} van ${needed}`,
    signedBy: 'Getekend door',
    notYetSigned: 'Nog niet getekend door',
    changes: 'Wat deze kandidaat verandert ten opzichte van wat nu geldt',
    proposals: 'Voorstellen in deze kandidaat',
    explain: 'Een kandidaat wordt bevroren zodra een lid hem opvraagt om te tekenen; voorstellen die daarna binnenkomen wachten op de volgende. ' +
      'Het register publiceert de versie zodra de drempel is gehaald.',
    error: 'De kandidaat kon niet worden gelezen:'
  },
  proposals: {
    caption: 'Voorstellen die wachten op de volgende kandidaat',
    empty: 'Geen openstaande voorstellen buiten de kandidaat.',
    explain: 'Het effect is een voorvertoning: de voorstellen toegepast in volgorde van binnenkomst op de directory in gebruik.',
    received: 'Ontvangen',
    proposedBy: 'Voorgesteld door',
    change: 'Wijziging',
    effect: 'Effect',
    wouldNotApply: (message) => html`zou niet toepasbaar zijn: ${message}`
  },
  enrolments: {
    caption: 'Aanmeldingen van nodes',
    empty: 'Geen openstaande aanmeldingen.',
    explain: 'Een aanmelding verandert niets zolang geen lid een voorstel indient dat haar gebruikt.',
    received: 'Ontvangen',
    ura: 'URA',
    name: 'Naam',
    kind: 'Soort',
    departments: 'Afdelingen',
    key: 'Node-sleutel',
    addresses: 'Adressen',
    concerns: 'Betreft',
    newInstitution: 'nieuwe instelling',
    extraKey: 'sleutel voor een instelling die al in de directory staat'
  },
  versions: {
    caption: 'Gepubliceerde directoryversies, nieuwste eerst',
    empty: 'Nog geen directoryversie gepubliceerd.',
    version: 'Versie',
    issued: 'Uitgegeven',
    expires: 'Verloopt',
    hash: 'Hash',
    signedBy: 'Ondertekend door'
  }
}

const en: Dictionary = {
  locale: 'en-GB',
  languageName: 'English',
  title: (network) => html`Beeldnet registry ${network}: governance overview`,
  skipToContent: 'Skip to content',
  languageNav: 'Language',
  onThisPage: 'On this page',
  readOnly: 'Read-only. This page shows what the registry keeps; nothing can be proposed or signed here. ' +
    'Proposals and signatures go through the CLI (beeldnet governance …) with the members\' offline keys. ' +
    'The registry server holds no key that could publish a directory on its own.',
  generated: (time) => html`Generated ${time}.`,
  tampered: 'The registry\'s store does not verify (edited by hand or corrupt). Nodes refuse what is shown here.',
  sections: {
    root: 'Root and governance',
    institutions: 'Institutions',
    history: 'History per institution',
    candidate: 'Candidate',
    proposals: 'Pending proposals',
    enrolments: 'Pending enrolments',
    versions: 'Published versions'
  },
  none: 'none',
  unknownKey: 'unknown key',
  reason: (reason) => html`reason: ${reason}`,
  expired: 'expired',
  current: 'in force',
  states: { active: 'active', suspended: 'suspended', revoked: 'revoked' },
  keyStates: { active: 'active', revoked: 'revoked' },
  kinds: {
    hospital: 'hospital',
    'independent-treatment-centre': 'independent treatment centre',
    'diagnostic-centre': 'diagnostic centre',
    'general-practice': 'general practice',
    laboratory: 'laboratory',
    'teaching-research': 'teaching or research institution',
    other: 'other'
  },
  root: {
    heading: (version) => html`Root v${version}`,
    none: 'No root published yet: root v1 is waiting for the governance members\' signatures.',
    network: 'Network',
    threshold: 'Threshold',
    thresholdValue: (k, n) => html`${k} of ${n} governance keys`,
    issued: 'Issued',
    expires: 'Expires',
    keys: 'Governance keys',
    name: 'Name',
    keyid: 'Key id',
    timestampKey: 'Timestamp key (online, signs timestamps only)',
    directory: 'Directory in force',
    directoryValue: (version, issued, expires) => html`v${version}, issued ${issued}, expires ${expires}`,
    noDirectory: 'No directory published yet.',
    counts: (active, suspended, revoked) => html`${active} active, ${suspended} suspended, ${revoked} revoked`
  },
  institutions: {
    caption: (version) => html`Institutions in directory v${version}`,
    empty: 'There are no institutions in the directory yet.',
    status: 'Status',
    ura: 'URA',
    name: 'Name',
    kind: 'Kind',
    departments: 'Departments',
    nodes: 'Node keys and addresses',
    history: 'History',
    historyLink: 'history',
    historyOf: (name) => html`of ${name}`,
    since: (time) => html`since ${time}`,
    validUntil: (time) => html`valid until ${time}`,
    noAddresses: 'no addresses'
  },
  history: {
    intro: 'Derived from the published directory versions: each event is a difference between a version and the one before.',
    heading: (name, ura) => html`${name} (URA ${ura})`,
    caption: (name) => html`Events of ${name}`,
    version: 'Version',
    date: 'Date',
    event: 'Event'
  },
  changes: {
    institutionAdded: (state) => html`admitted to the directory (${state})`,
    institutionRemoved: 'removed from the directory (it should stay as a tombstone)',
    suspended: 'suspended',
    reinstated: 'reinstated (active again)',
    revoked: 'revoked (permanent)',
    statusChanged: (from, to) => html`status ${from} → ${to}`,
    nameChanged: (from, to) => html`name ${from} → ${to}`,
    kindChanged: (from, to) => html`kind ${from} → ${to}`,
    departmentsChanged: (from, to) => html`departments [${from}] → [${to}]`,
    keyAdded: (peer, addresses) => html`node key ${peer} added (${addresses})`,
    keyRotated: (old, peer, until) => html`node key rotated: ${old} → ${peer}; the old one stays valid until ${until}`,
    keyRevoked: (peer) => html`node key ${peer} revoked`,
    keyRemoved: (peer) => html`node key ${peer} removed (it should stay as a tombstone)`,
    keyValidityChanged: (peer, from, to) => html`validity of ${peer}: ${from} → ${to}`,
    addressesChanged: (peer, from, to) => html`addresses of ${peer}: [${from}] → [${to}]`,
    open: 'open-ended',
    thresholdChanged: (from, to, of) => html`threshold ${from} → ${to} of ${of} keys`,
    governanceKeyAdded: (key) => html`governance key added: ${key}`,
    governanceKeyRemoved: (key) => html`governance key removed: ${key}`,
    timestampKeyChanged: (keyid) => html`new timestamp key ${keyid}`,
    noChanges: 'no changes to institutions (renewal only)',
    institution: (name, ura) => html`${name} (URA ${ura})`
  },
  actions: {
    admit: (name, ura, peer) => html`admit ${name} (URA ${ura}) with node key ${peer}`,
    updateAddresses: (peer, ura, addresses) => html`replace the addresses of ${peer} (URA ${ura}) with [${addresses}]`,
    addNodeKey: (peer, ura) => html`add node key ${peer} to URA ${ura}`,
    rotateNodeKey: (old, peer, ura, days) => html`replace node key ${old} of URA ${ura} with ${peer} (${days} days overlap)`,
    revokeNodeKey: (peer, ura) => html`revoke node key ${peer} of URA ${ura}`,
    suspend: (ura) => html`suspend URA ${ura}`,
    reinstate: (ura) => html`reinstate URA ${ura}`,
    revoke: (ura) => html`revoke URA ${ura} (permanent)`,
    setKind: (ura, kind) => html`mark URA ${ura} as ${kind}`,
    renew: 'renew the directory unchanged',
    updateRoot: (k, n) => html`new root: ${k} of ${n} governance keys`
  },
  candidate: {
    none: 'There is no frozen candidate: nothing is waiting to be signed.',
    heading: (kind, version) => html`Candidate: ${kind} v${version}`,
    kinds: { root: 'root', directory: 'directory' },
    frozen: 'Frozen at',
    hash: 'Hash',
    base: 'Follows',
    baseValue: (version) => html`v${version}`,
    firstVersion: 'first version',
    signatures: 'Signatures',
    progress: (collected, needed) => html`${collected} of ${needed} needed`,
    thresholdOf: (of, collected, needed) => html`keys of ${of}: ${collected} of ${needed}`,
    signedBy: 'Signed by',
    notYetSigned: 'Not yet signed by',
    changes: 'What this candidate changes against what is in force',
    proposals: 'Proposals in this candidate',
    explain: 'A candidate is frozen as soon as a member fetches it to sign; proposals arriving after that wait for the next one. ' +
      'The registry publishes the version once the threshold is met.',
    error: 'The candidate could not be read:'
  },
  proposals: {
    caption: 'Proposals waiting for the next candidate',
    empty: 'No pending proposals outside the candidate.',
    explain: 'The effect is a preview: the proposals applied in order of arrival to the directory in force.',
    received: 'Received',
    proposedBy: 'Proposed by',
    change: 'Change',
    effect: 'Effect',
    wouldNotApply: (message) => html`would not apply: ${message}`
  },
  enrolments: {
    caption: 'Node enrolments',
    empty: 'No pending enrolments.',
    explain: 'An enrolment changes nothing until a member submits a proposal that uses it.',
    received: 'Received',
    ura: 'URA',
    name: 'Name',
    kind: 'Kind',
    departments: 'Departments',
    key: 'Node key',
    addresses: 'Addresses',
    concerns: 'Concerns',
    newInstitution: 'new institution',
    extraKey: 'a key for an institution already in the directory'
  },
  versions: {
    caption: 'Published directory versions, newest first',
    empty: 'No directory version published yet.',
    version: 'Version',
    issued: 'Issued',
    expires: 'Expires',
    hash: 'Hash',
    signedBy: 'Signed by'
  }
}

export const DICTIONARIES: Record<Language, Dictionary> = { nl, en }

function isLanguage (value: unknown): value is Language {
  return typeof value === 'string' && (LANGUAGES as readonly string[]).includes(value)
}

/**
 * `?lang=` when it names a language we have; otherwise the best match in Accept-Language
 * (by q-value, `en-GB` matching `en`); otherwise Dutch.
 */
export function pickLanguage (query: unknown, acceptLanguage: string | undefined): Language {
  if (isLanguage(query)) return query
  const wanted = (acceptLanguage ?? '').split(',').slice(0, 32).map((part, i) => {
    const [tag = '', ...params] = part.trim().split(';')
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='))
    const weight = q === undefined ? 1 : Number(q.slice(2))
    return { lang: tag.trim().toLowerCase().split('-')[0], weight: Number.isFinite(weight) ? weight : 0, i }
  })
  const best = wanted.filter((w) => w.weight > 0 && isLanguage(w.lang)).sort((a, b) => b.weight - a.weight || a.i - b.i)[0]
  return best === undefined ? DEFAULT_LANGUAGE : best.lang as Language
}
