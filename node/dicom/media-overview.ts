import { isBeeldnetError } from '../../protocol/errors.ts'
import { isBsnIssuer, isValidBsn } from './bsn.ts'
import { createTextDecoder, type DicomTextDecoder } from './charset.ts'
import type { Dataset } from './dataset-reader.ts'
import { fileIdOf, mediaName } from './dicomdir.ts'
import { Tags, tag } from './tags.ts'

/*
 * What is on a patient's DVD, from its DICOMDIR's PATIENT, STUDY, SERIES and instance records, so
 * a clinician can pick the studies to import before a file is sent. The records are taken in the
 * order the DICOMDIR holds them (each followed by its lower-level records, as dcmtk and every
 * writer we met writes them); the node checks each file's own header against what was picked, so
 * a DICOMDIR that says otherwise can leave a file out but never bring in an unpicked study.
 */

const DirectoryRecordType = tag(0x0004, 0x1430)

export interface MediaStudy {
  studyInstanceUID: string
  /** YYYYMMDD and HHMMSS as the record gives them ('' when absent) */
  date: string
  time: string
  description: string
  accessionNumber: string
  modalities: string[]
  series: number
  /** instance records (images, reports) the DICOMDIR lists for it */
  instances: number
  /** of those, files found on the medium (set by the plan) */
  files: number
}

export interface MediaPatient {
  name: string
  id: string
  issuer: string
  birthDate: string
  sex: string
  /** when the record carries one under the BSN issuer */
  bsn?: string
  studies: MediaStudy[]
}

/** A DICOMDIR's patients and studies, and the study of each file it references. */
export interface DicomdirListing {
  patients: MediaPatient[]
  /** Study Instance UID by Referenced File ID (components as `mediaName` gives them, joined by '/') */
  studyOfFile: Map<string, string>
}

/** The key `studyOfFile` is looked up by. */
export function fileKey (components: string[]): string {
  return components.map(mediaName).join('/')
}

export function describeDicomdir (records: Dataset[]): DicomdirListing {
  const listing: DicomdirListing = { patients: [], studyOfFile: new Map() }
  let patient: MediaPatient | undefined
  let study: MediaStudy | undefined
  let series: Set<string> | undefined
  for (const record of records) {
    const type = text(record, DirectoryRecordType).toUpperCase()
    if (type === 'PATIENT') {
      patient = patientOf(record)
      listing.patients.push(patient)
      study = undefined
      series = undefined
    } else if (type === 'STUDY') {
      const uid = text(record, Tags.StudyInstanceUID)
      if (patient === undefined || uid === '') { study = undefined; continue }
      const t = decoderOf(record)
      study = {
        studyInstanceUID: uid,
        date: text(record, Tags.StudyDate),
        time: text(record, Tags.StudyTime),
        description: decoded(t, record, Tags.StudyDescription, 'LO'),
        accessionNumber: decoded(t, record, Tags.AccessionNumber, 'SH'),
        modalities: [],
        series: 0,
        instances: 0,
        files: 0
      }
      patient.studies.push(study)
      series = new Set()
    } else if (type === 'SERIES') {
      if (study === undefined || series === undefined) continue
      const modality = text(record, Tags.Modality)
      if (modality !== '' && !study.modalities.includes(modality)) study.modalities.push(modality)
      series.add(text(record, Tags.SeriesInstanceUID) || `#${series.size}`)
      study.series = series.size
    } else {
      const id = fileIdOf(record)
      if (id === undefined || id.length === 0 || study === undefined || series === undefined || series.size === 0) continue
      study.instances++
      listing.studyOfFile.set(fileKey(id), study.studyInstanceUID)
    }
  }
  return listing
}

/** The patients of several DICOMDIRs as one list: a patient (id and issuer) and a study (UID) once each. */
export function mergePatients (lists: MediaPatient[][]): MediaPatient[] {
  const byKey = new Map<string, MediaPatient>()
  for (const p of lists.flat()) {
    const key = `${p.issuer}\0${p.id}`
    const held = byKey.get(key)
    if (held === undefined) { byKey.set(key, { ...p, studies: p.studies.map((s) => ({ ...s, modalities: [...s.modalities] })) }); continue }
    for (const s of p.studies) {
      const same = held.studies.find((x) => x.studyInstanceUID === s.studyInstanceUID)
      if (same === undefined) { held.studies.push({ ...s, modalities: [...s.modalities] }); continue }
      same.instances += s.instances
      same.series = Math.max(same.series, s.series)
      for (const m of s.modalities) if (!same.modalities.includes(m)) same.modalities.push(m)
    }
  }
  return [...byKey.values()]
}

function patientOf (record: Dataset): MediaPatient {
  const t = decoderOf(record)
  const patient: MediaPatient = {
    name: decoded(t, record, Tags.PatientName, 'PN'),
    id: decoded(t, record, Tags.PatientID, 'LO'),
    issuer: decoded(t, record, Tags.IssuerOfPatientID, 'LO'),
    birthDate: text(record, Tags.PatientBirthDate),
    sex: text(record, Tags.PatientSex),
    studies: []
  }
  // A BSN is the patient id, or one of the other ids, issued by the Dutch BSN issuer.
  for (const item of [record, ...(record.get(Tags.OtherPatientIDsSequence)?.items ?? [])]) {
    const id = decoded(t, item, Tags.PatientID, 'LO')
    if (isBsnIssuer(decoded(t, item, Tags.IssuerOfPatientID, 'LO')) && isValidBsn(id)) { patient.bsn = id; break }
  }
  return patient
}

/** Each record carries its own Specific Character Set; one we cannot map reads as Latin-1 rather than losing the record. */
function decoderOf (record: Dataset): DicomTextDecoder {
  const terms = text(record, Tags.SpecificCharacterSet).split('\\').map((s) => s.trim())
  try {
    return createTextDecoder(terms.length === 1 && terms[0] === '' ? [] : terms)
  } catch (err) {
    if (!isBeeldnetError(err)) throw err
    return createTextDecoder(['ISO_IR 100'])
  }
}

function decoded (decoder: DicomTextDecoder, ds: Dataset, t: number, vr: string): string {
  const value = ds.get(t)?.value
  return value === undefined ? '' : decoder.decode(value, vr).trim()
}

function text (ds: Dataset, t: number): string {
  const value = ds.get(t)?.value
  return value === undefined ? '' : value.toString('latin1').replace(/^[\0 ]+|[\0 ]+$/g, '')
}
