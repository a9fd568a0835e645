// The transfer syntaxes the generator writes and how each stores pixel data.
import type { Syntax } from './dataset-writer.ts'

export type TransferSyntaxName = 'explicit-le' | 'implicit-le' | 'explicit-be' | 'rle' | 'jpeg-baseline' |
  'jpeg-ls' | 'jpeg2000'

export interface TransferSyntax {
  name: TransferSyntaxName
  uid: string
  syntax: Syntax
  /** Pixel data as fragments in an undefined-length sequence (PS3.5 A.4) rather than native. */
  encapsulated: boolean
}

export const TRANSFER_SYNTAXES: Readonly<Record<TransferSyntaxName, TransferSyntax>> = {
  'explicit-le': ts('explicit-le', '1.2.840.10008.1.2.1', true, true, false),
  'implicit-le': ts('implicit-le', '1.2.840.10008.1.2', false, true, false),
  'explicit-be': ts('explicit-be', '1.2.840.10008.1.2.2', true, false, false),
  rle: ts('rle', '1.2.840.10008.1.2.5', true, true, true),
  'jpeg-baseline': ts('jpeg-baseline', '1.2.840.10008.1.2.4.50', true, true, true),
  'jpeg-ls': ts('jpeg-ls', '1.2.840.10008.1.2.4.80', true, true, true),
  jpeg2000: ts('jpeg2000', '1.2.840.10008.1.2.4.90', true, true, true)
}

function ts (name: TransferSyntaxName, uid: string, explicit: boolean, littleEndian: boolean,
  encapsulated: boolean): TransferSyntax {
  return { name, uid, syntax: { explicit, littleEndian }, encapsulated }
}
