import type { InstanceHeader } from '../dicom/instance-header.ts'

/** What the level index keeps. Plain JSON: it is also what the HTTP listing returns. */

export type PatientRecord = InstanceHeader['patient']
type InstanceAttributes = InstanceHeader['instance']

export interface StudyRecord {
  studyInstanceUID: string
  patient: PatientRecord
  date: string
  time: string
  accessionNumber: string
  description: string
  referringPhysician: string
  studyId: string
  modalities: string[]
  numberOfSeries: number
  numberOfInstances: number
  numberOfReports: number
  /** bytes of all instance files */
  size: number
  /** first and latest time this node committed instances of the study (ISO 8601) */
  receivedAt: string
  updatedAt: string
}

export interface SeriesRecord {
  studyInstanceUID: string
  seriesInstanceUID: string
  modality: string
  number?: number
  description: string
  bodyPart: string
  numberOfInstances: number
  size: number
}

/** The instance's own attributes as read from its header, plus where its bytes are. */
export interface InstanceRecord extends InstanceAttributes {
  studyInstanceUID: string
  seriesInstanceUID: string
  sopInstanceUID: string
  sopClassUID: string
  transferSyntaxUID: string
  part10: boolean
  sha256: string
  size: number
  specificCharacterSet: string[]
}

/** Where a SOP instance lives: its UID must be unique across the whole store. */
export interface SopLocation {
  studyInstanceUID: string
  seriesInstanceUID: string
  sha256: string
}

export interface HoldRecord {
  reason: string
  since: string
}
