import type { InstanceHeader, PatientIdentifier } from '../dicom/instance-header.ts'
import type { InstanceRecord, StudyRecord } from './records.ts'

/*
 * What the store does with a copy of an instance it already holds (or already has in the same
 * batch), as PACSes expect: they re-send, and re-send in other transfer syntaxes.
 *
 * The rule for "the same instance": same bytes, or the same SOP class, study, series, patient (ID
 * and issuer) and the same rows, columns and number of frames. That is what the header reader
 * gives without touching pixel data; another transfer syntax (or a re-encode with other header
 * details) passes it. Anything else under one SOP Instance UID is a conflict.
 *
 * A copy that another node or PACS reconciled to its own patient id (IHE IRWF: the held id kept
 * among its Other Patient IDs or in its Original Attributes) is the same instance too: a PACS that
 * got a study from this node re-sends it under its own id, and must not be told it conflicts.
 */

/**
 * `keep`: the stored copy stays and the sender is told success; a conflict is refused.
 * `replace-if-changed`: a copy with other bytes replaces the stored one (within its study and
 *   patient); the same bytes are kept.
 * `refuse`: any copy with other bytes is refused; the same bytes again are success.
 */
export const DUPLICATE_POLICIES = ['keep', 'replace-if-changed', 'refuse'] as const
export type DuplicatePolicy = typeof DUPLICATE_POLICIES[number]

/** What one arriving copy became: the stored copy kept, the stored copy replaced, or the copy refused. */
export type DuplicateAction = 'kept' | 'replaced' | 'refused'

export interface DuplicateDecision {
  action: DuplicateAction
  /** 'identical' (same bytes), 'same-instance' (other encoding) or 'conflict' */
  kind: 'identical' | 'same-instance' | 'conflict'
  /** what differs, in words, for a conflict or a refusal */
  why?: string
}

/** One held copy as the comparison needs it: the indexed record (or a copy staged earlier in the batch). */
export interface HeldCopy {
  record: Pick<InstanceRecord, 'sha256' | 'sopClassUID' | 'studyInstanceUID' | 'seriesInstanceUID' | 'rows' | 'columns' | 'frames' | 'transferSyntaxUID'>
  patient: Pick<StudyRecord['patient'], 'id' | 'issuer'>
}

/** What differs between a held copy and an arriving one, or undefined when they are the same instance. */
export function differences (held: HeldCopy, header: InstanceHeader): string | undefined {
  const h = held.record
  const i = header.instance
  const diffs: string[] = []
  if (h.sopClassUID !== header.sopClassUID) diffs.push(`SOP class ${header.sopClassUID}, not ${h.sopClassUID}`)
  if (h.studyInstanceUID !== header.studyInstanceUID) diffs.push(`study ${header.studyInstanceUID}, not ${h.studyInstanceUID}`)
  if (h.seriesInstanceUID !== header.seriesInstanceUID) diffs.push(`series ${header.seriesInstanceUID}, not ${h.seriesInstanceUID}`)
  if (!samePatient(held.patient, header.patient) && !header.otherPatientIds.some((other) => samePatient(held.patient, other))) diffs.push('another patient')
  if (h.rows !== i.rows || h.columns !== i.columns || h.frames !== i.frames) diffs.push(`${i.rows ?? '-'}x${i.columns ?? '-'}x${i.frames} pixels, not ${h.rows ?? '-'}x${h.columns ?? '-'}x${h.frames}`)
  return diffs.length === 0 ? undefined : diffs.join('; ')
}

export function decideDuplicate (policy: DuplicatePolicy, held: HeldCopy, header: InstanceHeader, sha256: string): DuplicateDecision {
  if (held.record.sha256 === sha256) return { action: 'kept', kind: 'identical' }
  const why = differences(held, header)
  const kind = why === undefined ? 'same-instance' : 'conflict'
  if (policy === 'refuse') return { action: 'refused', kind, why: why ?? `the same instance in another encoding (${header.transferSyntaxUID}, stored as ${held.record.transferSyntaxUID}); store.duplicates is refuse` }
  // A reconciled copy is never stored over the held one: the study keeps the patient id it came with.
  if (kind === 'same-instance' && !samePatient(held.patient, header.patient)) {
    return { action: 'kept', kind, why: `a copy of the held instance reconciled to patient ${header.patient.id} (${header.patient.issuer})` }
  }
  if (policy === 'keep') return kind === 'same-instance' ? { action: 'kept', kind } : { action: 'refused', kind, why: `${why!}; store.duplicates is keep` }
  // replace-if-changed: a replacement stays in its study and with its patient, so one index batch can make it.
  if (held.record.studyInstanceUID !== header.studyInstanceUID) return { action: 'refused', kind, why: `${why!}; a replacement cannot move an instance to another study` }
  if (!samePatient(held.patient, header.patient)) return { action: 'refused', kind, why: `${why!}; a replacement cannot change the study's patient` }
  return { action: 'replaced', kind, ...(why === undefined ? {} : { why }) }
}

function samePatient (a: PatientIdentifier, b: PatientIdentifier): boolean {
  return a.id === b.id && a.issuer === b.issuer
}
