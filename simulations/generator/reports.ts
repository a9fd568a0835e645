// Report instances: a Basic Text SR (TID 2000-like) and an Encapsulated PDF with a hand-written one-page PDF.
import { el, type Item } from './dataset-writer.ts'

export const BASIC_TEXT_SR = '1.2.840.10008.5.1.4.1.1.88.11'
export const ENCAPSULATED_PDF = '1.2.840.10008.5.1.4.1.1.104.1'

export interface Code { value: string; scheme: string; meaning: string }

export const REPORT_TITLE: Code = { value: '18748-4', scheme: 'LN', meaning: 'Diagnostic imaging report' }

export function codeItem (c: Code): Item {
  return [el(0x00080100, 'SH', c.value), el(0x00080102, 'SH', c.scheme), el(0x00080104, 'LO', c.meaning)]
}

export interface ReportText {
  history: string
  findings: string
  conclusion: string
}

export const DEFAULT_REPORT: ReportText = {
  history: 'Kortademigheid sinds twee weken. Vraagstelling: longembolie?',
  findings: 'Geen vullingsdefecten in de longarterien. Longvelden helder. Geen pleuravocht.',
  conclusion: 'Geen aanwijzingen voor longembolie.'
}

export interface EvidenceSeries { seriesInstanceUID: string; sops: Array<{ classUID: string; instanceUID: string }> }

export interface SrInit {
  studyInstanceUID: string
  contentDate: string
  contentTime: string
  observer: string
  text: ReportText
  /** Instances the report is about (CurrentRequestedProcedureEvidenceSequence). */
  evidence: EvidenceSeries[]
}

function textItem (concept: Code, text: string): Item {
  return [
    el(0x0040A010, 'CS', 'CONTAINS'),
    el(0x0040A040, 'CS', 'TEXT'),
    el(0x0040A043, 'SQ', [codeItem(concept)]),
    el(0x0040A160, 'UT', text)
  ]
}

/** SR Document General + Content modules of a Basic Text SR; the caller adds patient/study/series/SOP. */
export function srContent (init: SrInit): Item {
  return [
    el(0x00080023, 'DA', init.contentDate),
    el(0x00080033, 'TM', init.contentTime),
    el(0x0040A040, 'CS', 'CONTAINER'),
    el(0x0040A043, 'SQ', [codeItem(REPORT_TITLE)]),
    el(0x0040A050, 'CS', 'SEPARATE'),
    el(0x0040A491, 'CS', 'COMPLETE'),
    el(0x0040A493, 'CS', 'VERIFIED'),
    el(0x0040A073, 'SQ', [[
      el(0x0040A027, 'LO', 'Beeldnet Simulatieziekenhuis'),
      el(0x0040A030, 'DT', init.contentDate + init.contentTime),
      el(0x0040A075, 'PN', init.observer),
      el(0x0040A088, 'SQ', [])
    ]]),
    el(0x0040A372, 'SQ', []),
    el(0x0040A375, 'SQ', [[
      el(0x0020000D, 'UI', init.studyInstanceUID),
      el(0x00081115, 'SQ', init.evidence.map((s) => [
        el(0x0020000E, 'UI', s.seriesInstanceUID),
        el(0x00081199, 'SQ', s.sops.map((o) => [el(0x00081150, 'UI', o.classUID), el(0x00081155, 'UI', o.instanceUID)]))
      ]))
    ]]),
    el(0x0040A504, 'SQ', [[el(0x00080105, 'CS', 'DCMR'), el(0x0040DB00, 'CS', '2000')]]),
    el(0x0040A730, 'SQ', [
      textItem({ value: '121060', scheme: 'DCM', meaning: 'History' }, init.text.history),
      textItem({ value: '121071', scheme: 'DCM', meaning: 'Finding' }, init.text.findings),
      textItem({ value: '121077', scheme: 'DCM', meaning: 'Conclusion' }, init.text.conclusion)
    ])
  ]
}

function pdfString (s: string): string {
  // PDF literal string; non-ASCII replaced since the standard Helvetica encoding is not Unicode.
  return '(' + s.replace(/[^\x20-\x7E]/g, '?').replace(/([\\()])/g, '\\$1') + ')'
}

/** A valid one-page PDF 1.4 (Helvetica text, exact xref offsets), built by hand: no PDF library needed. */
export function buildPdf (lines: readonly string[]): Uint8Array {
  const text = ['BT', '/F1 20 Tf', '72 770 Td', `${pdfString('Radiology report')} Tj`, '/F1 11 Tf', '0 -30 Td']
  for (const line of lines) text.push(`${pdfString(line)} Tj`, '0 -16 Td')
  text.push('ET')
  const content = text.join('\n')
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> ' +
      '/Contents 5 0 R >>',
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>',
    `<< /Length ${content.length} >>\nstream\n${content}\nendstream`
  ]
  let pdf = '%PDF-1.4\n'
  const offsets: number[] = []
  objects.forEach((body, i) => {
    offsets.push(pdf.length) // all ASCII, so string length is byte length
    pdf += `${i + 1} 0 obj\n${body}\nendobj\n`
  })
  const xref = pdf.length
  pdf += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`
  for (const o of offsets) pdf += `${String(o).padStart(10, '0')} 00000 n \n`
  pdf += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`
  return new TextEncoder().encode(pdf)
}

export interface PdfInit {
  contentDate: string
  contentTime: string
  title: string
  pdf: Uint8Array
}

/** Encapsulated Document + SC Equipment bits of an Encapsulated PDF; the caller adds the rest. */
export function pdfContent (init: PdfInit): Item {
  return [
    el(0x00080023, 'DA', init.contentDate),
    el(0x00080033, 'TM', init.contentTime),
    el(0x0008002A, 'DT', init.contentDate + init.contentTime),
    el(0x00080064, 'CS', 'WSD'),
    el(0x00280301, 'CS', 'YES'),
    el(0x00420010, 'ST', init.title),
    el(0x0040A043, 'SQ', [codeItem(REPORT_TITLE)]),
    el(0x00420012, 'LO', 'application/pdf'),
    el(0x00420011, 'OB', init.pdf), // padded to even length with 0x00 by the encoder
    el(0x00420015, 'UL', init.pdf.length)
  ]
}
