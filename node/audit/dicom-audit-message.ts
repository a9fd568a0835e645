import type { AuditPerson, AuditRecord } from './audit-log.ts'

/*
 * An audit record as a DICOM audit message (PS3.15 A.5, the RFC 3881 / IHE ATNA XML), the form a
 * hospital's audit repository takes: event, who, from where, which patient and study.
 */

interface Code { code: string, system: string, meaning: string }

const dcm = (code: string, meaning: string): Code => ({ code, system: 'DCM', meaning })

/** Event ID and action code per event of the trail (PS3.15 A.5.3, codes from PS3.16 CID 400). */
const EVENTS: Record<string, { id: Code, action: 'C' | 'R' | 'U' | 'D' | 'E' }> = {
  query: { id: dcm('110112', 'Query'), action: 'E' },
  view: { id: dcm('110103', 'DICOM Instances Accessed'), action: 'R' },
  send: { id: dcm('110104', 'DICOM Instances Transferred'), action: 'R' },
  receive: { id: dcm('110104', 'DICOM Instances Transferred'), action: 'C' },
  'pull-request': { id: dcm('110102', 'Begin Transferring DICOM Instances'), action: 'E' },
  'export-to-pacs': { id: dcm('110104', 'DICOM Instances Transferred'), action: 'R' },
  reconciliation: { id: dcm('110110', 'Patient Record'), action: 'U' },
  'audit-read': { id: dcm('110101', 'Audit Log Used'), action: 'R' },
  'store-received': { id: dcm('110107', 'Import'), action: 'C' },
  export: { id: dcm('110106', 'Export'), action: 'R' },
  receipt: { id: dcm('110104', 'DICOM Instances Transferred'), action: 'R' },
  'pull-decision': { id: dcm('110102', 'Begin Transferring DICOM Instances'), action: 'E' }
}

// An outcome is words ('failed: BEELDNET_ERR_…', 'refused (conflict)'): its first word says whether the action failed.
const FAILED_OUTCOMES = new Set(['refused', 'held', 'failed', 'declined', 'cancelled', 'aborted'])
const failed = (outcome: string): boolean => FAILED_OUTCOMES.has(outcome.split(/[\s:(]/, 1)[0]!.toLowerCase())
const BSN_OID = '2.16.840.1.113883.2.4.6.3'

const xml = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!)
const code = (tag: string, c: Code): string => `<${tag} csd-code="${xml(c.code)}" codeSystemName="${xml(c.system)}" originalText="${xml(c.meaning)}"/>`

function participant (person: AuditPerson, requestor: boolean): string {
  const id = person.uzi ?? person.system ?? person.name ?? 'unknown'
  const name = person.name === undefined ? '' : ` UserName="${xml(person.name)}"`
  return `<ActiveParticipant UserID="${xml(id)}"${name} UserIsRequestor="${requestor}"/>`
}

export function dicomAuditMessage (record: AuditRecord, source: { id: string, nodeName: string }): string {
  const event = EVENTS[record.event] ?? { id: dcm('110100', 'Application Activity'), action: 'E' as const }
  const outcome = failed(record.outcome) ? 4 : 0
  const parts = [
    '<AuditMessage>',
    `<EventIdentification EventActionCode="${event.action}" EventDateTime="${xml(record.time)}" EventOutcomeIndicator="${outcome}">${code('EventID', event.id)}<EventOutcomeDescription>${xml(record.outcome)}</EventOutcomeDescription></EventIdentification>`,
    participant(record.user, record.responsible === undefined),
    ...(record.responsible === undefined ? [] : [participant(record.responsible, true)]),
    ...(record.institution === undefined ? [] : [`<ActiveParticipant UserID="URA ${xml(record.institution.ura)}"${record.institution.name === undefined ? '' : ` UserName="${xml(record.institution.name)}"`} UserIsRequestor="false"/>`]),
    `<AuditSourceIdentification AuditSourceID="${xml(source.id)}" AuditEnterpriseSiteID="${xml(source.nodeName)}"/>`
  ]
  const patient = record.patient
  if (patient !== undefined && (patient.bsn !== undefined || patient.id !== undefined)) {
    const id = patient.bsn !== undefined ? `${patient.bsn}^^^&${BSN_OID}&ISO` : `${patient.id}^^^${patient.issuer ?? ''}`
    parts.push(`<ParticipantObjectIdentification ParticipantObjectID="${xml(id)}" ParticipantObjectTypeCode="1" ParticipantObjectTypeCodeRole="1">${code('ParticipantObjectIDTypeCode', { code: '2', system: 'RFC-3881', meaning: 'Patient Number' })}${patient.name === undefined ? '' : `<ParticipantObjectName>${xml(patient.name)}</ParticipantObjectName>`}</ParticipantObjectIdentification>`)
  }
  if (record.studyInstanceUID !== undefined) {
    parts.push(`<ParticipantObjectIdentification ParticipantObjectID="${xml(record.studyInstanceUID)}" ParticipantObjectTypeCode="2" ParticipantObjectTypeCodeRole="3">${code('ParticipantObjectIDTypeCode', dcm('110180', 'Study Instance UID'))}</ParticipantObjectIdentification>`)
  }
  parts.push('</AuditMessage>')
  return parts.join('')
}

/**
 * One syslog message (RFC 5424: facility authpriv, severity notice; MSGID as IHE ATNA asks; a BOM
 * before the UTF-8 XML) framed by octet counting (RFC 6587) for a TCP collector.
 */
export function syslogFrame (record: AuditRecord, source: { id: string, nodeName: string, hostname: string }): Buffer {
  const header = `<85>1 ${record.time} ${source.hostname} beeldnet ${process.pid} IHE+RFC-3881 - `
  const message = Buffer.concat([Buffer.from(header, 'utf8'), Buffer.from([0xEF, 0xBB, 0xBF]), Buffer.from(dicomAuditMessage(record, source), 'utf8')])
  return Buffer.concat([Buffer.from(`${message.length} `, 'latin1'), message])
}
