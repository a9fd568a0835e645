import { createTextDecoder, type DicomTextDecoder } from '../dicom/charset.ts'
import { readHeader, type Dataset } from '../dicom/dataset-reader.ts'
import { tag, Tags } from '../dicom/tags.ts'

/*
 * A structured report as text a clinician reads: the document title, its state, and the content
 * tree (headings, text, codes, measurements, dates, names) indented by nesting. Values are decoded
 * with the dataset's character set. Image and waveform references are listed, not drawn.
 */

const T = {
  RelationshipType: tag(0x0040, 0xA010),
  ValueType: tag(0x0040, 0xA040),
  ConceptNameCodeSequence: tag(0x0040, 0xA043),
  ConceptCodeSequence: tag(0x0040, 0xA168),
  TextValue: tag(0x0040, 0xA160),
  DateTime: tag(0x0040, 0xA120),
  Date: tag(0x0040, 0xA121),
  Time: tag(0x0040, 0xA122),
  PersonName: tag(0x0040, 0xA123),
  UID: tag(0x0040, 0xA124),
  MeasuredValueSequence: tag(0x0040, 0xA300),
  NumericValue: tag(0x0040, 0xA30A),
  MeasurementUnitsCodeSequence: tag(0x0040, 0x08EA),
  CodeValue: tag(0x0008, 0x0100),
  ContentSequence: tag(0x0040, 0xA730),
  VerifyingObserverSequence: tag(0x0040, 0xA073),
  VerifyingObserverName: tag(0x0040, 0xA075)
} as const

const MAX_DEPTH = 32

class Reader {
  private readonly decoder: DicomTextDecoder
  constructor (decoder: DicomTextDecoder) { this.decoder = decoder }

  text (ds: Dataset | undefined, t: number, vr = 'LO'): string {
    const value = ds?.get(t)?.value
    return value === undefined ? '' : this.decoder.decode(value, vr).trim()
  }

  codeMeaning (ds: Dataset | undefined, sequence: number): string {
    const item = ds?.get(sequence)?.items?.[0]
    return this.text(item, Tags.CodeMeaning) || this.text(item, T.CodeValue, 'SH')
  }
}

function valueOf (r: Reader, item: Dataset): string {
  switch (r.text(item, T.ValueType, 'CS')) {
    case 'TEXT': return r.text(item, T.TextValue, 'UT')
    case 'CODE': return r.codeMeaning(item, T.ConceptCodeSequence)
    case 'NUM': {
      const measured = item.get(T.MeasuredValueSequence)?.items?.[0]
      const unit = r.codeMeaning(measured, T.MeasurementUnitsCodeSequence)
      return [r.text(measured, T.NumericValue, 'DS'), unit].filter((s) => s !== '').join(' ')
    }
    case 'DATE': return r.text(item, T.Date, 'DA')
    case 'TIME': return r.text(item, T.Time, 'TM')
    case 'DATETIME': return r.text(item, T.DateTime, 'DT')
    case 'PNAME': return r.text(item, T.PersonName, 'PN').replace(/\^/g, ' ').trim()
    case 'UIDREF': return r.text(item, T.UID, 'UI')
    case 'IMAGE': case 'COMPOSITE': case 'WAVEFORM': return '(reference to an image or object)'
    default: return ''
  }
}

function renderItems (r: Reader, items: Dataset[], depth: number, lines: string[]): void {
  if (depth > MAX_DEPTH) return
  const indent = '  '.repeat(depth)
  for (const item of items) {
    const concept = r.codeMeaning(item, T.ConceptNameCodeSequence)
    if (r.text(item, T.ValueType, 'CS') === 'CONTAINER') {
      lines.push('', `${indent}${concept}`)
    } else {
      const value = valueOf(r, item)
      if (concept !== '' || value !== '') lines.push(`${indent}${concept === '' ? '' : `${concept}: `}${value.replace(/\r?\n/g, `\n${indent}  `)}`)
    }
    renderItems(r, item.get(T.ContentSequence)?.items ?? [], depth + 1, lines)
  }
}

/** The SR instance at `path` as readable text. */
export function renderStructuredReport (path: string, specificCharacterSet: string[]): string {
  const { dataset } = readHeader(path, { maxValueBytes: 4 * 1024 * 1024 })
  const r = new Reader(createTextDecoder(specificCharacterSet))
  const lines = [r.codeMeaning(dataset, T.ConceptNameCodeSequence) || 'Report']
  const state = [r.text(dataset, Tags.CompletionFlag, 'CS'), r.text(dataset, Tags.VerificationFlag, 'CS')].filter((s) => s !== '').join(', ').toLowerCase()
  const verifier = r.text(dataset.get(T.VerifyingObserverSequence)?.items?.[0], T.VerifyingObserverName, 'PN').replace(/\^/g, ' ').trim()
  if (state !== '') lines.push(`(${state}${verifier === '' ? '' : ` by ${verifier}`})`)
  renderItems(r, dataset.get(T.ContentSequence)?.items ?? [], 0, lines)
  return lines.join('\n').trim() + '\n'
}
