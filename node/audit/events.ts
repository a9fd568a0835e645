import type { Requester } from '../../protocol/exchange/requester.ts'
import type { StudyRecord } from '../store/records.ts'
import type { AuditPatient, AuditPerson, AuditSink } from './audit-log.ts'

/* How the node's own records become the audit trail's patient and person fields. */

export function auditPatient (patient: StudyRecord['patient']): AuditPatient {
  return { ...(patient.bsn === undefined ? {} : { bsn: patient.bsn }), id: patient.id, issuer: patient.issuer, name: patient.name }
}

export function auditClinician (requester: Requester): AuditPerson {
  return { name: requester.clinician.name, uzi: requester.clinician.uzi, role: requester.clinician.role }
}

/** Until people log in (users and roles), API and DICOMweb callers are named by where they called from. */
export function auditCaller (kind: string, address: string | undefined): AuditPerson {
  return { system: `${kind} caller at ${address ?? 'an unknown address'}` }
}

export const NODE_ITSELF: AuditPerson = { system: 'this node' }

/** A person or system in one line (who decided, in a record kept elsewhere). */
export function describePerson (person: AuditPerson): string {
  if (person.system !== undefined) return person.system
  return [person.name, person.uzi === undefined ? undefined : `UZI ${person.uzi}`, person.role].filter((x) => x !== undefined).join(', ')
}

/** Who made an HTTP request: the logged-in person or token when there is one, else where it came from. */
export function auditRequester (req: { caller?: { person?: AuditPerson }, ip: string }, kind: string): AuditPerson {
  return req.caller?.person ?? auditCaller(kind, req.ip)
}

/**
 * One audit record per patient whose data an HTTP request showed (the trail is per patient), with
 * the caller as the user: `kind` names the door (API, DICOMweb) when no person or token is known.
 * A list showing many patients is written in one go (one fsync).
 */
export async function recordShown (audit: AuditSink | undefined, req: { caller?: { person?: AuditPerson }, ip: string, url: string }, kind: string, event: string, outcome: string, shown: Array<{ studyInstanceUID?: string, patient: AuditPatient }>): Promise<void> {
  if (audit === undefined || shown.length === 0) return
  const user = auditRequester(req, kind)
  const path = req.url.split('?')[0]!
  const events = shown.map(({ studyInstanceUID, patient }) => ({
    event,
    outcome,
    patient: { ...(patient.bsn === undefined ? {} : { bsn: patient.bsn }), ...(patient.id === undefined ? {} : { id: patient.id }), ...(patient.issuer === undefined ? {} : { issuer: patient.issuer }), ...(patient.name === undefined ? {} : { name: patient.name }) },
    user,
    ...(studyInstanceUID === undefined ? {} : { studyInstanceUID }),
    details: { path }
  }))
  if (audit.recordAll !== undefined) await audit.recordAll(events)
  else for (const e of events) await audit.record(e)
}

/**
 * The trail's records of one import, the running node's (/api/imports) and a stopped node's
 * (`beeldnet node import`) alike: one 'store-received' record per study that received instances,
 * naming its patient and who imported. Written in one go (one fsync).
 */
export async function recordImported (audit: AuditSink | undefined, studies: Array<{ studyInstanceUID: string, stored: number, duplicates: number }>, studyRecord: (studyInstanceUID: string) => Promise<StudyRecord>, user: AuditPerson, details: Record<string, string>): Promise<void> {
  if (audit === undefined) return
  const events = []
  for (const study of studies) {
    if (study.stored + study.duplicates === 0) continue
    const { patient } = await studyRecord(study.studyInstanceUID)
    events.push({ event: 'store-received', outcome: `import: ${study.stored} stored, ${study.duplicates} duplicate(s)`, patient: auditPatient(patient), user, studyInstanceUID: study.studyInstanceUID, details })
  }
  if (events.length === 0) return
  if (audit.recordAll !== undefined) await audit.recordAll(events)
  else for (const e of events) await audit.record(e)
}
