import { trailRecords, type AuditPerson } from './audit-log.ts'
import { describePerson } from './events.ts'

/*
 * What a patient may ask for (NEN 7513): every access to their data on this node, by BSN, with
 * who (user and responsible user), which institution, when and what. As JSON, and as a page a
 * person can read and print.
 */

export interface PatientAccess {
  seq: number
  time: string
  event: string
  outcome: string
  user: AuditPerson
  responsible?: AuditPerson
  institution?: { ura: string, name?: string }
  studyInstanceUID?: string
}

export interface PatientReport {
  bsn: string
  accesses: PatientAccess[]
  /** everyone who acted or answered for an access, once each */
  users: AuditPerson[]
  institutions: Array<{ ura: string, name?: string }>
}

export async function patientReport (trailPath: string, bsn: string): Promise<PatientReport> {
  const report: PatientReport = { bsn, accesses: [], users: [], institutions: [] }
  const users = new Map<string, AuditPerson>()
  const institutions = new Map<string, { ura: string, name?: string }>()
  for await (const record of trailRecords(trailPath)) {
    if (record.patient?.bsn !== bsn) continue
    report.accesses.push({
      seq: record.seq,
      time: record.time,
      event: record.event,
      outcome: record.outcome,
      user: record.user,
      ...(record.responsible === undefined ? {} : { responsible: record.responsible }),
      ...(record.institution === undefined ? {} : { institution: record.institution }),
      ...(record.studyInstanceUID === undefined ? {} : { studyInstanceUID: record.studyInstanceUID })
    })
    for (const person of [record.user, record.responsible]) if (person !== undefined) users.set(JSON.stringify(person), person)
    if (record.institution !== undefined) institutions.set(record.institution.ura, record.institution)
  }
  report.users = [...users.values()]
  report.institutions = [...institutions.values()]
  return report
}

const escape = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)

function person (p: AuditPerson | undefined): string {
  return p === undefined ? '' : describePerson(p)
}

/** The report as a self-contained HTML page (no external resources). */
export function patientReportHtml (report: PatientReport, nodeName: string): string {
  const rows = report.accesses.map((a) => `<tr><td>${escape(a.time)}</td><td>${escape(a.event)}</td><td>${escape(a.outcome)}</td><td>${escape(person(a.user))}</td><td>${escape(person(a.responsible))}</td><td>${escape(a.institution === undefined ? '' : `${a.institution.name ?? ''} (URA ${a.institution.ura})`)}</td><td>${escape(a.studyInstanceUID ?? '')}</td></tr>`)
  return `<!doctype html>
<html lang="nl"><head><meta charset="utf-8"><title>Inzage toegang tot gegevens: BSN ${escape(report.bsn)}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #999;padding:.3em .6em;text-align:left;vertical-align:top}</style></head>
<body><h1>Wie heeft uw gegevens ingezien?</h1>
<p>Alle toegang tot gegevens van de patiënt met BSN ${escape(report.bsn)} op ${escape(nodeName)}, uit het audit-logboek (NEN 7513).</p>
<table><thead><tr><th>Tijd (UTC)</th><th>Handeling</th><th>Uitkomst</th><th>Gebruiker</th><th>Verantwoordelijke</th><th>Instelling</th><th>Onderzoek</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>
<p>${report.accesses.length} keer; ${report.institutions.length} andere instelling(en).</p>
</body></html>
`
}
