/** Tags as one 32-bit number (group << 16 | element), so they can key a Map. */
export function tag (group: number, element: number): number {
  return ((group << 16) | element) >>> 0
}

export const Tags = {
  MediaStorageSOPInstanceUID: tag(0x0002, 0x0003),
  TransferSyntaxUID: tag(0x0002, 0x0010),
  SpecificCharacterSet: tag(0x0008, 0x0005),
  SOPClassUID: tag(0x0008, 0x0016),
  SOPInstanceUID: tag(0x0008, 0x0018),
  StudyDate: tag(0x0008, 0x0020),
  ContentDate: tag(0x0008, 0x0023),
  StudyTime: tag(0x0008, 0x0030),
  AccessionNumber: tag(0x0008, 0x0050),
  Modality: tag(0x0008, 0x0060),
  ReferringPhysicianName: tag(0x0008, 0x0090),
  CodeMeaning: tag(0x0008, 0x0104),
  StudyDescription: tag(0x0008, 0x1030),
  SeriesDescription: tag(0x0008, 0x103E),
  PatientName: tag(0x0010, 0x0010),
  PatientID: tag(0x0010, 0x0020),
  IssuerOfPatientID: tag(0x0010, 0x0021),
  TypeOfPatientID: tag(0x0010, 0x0022),
  IssuerOfPatientIDQualifiersSequence: tag(0x0010, 0x0024),
  PatientBirthDate: tag(0x0010, 0x0030),
  PatientSex: tag(0x0010, 0x0040),
  OtherPatientIDsSequence: tag(0x0010, 0x1002),
  BodyPartExamined: tag(0x0018, 0x0015),
  StudyInstanceUID: tag(0x0020, 0x000D),
  SeriesInstanceUID: tag(0x0020, 0x000E),
  StudyID: tag(0x0020, 0x0010),
  SeriesNumber: tag(0x0020, 0x0011),
  InstanceNumber: tag(0x0020, 0x0013),
  NumberOfFrames: tag(0x0028, 0x0008),
  Rows: tag(0x0028, 0x0010),
  Columns: tag(0x0028, 0x0011),
  BitsAllocated: tag(0x0028, 0x0100),
  UniversalEntityID: tag(0x0040, 0x0032),
  ConceptNameCodeSequence: tag(0x0040, 0xA043),
  CompletionFlag: tag(0x0040, 0xA491),
  VerificationFlag: tag(0x0040, 0xA493),
  DocumentTitle: tag(0x0042, 0x0010),
  MIMETypeOfEncapsulatedDocument: tag(0x0042, 0x0012),
  PixelData: tag(0x7FE0, 0x0010)
} as const

export const TransferSyntax = {
  ImplicitVRLittleEndian: '1.2.840.10008.1.2',
  ExplicitVRLittleEndian: '1.2.840.10008.1.2.1',
  DeflatedExplicitVRLittleEndian: '1.2.840.10008.1.2.1.99',
  ExplicitVRBigEndian: '1.2.840.10008.1.2.2'
} as const

export const SopClass = {
  MediaStorageDirectory: '1.2.840.10008.1.3.10',
  EncapsulatedPdf: '1.2.840.10008.5.1.4.1.1.104.1',
  EncapsulatedCda: '1.2.840.10008.5.1.4.1.1.104.2'
} as const

/** Structured reports and encapsulated documents: the things a clinician reads, sent before images. */
export function isReportSopClass (sopClassUID: string): boolean {
  return sopClassUID.startsWith('1.2.840.10008.5.1.4.1.1.88.') ||
    sopClassUID === SopClass.EncapsulatedPdf ||
    sopClassUID === SopClass.EncapsulatedCda
}
