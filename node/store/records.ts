/** What the level index keeps. Plain JSON: it is also what the HTTP listing returns. */

export interface PatientRecord {
  id: string
  issuer: string
  name: string
  bsn?: string
  birthDate: string
  sex: string
}

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

export interface InstanceRecord {
  studyInstanceUID: string
  seriesInstanceUID: string
  sopInstanceUID: string
  sopClassUID: string
  transferSyntaxUID: string
  part10: boolean
  number?: number
  rows?: number
  columns?: number
  frames: number
  isReport: boolean
  title?: string
  completionFlag?: string
  verificationFlag?: string
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
