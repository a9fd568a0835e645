import { createRequire } from 'node:module'
import type * as DimseModule from 'dcmjs-dimse'

/*
 * dcmjs-dimse, loaded on first use: it brings its own copy of dcmjs (~20 MB resident), which a
 * node without a DIMSE service should not carry. Its own logging is switched off; ours is pino.
 */

export type Dimse = typeof DimseModule
let loaded: Dimse | undefined

export function dimse (): Dimse {
  if (loaded === undefined) {
    loaded = createRequire(import.meta.url)('dcmjs-dimse') as Dimse
    loaded.log.setLevel('silent')
  }
  return loaded
}

/** Query/Retrieve SOP classes (PS3.4 C.6): Patient Root and Study Root, FIND / MOVE / GET. */
export const QueryRetrieve = {
  patientFind: '1.2.840.10008.5.1.4.1.2.1.1',
  patientMove: '1.2.840.10008.5.1.4.1.2.1.2',
  patientGet: '1.2.840.10008.5.1.4.1.2.1.3',
  studyFind: '1.2.840.10008.5.1.4.1.2.2.1',
  studyMove: '1.2.840.10008.5.1.4.1.2.2.2',
  studyGet: '1.2.840.10008.5.1.4.1.2.2.3'
} as const

export const VERIFICATION = '1.2.840.10008.1.1'

/** DIMSE status codes used here (PS3.4 / PS3.7). */
export const DimseStatus = {
  success: 0x0000,
  pending: 0xFF00,
  warning: 0xB000,
  /** not a C-STORE status (PS3.4 B.2.3 has none such): C-FIND and C-MOVE failures only */
  processingFailure: 0x0110,
  /** C-STORE "Refused: Out of Resources" (A7xx): the sender should try again later */
  outOfResources: 0xA700,
  moveDestinationUnknown: 0xA801,
  identifierDoesNotMatch: 0xA900,
  /** C-STORE "Error: Cannot understand" (Cxxx): this dataset will not be taken as it is */
  cannotUnderstand: 0xC000,
  subOperationsFailed: 0xA702
} as const
