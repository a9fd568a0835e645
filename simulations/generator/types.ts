// Public types of the study generator.
import type { CharsetName } from './charsets.ts'
import type { TransferSyntaxName } from './transfer-syntaxes.ts'

export type { CharsetName, TransferSyntaxName }

export type Modality = 'CT' | 'MR' | 'CR' | 'DX' | 'US'

export interface PatientSpec {
  /** DICOM PN, Unicode (e.g. 'Yamada^Tarou=山田^太郎=やまだ^たろう'); default: a Dutch name from the seed. */
  name?: string
  /** Hospital patient ID; default: 7 digits from the seed. */
  id?: string
  /** IssuerOfPatientID; default 'BEELDNET'. */
  issuer?: string
  /** 9-digit BSN for OtherPatientIDsSequence; default: a valid (11-proof) one from the seed. Not validated. */
  bsn?: string
  /** YYYYMMDD; default from the seed. */
  birthDate?: string
  sex?: 'M' | 'F' | 'O'
  /** Default: 'ascii' for ASCII names, else 'utf8'. */
  charset?: CharsetName
}

export interface SeriesSpec {
  modality: Modality
  instances: number
  /** Defaults: CT 512, MR 256, CR/DX 512, US 480 x 640. */
  rows?: number
  columns?: number
  /** Frames per instance; > 1 makes multi-frame instances (Multi-frame Grayscale Word SC, US Multi-frame). */
  frames?: number
  /** Default 'explicit-le'. */
  transferSyntax?: TransferSyntaxName
  /** false: raw implicit VR LE dataset, no preamble / DICM / File Meta (old modalities). Default true. */
  part10?: boolean
  description?: string
  /** PixelSpacing (CT/MR; ImagerPixelSpacing for CR/DX) in mm; default the modality's field of view / shorter side. */
  pixelSpacingMm?: number
  /** CT/MR: change of ImagePositionPatient z and SliceLocation per instance; default -SliceThickness (CT 1.25, MR 5) */
  sliceStepMm?: number
  /** Squares of one value burned into every frame over the phantom: for a test to find, measure or follow. */
  markers?: MarkerSpec[]
  /**
   * Multi-frame: FrameTime in ms, and with it a cine loop's CineRate, RecommendedDisplayFrameRate and
   * PreferredPlaybackSequencing (looping). Default FrameTime 40 and none of the others.
   */
  frameTimeMs?: number
}

export interface MarkerSpec {
  /** Centre pixel, 0-based: column (x) and row (y). */
  column: number
  row: number
  /** Side in pixels, odd so the centre is a pixel; default 5. Clipped at the image's edges. */
  size?: number
  /** Stored pixel value (CT: HU + 1024), within the phantom's range: 0..4095 (US 0..255). */
  value: number
  /** Pixels the centre moves per frame of a multi-frame instance, or per instance of a single-frame series. */
  step?: { columns: number, rows: number }
}

export interface StudySpec {
  /** Default 1. Same seed and spec: byte-identical files. */
  seed?: number
  patient?: PatientSpec
  /** YYYYMMDD; default from the seed. */
  studyDate?: string
  accession?: string
  description?: string
  series: SeriesSpec[]
  /** Reports in their own series: Basic Text SR (modality SR) and Encapsulated PDF (modality DOC). */
  reports?: { sr?: boolean; pdf?: boolean }
}

export interface GeneratedInstance {
  path: string
  size: number
  studyInstanceUID: string
  seriesInstanceUID: string
  sopInstanceUID: string
  sopClassUID: string
  transferSyntaxUID: string
  modality: string
  isReport: boolean
}

export interface GeneratedPatient {
  name: string
  id: string
  issuer: string
  bsn?: string
  birthDate: string
  sex: string
}

export interface GeneratedStudy {
  studyInstanceUID: string
  patient: GeneratedPatient
  accession: string
  studyDate: string
  instances: GeneratedInstance[]
}
