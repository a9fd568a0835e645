import type { InstanceRecord, PatientRecord, SeriesRecord, StudyRecord } from '../store/records.ts'
import type { StudyEntries } from '../store/study-index.ts'
import { byNumberThenUid } from '../store/study-export.ts'

/*
 * Where each instance goes on an IHE PDI medium: DICOM/PAT00001/STU00001/SER00001/IMG00001, one
 * folder per patient, study and series. PS3.10 8.2 and PS3.11's general purpose profiles allow
 * File ID components of at most 8 characters from A-Z 0-9 _ (no extension), so the names are
 * counters, never UIDs or names: nothing of the patient shows in a path.
 */

export interface MediumInstance {
  /** Referenced File ID components, e.g. ['DICOM', 'PAT00001', 'STU00001', 'SER00001', 'IMG00001'] */
  fileId: string[]
  instance: InstanceRecord
}

export interface MediumSeries { series: SeriesRecord, instances: MediumInstance[] }
export interface MediumStudy { study: StudyRecord, series: MediumSeries[] }
export interface MediumPatient { patient: PatientRecord, studies: MediumStudy[] }

export interface MediumPlan {
  patients: MediumPatient[]
  /** every instance, in the order of the tree (patient, study, series, instance) */
  instances: MediumInstance[]
}

export const DICOM_FOLDER = 'DICOM'

/** One File ID component: the prefix shortened when the number needs more than its digits (8 characters at most). */
export function fileIdComponent (prefix: string, n: number): string {
  const digits = String(n)
  if (digits.length > 8) throw new RangeError(`${n} does not fit a File ID component`)
  const kept = prefix.slice(0, Math.max(0, 8 - Math.max(digits.length, 8 - prefix.length)))
  return kept + digits.padStart(8 - kept.length, '0')
}

/** A valid File ID component (PS3.10 8.2): 1-8 of A-Z, 0-9 and _. */
export function isFileIdComponent (component: string): boolean {
  return /^[A-Z0-9_]{1,8}$/.test(component)
}

/**
 * The medium's tree: patients in the order their first study was given (studies of one patient id
 * and issuer under one PATIENT), studies as given, series and instances by number then UID.
 */
export function planMedium (studies: StudyEntries[]): MediumPlan {
  const plan: MediumPlan = { patients: [], instances: [] }
  const byPatient = new Map<string, MediumPatient>()
  const seen = new Set<string>()
  for (const entries of studies) {
    if (seen.has(entries.study.studyInstanceUID)) continue
    seen.add(entries.study.studyInstanceUID)
    const { patient } = entries.study
    const key = `${patient.issuer}\u0000${patient.id}`
    let medium = byPatient.get(key)
    if (medium === undefined) {
      medium = { patient, studies: [] }
      byPatient.set(key, medium)
      plan.patients.push(medium)
    }
    const pat = fileIdComponent('PAT', plan.patients.indexOf(medium) + 1)
    const stu = fileIdComponent('STU', medium.studies.length + 1)
    const study: MediumStudy = { study: entries.study, series: [] }
    for (const series of [...entries.series].sort(byNumberThenUid)) {
      const ser = fileIdComponent('SER', study.series.length + 1)
      const members = entries.instances.filter((i) => i.seriesInstanceUID === series.seriesInstanceUID).sort(byNumberThenUid)
      if (members.length === 0) continue
      const instances = members.map((instance, i) => ({
        fileId: [DICOM_FOLDER, pat, stu, ser, fileIdComponent(instance.isReport ? 'DOC' : 'IMG', i + 1)],
        instance
      }))
      study.series.push({ series, instances })
      plan.instances.push(...instances)
    }
    medium.studies.push(study)
  }
  return plan
}
