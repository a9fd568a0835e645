import type { Dataset, ParsedHeader } from '../dicom/dataset-reader.ts'
import { elementHeader, encodeElement } from '../dicom/element-writer.ts'
import { SopClass, Tags, tag } from '../dicom/tags.ts'
import type { InstanceRecord } from '../store/records.ts'
import type { DirectoryRecord, RecordKey } from './dicomdir-writer.ts'

/*
 * The keys of each DICOMDIR record (PS3.3 F.5), taken from an instance's own header as dcmtk's
 * dcmmkdir takes them: raw value bytes with the instance's Specific Character Set, so names in any
 * repertoire reach the record unchanged and nothing is transcoded. A type 1 key the instance lacks
 * gets a made-up value, as `dcmmkdir +I` does, so the DICOMDIR stays valid.
 */

const ReferencedFileID = tag(0x0004, 0x1500)
const ReferencedSOPClassUIDInFile = tag(0x0004, 0x1510)
const ReferencedSOPInstanceUIDInFile = tag(0x0004, 0x1511)
const ReferencedTransferSyntaxUIDInFile = tag(0x0004, 0x1512)
const ContentTime = tag(0x0008, 0x0033)
const VerificationDateTime = tag(0x0040, 0xA030)
const HL7InstanceIdentifier = tag(0x0040, 0xE001)
const VerifyingObserverSequence = tag(0x0040, 0xA073)
const PresentationLabel = tag(0x0070, 0x0080)
const PresentationDescription = tag(0x0070, 0x0081)
const PresentationCreationDate = tag(0x0070, 0x0082)
const PresentationCreationTime = tag(0x0070, 0x0083)
const PresentationCreatorsName = tag(0x0070, 0x0084)

const TEXT_VRS = new Set(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'LT', 'PN', 'SH', 'ST', 'TM', 'UC', 'UI', 'UR', 'UT'])

/** Copies an element's raw value under the record's VR; an absent or empty one becomes `fallback` (type 1) or stays empty (type 2). */
function copy (ds: Dataset, t: number, vr: string, fallback?: string): RecordKey {
  const raw = ds.get(t)?.value
  const blank = raw === undefined || raw.every((b) => b === 0x20 || b === 0)
  if (blank && fallback !== undefined) return { tag: t, bytes: encodeElement(t, vr, fallback, { encoding: 'latin1' }) }
  return { tag: t, bytes: encodeElement(t, vr, blank ? Buffer.alloc(0) : raw) }
}

/** Copies a sequence, text values only (a code sequence has nothing else), with explicit lengths. */
function copySequence (ds: Dataset, t: number): RecordKey {
  const items = (ds.get(t)?.items ?? []).map((item) => {
    const content = Buffer.concat([...item.entries()].sort(([a], [b]) => a - b).flatMap(([et, el]) => {
      if (el.vr === 'SQ') return [copySequence(item, et).bytes]
      return el.value !== undefined && TEXT_VRS.has(el.vr) ? [encodeElement(et, el.vr, el.value)] : []
    }))
    const head = Buffer.alloc(8)
    head.writeUInt16LE(0xFFFE, 0)
    head.writeUInt16LE(0xE000, 2)
    head.writeUInt32LE(content.length, 4)
    return Buffer.concat([head, content])
  })
  const body = Buffer.concat(items)
  return { tag: t, bytes: Buffer.concat([elementHeader(t, 'SQ', body.length), body]) }
}

/** The instance's Specific Character Set, when it has one: every key copied from it is in that repertoire. */
function charset (ds: Dataset): RecordKey[] {
  const raw = ds.get(Tags.SpecificCharacterSet)?.value
  return raw === undefined || raw.every((b) => b === 0x20 || b === 0) ? [] : [copy(ds, Tags.SpecificCharacterSet, 'CS')]
}

export function patientRecord (header: ParsedHeader, children: DirectoryRecord[]): DirectoryRecord {
  const ds = header.dataset
  return {
    type: 'PATIENT',
    keys: [...charset(ds), copy(ds, Tags.PatientName, 'PN'), copy(ds, Tags.PatientID, 'LO', 'UNKNOWN'), copy(ds, Tags.IssuerOfPatientID, 'LO'),
      copy(ds, Tags.PatientBirthDate, 'DA'), copy(ds, Tags.PatientSex, 'CS')],
    children
  }
}

/** `ordinal`: the study's place on the medium, for a Study ID the instance lacks. */
export function studyRecord (header: ParsedHeader, ordinal: number, children: DirectoryRecord[]): DirectoryRecord {
  const ds = header.dataset
  return {
    type: 'STUDY',
    keys: [...charset(ds), copy(ds, Tags.StudyDate, 'DA', '19000101'), copy(ds, Tags.StudyTime, 'TM', '000000'),
      copy(ds, Tags.AccessionNumber, 'SH'), copy(ds, Tags.StudyDescription, 'LO'), copy(ds, Tags.StudyInstanceUID, 'UI'),
      copy(ds, Tags.StudyID, 'SH', `S${ordinal}`)],
    children
  }
}

export function seriesRecord (header: ParsedHeader, ordinal: number, children: DirectoryRecord[]): DirectoryRecord {
  const ds = header.dataset
  return {
    type: 'SERIES',
    keys: [...charset(ds), copy(ds, Tags.Modality, 'CS', 'OT'), copy(ds, Tags.SeriesDescription, 'LO'), copy(ds, Tags.SeriesInstanceUID, 'UI'),
      copy(ds, Tags.SeriesNumber, 'IS', String(ordinal))],
    children
  }
}

/** The record type PS3.3 F.4 gives the instance's SOP class; any other class is an IMAGE, as most readers expect. */
export function recordType (sopClassUID: string): string {
  if (sopClassUID === '1.2.840.10008.5.1.4.1.1.88.59') return 'KEY OBJECT DOC'
  if (sopClassUID.startsWith('1.2.840.10008.5.1.4.1.1.88.')) return 'SR DOCUMENT'
  if (sopClassUID === SopClass.EncapsulatedPdf || sopClassUID === SopClass.EncapsulatedCda || sopClassUID.startsWith('1.2.840.10008.5.1.4.1.1.104.')) return 'ENCAP DOC'
  if (sopClassUID.startsWith('1.2.840.10008.5.1.4.1.1.11.')) return 'PRESENTATION'
  if (sopClassUID.startsWith('1.2.840.10008.5.1.4.1.1.9.')) return 'WAVEFORM'
  return 'IMAGE'
}

/**
 * The record of one instance's file: where it is (`fileId`), what it is (SOP class, instance and
 * transfer syntax as its File Meta names them) and the keys of its record type. `ordinal`: its
 * place in the series, for an Instance Number it lacks.
 */
export function instanceRecord (header: ParsedHeader, instance: InstanceRecord, fileId: string[], ordinal: number): DirectoryRecord {
  const ds = header.dataset
  const type = recordType(instance.sopClassUID)
  const keys: RecordKey[] = [
    { tag: ReferencedFileID, bytes: encodeElement(ReferencedFileID, 'CS', fileId.join('\\'), { encoding: 'latin1' }) },
    { tag: ReferencedSOPClassUIDInFile, bytes: encodeElement(ReferencedSOPClassUIDInFile, 'UI', instance.sopClassUID, { encoding: 'latin1' }) },
    { tag: ReferencedSOPInstanceUIDInFile, bytes: encodeElement(ReferencedSOPInstanceUIDInFile, 'UI', instance.sopInstanceUID, { encoding: 'latin1' }) },
    { tag: ReferencedTransferSyntaxUIDInFile, bytes: encodeElement(ReferencedTransferSyntaxUIDInFile, 'UI', instance.transferSyntaxUID, { encoding: 'latin1' }) },
    ...charset(ds),
    copy(ds, Tags.InstanceNumber, 'IS', String(ordinal))
  ]
  // Content Date and Time are type 1 for reports and key objects: the study's date stands in for a missing one.
  const studyDate = ds.get(Tags.StudyDate)?.value?.toString('latin1').trim() ?? ''
  const contentDate = copy(ds, Tags.ContentDate, 'DA', type === 'SR DOCUMENT' || type === 'KEY OBJECT DOC' ? (studyDate === '' ? '19000101' : studyDate) : undefined)
  const contentTime = copy(ds, ContentTime, 'TM', type === 'SR DOCUMENT' || type === 'KEY OBJECT DOC' ? '000000' : undefined)
  if (type === 'SR DOCUMENT') {
    keys.push(contentDate, contentTime, copySequence(ds, Tags.ConceptNameCodeSequence),
      copy(ds, Tags.CompletionFlag, 'CS', 'PARTIAL'), copy(ds, Tags.VerificationFlag, 'CS', 'UNVERIFIED'))
    // Verification DateTime (1C): the latest verifying observer's, when the report is verified.
    const verified = ds.get(VerifyingObserverSequence)?.items?.at(-1)?.get(VerificationDateTime)?.value
    if (verified !== undefined && verified.length > 0) keys.push({ tag: VerificationDateTime, bytes: encodeElement(VerificationDateTime, 'DT', verified) })
  } else if (type === 'KEY OBJECT DOC') {
    keys.push(contentDate, contentTime, copySequence(ds, Tags.ConceptNameCodeSequence))
  } else if (type === 'ENCAP DOC') {
    keys.push(contentDate, contentTime, copy(ds, Tags.DocumentTitle, 'ST'), copySequence(ds, Tags.ConceptNameCodeSequence),
      copy(ds, Tags.MIMETypeOfEncapsulatedDocument, 'LO', instance.sopClassUID === SopClass.EncapsulatedCda ? 'text/xml' : 'application/pdf'))
    // HL7 Instance Identifier (1C): required for a CDA document, which carries it.
    if (ds.get(HL7InstanceIdentifier)?.value !== undefined) keys.push(copy(ds, HL7InstanceIdentifier, 'ST'))
  } else if (type === 'PRESENTATION') {
    keys.push(copy(ds, PresentationLabel, 'CS', 'PRESENTATION'), copy(ds, PresentationDescription, 'LO'),
      copy(ds, PresentationCreationDate, 'DA', '19000101'), copy(ds, PresentationCreationTime, 'TM', '000000'), copy(ds, PresentationCreatorsName, 'PN'))
  } else if (type === 'WAVEFORM') {
    keys.push(contentDate, contentTime)
  }
  return { type, keys, children: [] }
}
