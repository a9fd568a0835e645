import { closeSync, openSync, readSync } from 'node:fs'
import { DicomUnsupportedError } from '../errors.ts'
import { readHeader } from '../dicom/dataset-reader.ts'
import { encodeElement, encodeSequence, sequenceItem } from '../dicom/element-writer.ts'
import { Tags, TransferSyntax, tag } from '../dicom/tags.ts'

/*
 * Import reconciliation (IHE IRWF): an instance from another hospital gets this hospital's patient
 * id, issuer and accession before it enters the local PACS. SOP, Study and Series Instance UIDs stay
 * as they are; the original values stay in the dataset: the old id as an Other Patient IDs item, and
 * every replaced value in an Original Attributes Sequence item (PS3.3 C.12.1) saying when, by
 * what and why. Only the header is rewritten: everything from pixel data on is copied as it is.
 */

export interface LocalIdentity {
  patientId: string
  issuer: string
  /** the local accession (an order); empty when there is none */
  accessionNumber?: string
}

export interface CoerceInit {
  local: LocalIdentity
  /** who the previous values came from (the sending institution), for Source of Previous Values */
  source: string
  now?: Date
}

const OriginalAttributesSequence = tag(0x0400, 0x0561)
const ModifiedAttributesSequence = tag(0x0400, 0x0550)

interface Encoder { implicit: boolean }

/** Identifiers and codes are ASCII in every character set: written as latin1, whatever the dataset's. */
function textElement (t: number, vr: string, value: string, e: Encoder): Buffer {
  return encodeElement(t, vr, value, { implicit: e.implicit, encoding: 'latin1' })
}

/** A sequence: the items it already had (raw), then the new ones. */
function sequence (t: number, existingItems: Buffer, items: Buffer[], e: Encoder): Buffer {
  return encodeSequence(t, [existingItems, ...items], e.implicit)
}

/** The raw items of a top-level sequence element (its bytes minus header and delimiter). */
function itemsOf (file: Buffer, span: { start: number, end: number } | undefined, e: Encoder): Buffer {
  if (span === undefined) return Buffer.alloc(0)
  const headerBytes = e.implicit ? 8 : 12
  const length = file.readUInt32LE(span.start + headerBytes - 4)
  const end = length === 0xFFFFFFFF ? span.end - 8 : span.end
  return file.subarray(span.start + headerBytes, end)
}

function dicomDateTime (d: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0')
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}+0000`
}

export interface CoercedHeader {
  /** the new bytes for everything before `headerEnd` (preamble and File Meta included, when the file has them) */
  header: Buffer
  /** where the stored file's unchanged rest (pixel data on) starts */
  headerEnd: number
  /** where the dataset starts in `header` (after the File Meta) */
  datasetOffset: number
}

/** The reconciled header of the stored file at `path`; what follows `headerEnd` goes out unchanged. */
export function coerceHeader (path: string, init: CoerceInit): CoercedHeader {
  const parsed = readHeader(path)
  // Its header is inside the deflate stream: rewriting it would mean inflating and deflating the whole instance.
  if (parsed.deflated) throw new DicomUnsupportedError('reconciling a deflated dataset is not supported')
  const file = readRange(path, parsed.headerEnd)
  if (parsed.transferSyntaxUID === TransferSyntax.ExplicitVRBigEndian) throw new DicomUnsupportedError('reconciling a big endian dataset is not supported')
  const e: Encoder = { implicit: parsed.transferSyntaxUID === TransferSyntax.ImplicitVRLittleEndian }
  const raw = (t: number): Buffer | undefined => {
    const span = parsed.spans.get(t)
    return span === undefined ? undefined : file.subarray(span.start, span.end)
  }
  const replaced = [Tags.AccessionNumber, Tags.PatientID, Tags.IssuerOfPatientID, Tags.IssuerOfPatientIDQualifiersSequence]
  const originals = replaced.map(raw).filter((b): b is Buffer => b !== undefined)
  const originalId = parsed.dataset.get(Tags.PatientID)?.value?.toString('latin1').replace(/[\0 ]+$/, '') ?? ''
  const originalIssuer = parsed.dataset.get(Tags.IssuerOfPatientID)?.value?.toString('latin1').replace(/[\0 ]+$/, '') ?? ''

  const changes = new Map<number, Buffer | null>()
  changes.set(Tags.AccessionNumber, textElement(Tags.AccessionNumber, 'SH', init.local.accessionNumber ?? '', e))
  changes.set(Tags.PatientID, textElement(Tags.PatientID, 'LO', init.local.patientId, e))
  changes.set(Tags.IssuerOfPatientID, textElement(Tags.IssuerOfPatientID, 'LO', init.local.issuer, e))
  // The qualifiers describe the old issuer: they go with it into the original attributes.
  changes.set(Tags.IssuerOfPatientIDQualifiersSequence, null)
  if (originalId !== '') {
    const otherId = sequenceItem([
      textElement(Tags.PatientID, 'LO', originalId, e),
      ...(originalIssuer === '' ? [] : [textElement(Tags.IssuerOfPatientID, 'LO', originalIssuer, e)]),
      ...(raw(Tags.IssuerOfPatientIDQualifiersSequence) === undefined ? [] : [raw(Tags.IssuerOfPatientIDQualifiersSequence)!]),
      textElement(Tags.TypeOfPatientID, 'CS', 'TEXT', e)
    ])
    changes.set(Tags.OtherPatientIDsSequence, sequence(Tags.OtherPatientIDsSequence, itemsOf(file, parsed.spans.get(Tags.OtherPatientIDsSequence), e), [otherId], e))
  }
  const original = sequenceItem([
    sequence(ModifiedAttributesSequence, Buffer.alloc(0), [sequenceItem(originals)], e),
    textElement(tag(0x0400, 0x0562), 'DT', dicomDateTime(init.now ?? new Date()), e),
    textElement(tag(0x0400, 0x0563), 'LO', 'BEELDNET', e),
    textElement(tag(0x0400, 0x0564), 'LO', init.source.slice(0, 64), e),
    textElement(tag(0x0400, 0x0565), 'CS', 'COERCE', e)
  ])
  changes.set(OriginalAttributesSequence, sequence(OriginalAttributesSequence, itemsOf(file, parsed.spans.get(OriginalAttributesSequence), e), [original], e))

  const tags = [...new Set([...parsed.spans.keys(), ...changes.keys()])].sort((a, b) => a - b)
  const parts: Buffer[] = [file.subarray(0, parsed.datasetOffset)]
  for (const t of tags) {
    // Group lengths would be wrong after the change; they are retired anyway.
    if ((t & 0xFFFF) === 0) continue
    const change = changes.get(t)
    if (change === null) continue
    parts.push(change ?? raw(t)!)
  }
  return { header: Buffer.concat(parts), headerEnd: parsed.headerEnd, datasetOffset: parsed.datasetOffset }
}

/** The first `length` bytes of a file (a header: small, and bounded by the header walk). */
function readRange (path: string, length: number): Buffer {
  const fd = openSync(path, 'r')
  try {
    const buffer = Buffer.alloc(length)
    let filled = 0
    while (filled < length) {
      const n = readSync(fd, buffer, filled, length - filled, filled)
      if (n === 0) break
      filled += n
    }
    return buffer.subarray(0, filled)
  } finally {
    closeSync(fd)
  }
}
