import { createTextDecoder, type DicomTextDecoder } from './charset.ts'
import { readHeader, type Dataset, type ParsedHeader, type ReadHeaderInit } from './dataset-reader.ts'
import { DicomInvalidUidError, DicomMissingUidError, DicomTruncatedError } from '../errors.ts'
import { Tags, TransferSyntax, isReportSopClass, SopClass } from './tags.ts'
import { isValidBsn, isBsnIssuer } from './bsn.ts'
import { checkInflatesTo } from './inflated-source.ts'

export interface PatientIdentifier { id: string, issuer: string }

/** What the store indexes of one instance: the attributes QIDO-RS and C-FIND match on. */
export interface InstanceHeader {
  sopClassUID: string
  sopInstanceUID: string
  studyInstanceUID: string
  seriesInstanceUID: string
  transferSyntaxUID: string
  /** false for a bare dataset without preamble and File Meta (stored as received) */
  part10: boolean
  specificCharacterSet: string[]
  patient: {
    name: string
    id: string
    issuer: string
    /** Dutch citizen service number, when the dataset carries one under the BSN issuer */
    bsn?: string
    birthDate: string
    sex: string
  }
  /**
   * Other ids the dataset itself gives for its patient: its Other Patient IDs, and the ids a
   * reconciliation replaced (kept in its Original Attributes Sequence, PS3.3 C.12.1.1.9)
   */
  otherPatientIds: PatientIdentifier[]
  study: {
    date: string
    time: string
    accessionNumber: string
    description: string
    referringPhysician: string
    studyId: string
  }
  series: {
    modality: string
    number?: number
    description: string
    bodyPart: string
  }
  instance: {
    number?: number
    rows?: number
    columns?: number
    frames: number
    isReport: boolean
    /** title of a report (SR concept name or document title) */
    title?: string
    completionFlag?: string
    verificationFlag?: string
  }
}

// PS3.5 forbids leading zeros in components, but real vendors' files have them; since a UID is
// never used as a path, only digits and dots and the length are enforced.
const UID = /^[0-9]+(\.[0-9]+)*$/

export function isValidUid (value: string): boolean {
  return value.length > 0 && value.length <= 64 && UID.test(value)
}

/** Reads and checks the header of one instance file; throws a BeeldnetError for anything unusable. */
export function readInstanceHeader (path: string, init: ReadHeaderInit = {}): InstanceHeader {
  const parsed = readHeader(path, init)
  checkPixelData(path, parsed)
  const charsets = asciiValue(parsed.dataset, Tags.SpecificCharacterSet).split('\\').map((s) => s.trim())
  const text = new DatasetText(createTextDecoder(charsets.length === 1 && charsets[0] === '' ? [] : charsets))
  const ds = parsed.dataset
  const littleEndian = parsed.transferSyntaxUID !== TransferSyntax.ExplicitVRBigEndian
  const sopClassUID = requireUid(ds, Tags.SOPClassUID, 'SOP Class UID')
  const concept = ds.get(Tags.ConceptNameCodeSequence)?.items?.[0]
  return {
    sopClassUID,
    sopInstanceUID: requireUid(ds, Tags.SOPInstanceUID, 'SOP Instance UID'),
    studyInstanceUID: requireUid(ds, Tags.StudyInstanceUID, 'Study Instance UID'),
    seriesInstanceUID: requireUid(ds, Tags.SeriesInstanceUID, 'Series Instance UID'),
    transferSyntaxUID: parsed.transferSyntaxUID,
    part10: parsed.meta !== undefined,
    specificCharacterSet: charsets.filter((c, i) => c !== '' || i > 0),
    patient: {
      name: text.get(ds, Tags.PatientName, 'PN'),
      id: text.get(ds, Tags.PatientID, 'LO'),
      issuer: text.get(ds, Tags.IssuerOfPatientID, 'LO'),
      bsn: findBsn(ds, text),
      birthDate: asciiValue(ds, Tags.PatientBirthDate),
      sex: asciiValue(ds, Tags.PatientSex)
    },
    otherPatientIds: otherPatientIds(ds, text),
    study: {
      date: asciiValue(ds, Tags.StudyDate),
      time: asciiValue(ds, Tags.StudyTime),
      accessionNumber: text.get(ds, Tags.AccessionNumber, 'SH'),
      description: text.get(ds, Tags.StudyDescription, 'LO'),
      referringPhysician: text.get(ds, Tags.ReferringPhysicianName, 'PN'),
      studyId: text.get(ds, Tags.StudyID, 'SH')
    },
    series: {
      modality: asciiValue(ds, Tags.Modality),
      number: integerValue(ds, Tags.SeriesNumber),
      description: text.get(ds, Tags.SeriesDescription, 'LO'),
      bodyPart: asciiValue(ds, Tags.BodyPartExamined)
    },
    instance: {
      number: integerValue(ds, Tags.InstanceNumber),
      rows: integerValue(ds, Tags.Rows, littleEndian),
      columns: integerValue(ds, Tags.Columns, littleEndian),
      frames: integerValue(ds, Tags.NumberOfFrames) ?? 1,
      isReport: isReportSopClass(sopClassUID),
      title: emptyToUndefined(sopClassUID === SopClass.EncapsulatedPdf || sopClassUID === SopClass.EncapsulatedCda
        ? text.get(ds, Tags.DocumentTitle, 'ST')
        : concept !== undefined ? text.get(concept, Tags.CodeMeaning, 'LO') : ''),
      completionFlag: emptyToUndefined(asciiValue(ds, Tags.CompletionFlag)),
      verificationFlag: emptyToUndefined(asciiValue(ds, Tags.VerificationFlag))
    }
  }
}

/** Decodes text values with the dataset's character set; values too large to keep read as empty. */
class DatasetText {
  private readonly decoder: DicomTextDecoder
  constructor (decoder: DicomTextDecoder) { this.decoder = decoder }

  get (ds: Dataset, t: number, vr: string): string {
    const value = ds.get(t)?.value
    return value === undefined ? '' : this.decoder.decode(value, vr)
  }
}

function asciiValue (ds: Dataset, t: number): string {
  const value = ds.get(t)?.value
  return value === undefined ? '' : value.toString('latin1').replace(/^[\0 ]+|[\0 ]+$/g, '')
}

function emptyToUndefined (value: string): string | undefined {
  return value === '' ? undefined : value
}

function integerValue (ds: Dataset, t: number, littleEndian = true): number | undefined {
  const element = ds.get(t)
  const value = element?.value
  if (element === undefined || value === undefined || value.length === 0) return undefined
  if (element.vr === 'US') {
    if (value.length < 2) return undefined
    return littleEndian ? value.readUInt16LE(0) : value.readUInt16BE(0)
  }
  const parsed = Number.parseInt(value.toString('latin1').split('\\')[0]?.trim() ?? '', 10)
  return Number.isFinite(parsed) ? parsed : undefined
}

function requireUid (ds: Dataset, t: number, name: string): string {
  const value = asciiValue(ds, t)
  if (value === '') throw new DicomMissingUidError(name)
  if (!isValidUid(value)) throw new DicomInvalidUidError(name, value)
  return value
}

/** A BSN is the patient id (or one of the other ids) issued by the Dutch BSN issuer. */
function findBsn (ds: Dataset, text: DatasetText): string | undefined {
  const candidates: Dataset[] = [ds, ...(ds.get(Tags.OtherPatientIDsSequence)?.items ?? [])]
  for (const item of candidates) {
    const id = text.get(item, Tags.PatientID, 'LO')
    const issuer = text.get(item, Tags.IssuerOfPatientID, 'LO')
    const universal = item.get(Tags.IssuerOfPatientIDQualifiersSequence)?.items?.[0]
    const universalId = universal === undefined ? '' : asciiValue(universal, Tags.UniversalEntityID)
    if ((isBsnIssuer(issuer) || isBsnIssuer(universalId)) && isValidBsn(id)) return id
  }
  return undefined
}

const OriginalAttributesSequence = 0x04000561
const ModifiedAttributesSequence = 0x04000550

function otherPatientIds (ds: Dataset, text: DatasetText): PatientIdentifier[] {
  const items = [
    ...(ds.get(Tags.OtherPatientIDsSequence)?.items ?? []),
    ...(ds.get(OriginalAttributesSequence)?.items ?? []).flatMap((original) => original.get(ModifiedAttributesSequence)?.items ?? [])
  ]
  return items
    .map((item) => ({ id: text.get(item, Tags.PatientID, 'LO'), issuer: text.get(item, Tags.IssuerOfPatientID, 'LO') }))
    .filter((other) => other.id !== '')
}

/** Uncompressed pixel data must fit in the file; a short file was cut off in transit or on disc. */
function checkPixelData (path: string, parsed: ParsedHeader): void {
  if (parsed.pixelDataOffset === undefined || parsed.pixelDataLength === undefined) return
  if (parsed.deflated) {
    checkInflatesTo(path, parsed.datasetOffset, parsed.pixelDataOffset + parsed.pixelDataLength)
  } else if (parsed.pixelDataOffset + parsed.pixelDataLength > parsed.fileSize) {
    throw new DicomTruncatedError(`pixel data needs ${parsed.pixelDataLength} bytes, the file has ${parsed.fileSize - parsed.pixelDataOffset}`)
  }
}
