// Deterministic synthetic DICOM study generator: images (phantom pixels), reports, media layouts.
export type {
  CharsetName, GeneratedInstance, GeneratedPatient, GeneratedStudy, MarkerSpec, Modality, PatientSpec, SeriesSpec,
  StudySpec, TransferSyntaxName
} from './types.ts'
export { generateStudy } from './studies.ts'
export { writeMediaLayout, MEDIA_STORAGE_DIRECTORY } from './dicomdir.ts'
export { samplePatients, isValidBsn, generateBsn } from './patients.ts'
export { createPhantom, type Phantom, type PhantomKind } from './phantom.ts'
export { createPrng, type Prng } from './prng.ts'
export { uidFrom, isValidUid } from './uids.ts'
export { CHARSETS, type Charset } from './charsets.ts'
export { TRANSFER_SYNTAXES, type TransferSyntax } from './transfer-syntaxes.ts'
export { encodeRleFrame } from './pixel-encodings.ts'
export { buildPdf } from './reports.ts'
export { InvalidSpecError, UnencodableTextError, DatasetEncodingError } from './errors.ts'
