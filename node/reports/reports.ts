import { createReadStream } from 'node:fs'
import { Readable } from 'node:stream'
import { readHeader } from '../dicom/dataset-reader.ts'
import { inflatedRange } from '../dicom/inflated-source.ts'
import { SopClass, tag } from '../dicom/tags.ts'
import type { InstanceRecord } from '../store/records.ts'
import type { StudyStore } from '../store/study-store.ts'
import { encapsulatePdf } from './encapsulated-pdf.ts'
import { NotPdfError, ReportNotFoundError, ReportNotStoredError } from './errors.ts'
import { renderStructuredReport } from './sr-text.ts'

/*
 * Reports of a study for people: which there are, an SR as readable text, a PDF as it is, and a
 * PDF a clinician attaches, which becomes an instance of the study (and so travels with it,
 * reports first, and joins the study at a receiver that already has the images).
 */

export type ReportKind = 'sr' | 'pdf' | 'cda'

export interface ReportSummary {
  sopInstanceUID: string
  seriesInstanceUID: string
  sopClassUID: string
  kind: ReportKind
  title?: string
  completionFlag?: string
  verificationFlag?: string
}

/** The largest PDF a clinician may attach (it is read whole to wrap it). */
export const MAX_ATTACHED_PDF_BYTES = 64 * 1024 * 1024

const EncapsulatedDocument = tag(0x0042, 0x0011)
const EncapsulatedDocumentLength = tag(0x0042, 0x0015)

function kindOf (sopClassUID: string): ReportKind {
  if (sopClassUID === SopClass.EncapsulatedPdf) return 'pdf'
  if (sopClassUID === SopClass.EncapsulatedCda) return 'cda'
  return 'sr'
}

function summary (i: InstanceRecord): ReportSummary {
  return {
    sopInstanceUID: i.sopInstanceUID,
    seriesInstanceUID: i.seriesInstanceUID,
    sopClassUID: i.sopClassUID,
    kind: kindOf(i.sopClassUID),
    ...(i.title === undefined ? {} : { title: i.title }),
    ...(i.completionFlag === undefined ? {} : { completionFlag: i.completionFlag }),
    ...(i.verificationFlag === undefined ? {} : { verificationFlag: i.verificationFlag })
  }
}

export async function reportsOf (store: StudyStore, studyInstanceUID: string): Promise<ReportSummary[]> {
  const entries = await store.getStudy(studyInstanceUID)
  return entries.instances.filter((i) => i.isReport).map(summary)
}

export type ReportContent =
  | { type: 'text/plain; charset=utf-8', body: string }
  | { type: 'application/pdf' | 'text/xml', length: number, body: Readable }

/** An SR rendered as text; a PDF (or CDA) as the document it encapsulates, streamed from the stored file. */
export async function reportContent (store: StudyStore, studyInstanceUID: string, sopInstanceUID: string): Promise<ReportContent> {
  const entries = await store.getStudy(studyInstanceUID)
  const instance = entries.instances.find((i) => i.isReport && i.sopInstanceUID === sopInstanceUID)
  if (instance === undefined) throw new ReportNotFoundError(studyInstanceUID, sopInstanceUID)
  const path = store.blobs.pathOf(instance.sha256)
  if (kindOf(instance.sopClassUID) === 'sr') return { type: 'text/plain; charset=utf-8', body: renderStructuredReport(path, instance.specificCharacterSet) }
  const { dataset, spans, deflated, datasetOffset } = readHeader(path)
  const element = dataset.get(EncapsulatedDocument)
  const declared = dataset.get(EncapsulatedDocumentLength)?.value?.readUInt32LE(0)
  if (element === undefined || element.length === undefined) throw new ReportNotFoundError(studyInstanceUID, sopInstanceUID)
  // The value is padded to even length; the declared length says where the document ends.
  const length = declared !== undefined && declared <= element.length ? declared : element.length
  const type = kindOf(instance.sopClassUID) === 'pdf' ? 'application/pdf' : 'text/xml'
  if (element.value !== undefined) return { type, length, body: Readable.from([element.value.subarray(0, length)]) }
  const start = element.offset ?? (spans.get(EncapsulatedDocument)!.end - element.length)
  if (length === 0) return { type, length, body: Readable.from([]) }
  const body = deflated ? inflatedRange(path, datasetOffset, { offset: start, length }) : createReadStream(path, { start, end: start + length - 1 })
  return { type, length, body }
}

/** Wraps a PDF as an Encapsulated PDF instance of the study and commits it; returns the new report. */
export async function attachPdf (store: StudyStore, studyInstanceUID: string, pdf: Buffer, title: string): Promise<ReportSummary> {
  if (pdf.subarray(0, 5).toString('latin1') !== '%PDF-') throw new NotPdfError()
  const study = await store.getStudyRecord(studyInstanceUID)
  const wrapped = encapsulatePdf(study, pdf, title)
  const session = store.beginImport()
  try {
    await session.add(Readable.from([wrapped.bytes]))
    const [result] = await session.commit()
    const rejected = result?.rejected[0]
    if (rejected !== undefined) throw new ReportNotStoredError(rejected)
  } catch (err) {
    await session.abort()
    throw err
  }
  const entries = await store.getStudy(studyInstanceUID)
  return summary(entries.instances.find((i) => i.sopInstanceUID === wrapped.sopInstanceUID)!)
}
