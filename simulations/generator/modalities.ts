// Per-modality defaults: phantom kind, SOP class, geometry and series description.
import type { PhantomKind } from './phantom.ts'
import type { Modality } from './types.ts'

export interface ModalityProfile {
  phantom: PhantomKind
  sopClassUID: string
  rows: number
  columns: number
  /** Field of view in mm across the shorter side; PixelSpacing = fov / size. */
  fovMm: number
  bodyPart: string
  description: string
  windowCenter: number
  windowWidth: number
}

export const MODALITY_PROFILES: Readonly<Record<Modality, ModalityProfile>> = {
  CT: {
    phantom: 'ct', sopClassUID: '1.2.840.10008.5.1.4.1.1.2', rows: 512, columns: 512, fovMm: 350,
    bodyPart: 'CHEST', description: 'CT thorax-abdomen met contrast', windowCenter: 40, windowWidth: 400
  },
  MR: {
    phantom: 'mr', sopClassUID: '1.2.840.10008.5.1.4.1.1.4', rows: 256, columns: 256, fovMm: 380,
    bodyPart: 'ABDOMEN', description: 'MR abdomen T2 TSE', windowCenter: 600, windowWidth: 1200
  },
  CR: {
    phantom: 'xr', sopClassUID: '1.2.840.10008.5.1.4.1.1.1', rows: 512, columns: 512, fovMm: 430,
    bodyPart: 'CHEST', description: 'Thorax PA', windowCenter: 2000, windowWidth: 4000
  },
  DX: {
    phantom: 'xr', sopClassUID: '1.2.840.10008.5.1.4.1.1.1.1', rows: 512, columns: 512, fovMm: 430,
    bodyPart: 'CHEST', description: 'Thorax PA digitaal', windowCenter: 2000, windowWidth: 4000
  },
  US: {
    phantom: 'us', sopClassUID: '1.2.840.10008.5.1.4.1.1.6.1', rows: 480, columns: 640, fovMm: 160,
    bodyPart: 'ABDOMEN', description: 'Echo bovenbuik', windowCenter: 128, windowWidth: 256
  }
}

export const US_MULTIFRAME = '1.2.840.10008.5.1.4.1.1.3.1'
export const MULTIFRAME_WORD_SC = '1.2.840.10008.5.1.4.1.1.7.3'
export const MULTIFRAME_BYTE_SC = '1.2.840.10008.5.1.4.1.1.7.2'
