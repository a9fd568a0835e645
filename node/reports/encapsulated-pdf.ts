import { randomUUID } from 'node:crypto'
import { fileMetaInformation } from '../dicom/file-meta.ts'
import { encodeElement, encodeSequence, sequenceItem } from '../dicom/element-writer.ts'
import { SopClass, tag, TransferSyntax } from '../dicom/tags.ts'
import type { StudyRecord } from '../store/records.ts'

/*
 * A PDF report a clinician attaches to a send, wrapped as an Encapsulated PDF instance (PS3.3
 * A.45.1) in its own series of the study: same patient and study attributes (the BSN kept as an
 * Other Patient ID), new Series and SOP Instance UIDs. Text is UTF-8 (ISO_IR 192).
 */

const BSN_ISSUER = 'NLMINBIZA'

/** A new UID under 2.25 (a UUID as a decimal integer, ITU-T X.667). */
export function newUid (): string {
  return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, '')}`).toString()}`
}

function el (group: number, element: number, vr: string, value: Buffer | string): Buffer {
  return encodeElement(tag(group, element), vr, value)
}

function sequence (group: number, element: number, items: Buffer[][]): Buffer {
  return encodeSequence(tag(group, element), items.map(sequenceItem))
}

function ul (value: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(value, 0)
  return b
}

export interface EncapsulatedPdf {
  sopInstanceUID: string
  seriesInstanceUID: string
  bytes: Buffer
}

export function encapsulatePdf (study: StudyRecord, pdf: Buffer, title: string, now = new Date()): EncapsulatedPdf {
  const sopInstanceUID = newUid()
  const seriesInstanceUID = newUid()
  const iso = now.toISOString()
  const date = iso.slice(0, 10).replace(/-/g, '')
  const time = iso.slice(11, 19).replace(/:/g, '')
  const p = study.patient
  const dataset = Buffer.concat([
    el(0x0008, 0x0005, 'CS', 'ISO_IR 192'),
    el(0x0008, 0x0016, 'UI', SopClass.EncapsulatedPdf),
    el(0x0008, 0x0018, 'UI', sopInstanceUID),
    el(0x0008, 0x0020, 'DA', study.date),
    el(0x0008, 0x0023, 'DA', date),
    el(0x0008, 0x0030, 'TM', study.time),
    el(0x0008, 0x0033, 'TM', time),
    el(0x0008, 0x0050, 'SH', study.accessionNumber),
    el(0x0008, 0x0060, 'CS', 'DOC'),
    el(0x0008, 0x0064, 'CS', 'WSD'),
    el(0x0008, 0x0070, 'LO', 'Beeldnet'),
    el(0x0008, 0x0090, 'PN', study.referringPhysician),
    el(0x0008, 0x1030, 'LO', study.description),
    el(0x0010, 0x0010, 'PN', p.name),
    el(0x0010, 0x0020, 'LO', p.id),
    el(0x0010, 0x0021, 'LO', p.issuer),
    el(0x0010, 0x0030, 'DA', p.birthDate),
    el(0x0010, 0x0040, 'CS', p.sex),
    ...(p.bsn === undefined ? [] : [sequence(0x0010, 0x1002, [[el(0x0010, 0x0020, 'LO', p.bsn), el(0x0010, 0x0021, 'LO', BSN_ISSUER)]])]),
    el(0x0020, 0x000D, 'UI', study.studyInstanceUID),
    el(0x0020, 0x000E, 'UI', seriesInstanceUID),
    el(0x0020, 0x0010, 'SH', study.studyId),
    el(0x0020, 0x0011, 'IS', '9001'),
    el(0x0020, 0x0013, 'IS', '1'),
    el(0x0028, 0x0301, 'CS', 'YES'),
    sequence(0x0040, 0xA043, [[el(0x0008, 0x0100, 'SH', '18748-4'), el(0x0008, 0x0102, 'SH', 'LN'), el(0x0008, 0x0104, 'LO', 'Diagnostic imaging report')]]),
    el(0x0042, 0x0010, 'ST', title),
    el(0x0042, 0x0011, 'OB', pdf),
    el(0x0042, 0x0012, 'LO', 'application/pdf'),
    el(0x0042, 0x0015, 'UL', ul(pdf.length))
  ])
  const meta = fileMetaInformation({ sopClassUID: SopClass.EncapsulatedPdf, sopInstanceUID, transferSyntaxUID: TransferSyntax.ExplicitVRLittleEndian })
  return { sopInstanceUID, seriesInstanceUID, bytes: Buffer.concat([meta, dataset]) }
}
