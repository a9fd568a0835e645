import { closeSync, fstatSync, openSync } from 'node:fs'
import { createRequire } from 'node:module'
import { FileCursor, type ByteCursor } from './byte-source.ts'
import { InflatingCursor } from './inflated-source.ts'
import { DicomHeaderTooLargeError, DicomMalformedError, DicomTruncatedError, DicomUnsupportedError, NotDicomError } from '../errors.ts'
import { TransferSyntax, tag } from './tags.ts'

/*
 * Walks a DICOM header up to the pixel data, keeping the raw bytes of small values. We walk the
 * elements ourselves (dcmjs supplies the data dictionary) because indexing needs three things
 * dcmjs's reader does not give: raw value bytes for ISO 2022 character sets (dcmjs refuses
 * multi-valued Specific Character Set and splits two-byte characters on 0x5C), skipping large
 * values without reading them, and a hard bound on what a hostile file can make us read.
 */

export interface DataElement {
  vr: string
  /** value length in bytes, or undefined for undefined length */
  length: number | undefined
  /** raw value bytes, kept only for values up to `maxValueBytes` */
  value?: Buffer
  /** where in the file a value too large to keep starts (DICOMweb serves it as bulk data) */
  offset?: number
  /** items of a sequence */
  items?: Dataset[]
}

export type Dataset = Map<number, DataElement>

export interface ReadHeaderInit {
  /** values longer than this are skipped, not kept (default 64 KiB) */
  maxValueBytes?: number
  /** the most bytes of header we walk before pixel data (default 64 MiB); a deflated dataset is never inflated further for its header */
  maxHeaderBytes?: number
  /** deepest sequence nesting accepted (default 16) */
  maxDepth?: number
  /** most elements (sequence items' included) kept from one header (default 200,000) */
  maxElements?: number
}

export interface ParsedHeader {
  /** File Meta Information, or undefined for a bare dataset */
  meta: Dataset | undefined
  dataset: Dataset
  transferSyntaxUID: string
  /** true when the file has the 128-byte preamble and 'DICM' */
  hasPreamble: boolean
  /** byte offset of the Pixel Data element's value, when there is one */
  pixelDataOffset?: number
  /** undefined for encapsulated (compressed) pixel data */
  pixelDataLength?: number
  /** where the dataset starts (after preamble and File Meta) */
  datasetOffset: number
  /**
   * true for Deflated Explicit VR Little Endian: every offset past `datasetOffset` counts bytes of the
   * inflated dataset (as if the file held it inflated), so ranges are read with `inflatedRange`, and
   * the walk stopped at pixel data without inflating it
   */
  deflated: boolean
  /** byte range of each top-level dataset element read, header included (for rewriting a header) */
  spans: Map<number, { start: number, end: number }>
  /** where the header walk stopped: the start of pixel data's element, or the end of the file */
  headerEnd: number
  fileSize: number
}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT', 'SV', 'UV'])
const KNOWN_VRS = new Set([...LONG_VRS, 'AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FD', 'FL', 'IS', 'LO', 'LT', 'PN', 'SH', 'SL', 'SS', 'ST', 'TM', 'UI', 'UL', 'US'])
const UNDEFINED = 0xFFFFFFFF
const DEFAULT_MAX_HEADER_BYTES = 64 * 1024 * 1024
const ITEM = tag(0xFFFE, 0xE000)
const ITEM_END = tag(0xFFFE, 0xE00D)
const SEQUENCE_END = tag(0xFFFE, 0xE0DD)
const PIXEL_DATA = tag(0x7FE0, 0x0010)
// Float / double pixel data and everything after pixel data is never needed to index an instance.
const FIRST_BULK_TAG = tag(0x7FE0, 0x0008)

type Dictionary = Record<string, { vr: string } | undefined>
let dictionary: Dictionary | undefined

/** dcmjs's data dictionary, loaded on first need: only implicit VR datasets need it, and it costs ~20 MB. */
function loadDictionary (): Dictionary {
  dictionary ??= (createRequire(import.meta.url)('dcmjs') as { data: { DicomMetaDictionary: { dictionary: Dictionary } } }).data.DicomMetaDictionary.dictionary
  return dictionary
}

/** The VR the data dictionary gives a tag (the first of an ambiguous 'US or SS'), or undefined when it has none. */
export function dictionaryVr (t: number): string | undefined {
  const group = (t >>> 16).toString(16).toUpperCase().padStart(4, '0')
  const element = (t & 0xFFFF).toString(16).toUpperCase().padStart(4, '0')
  const vr = loadDictionary()[`(${group},${element})`]?.vr
  // Some dictionary entries are ambiguous ('US or SS', 'OB or OW'); the first is good enough to skip.
  return vr?.slice(0, 2)
}

interface Encoding { implicit: boolean, littleEndian: boolean }

class HeaderWalker {
  cursor: ByteCursor
  private readonly maxValueBytes: number
  private readonly maxHeaderBytes: number
  private readonly maxDepth: number
  private readonly maxElements: number
  private elements = 0
  pixelDataOffset: number | undefined
  pixelDataLength: number | undefined
  readonly spans = new Map<number, { start: number, end: number }>()
  headerEnd = 0

  constructor (cursor: ByteCursor, init: ReadHeaderInit) {
    this.cursor = cursor
    this.maxValueBytes = init.maxValueBytes ?? 64 * 1024
    this.maxHeaderBytes = init.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES
    this.maxDepth = init.maxDepth ?? 16
    this.maxElements = init.maxElements ?? 200_000
  }

  /** Top-level elements until pixel data, the end of the file, or (for meta) the end of group 0002. */
  readTopLevel (encoding: Encoding, stopAfterGroup2 = false): Dataset {
    const dataset: Dataset = new Map()
    const cursor = this.cursor
    while (cursor.remaining() > 0) {
      cursor.littleEndian = encoding.littleEndian
      if (stopAfterGroup2) {
        // group 0002 is always explicit VR little endian; peek so the dataset can start after it
        if (cursor.remaining() < 2 || cursor.peek(2).readUInt16LE(0) !== 0x0002) break
      }
      if (cursor.remaining() < 8 && !stopAfterGroup2) {
        // Trailing bytes too short for an element: tolerate NUL padding, reject anything else.
        if (cursor.bytes(cursor.remaining()).some((b) => b !== 0)) throw new DicomTruncatedError('the file ends inside an element header')
        break
      }
      const start = cursor.position
      const t = this.readTag()
      if (t >= FIRST_BULK_TAG && !stopAfterGroup2) {
        this.headerEnd = start
        if (t === PIXEL_DATA) this.notePixelData(encoding)
        return dataset
      }
      dataset.set(t, this.readElementBody(t, encoding, 0))
      if (!stopAfterGroup2) this.spans.set(t, { start, end: cursor.position })
    }
    this.headerEnd = cursor.position
    return dataset
  }

  private readTag (): number {
    const group = this.cursor.u16()
    const element = this.cursor.u16()
    return tag(group, element)
  }

  private readVrAndLength (t: number, encoding: Encoding): { vr: string, length: number } {
    const cursor = this.cursor
    if (encoding.implicit) {
      const length = cursor.u32()
      const vr = dictionaryVr(t) ?? (length === UNDEFINED ? 'SQ' : 'UN')
      return { vr, length }
    }
    const vr = cursor.bytes(2).toString('latin1')
    if (!KNOWN_VRS.has(vr)) throw new DicomMalformedError(`element ${formatTag(t)} at byte ${cursor.position - 6} has no valid VR (${JSON.stringify(vr)})`)
    if (LONG_VRS.has(vr)) {
      cursor.skip(2)
      return { vr, length: cursor.u32() }
    }
    return { vr, length: cursor.u16() }
  }

  /** Every element and item costs: a hostile file of millions of empty items must not cost memory. */
  private checkBudget (): void {
    if (++this.elements > this.maxElements) throw new DicomHeaderTooLargeError(`more than ${this.maxElements} elements before pixel data`)
    if (this.cursor.position > this.maxHeaderBytes) throw new DicomHeaderTooLargeError(`no pixel data within the first ${this.maxHeaderBytes} bytes of header`)
  }

  private readElementBody (t: number, encoding: Encoding, depth: number): DataElement {
    this.checkBudget()
    const { vr, length } = this.readVrAndLength(t, encoding)
    if (vr === 'SQ' || (length === UNDEFINED && vr === 'UN')) {
      // An undefined-length UN is a sequence encoded implicit VR little endian (PS3.5 6.2.2).
      const itemEncoding = vr === 'UN' ? { implicit: true, littleEndian: true } : encoding
      return { vr: 'SQ', length: length === UNDEFINED ? undefined : length, items: this.readSequence(length, itemEncoding, depth + 1) }
    }
    if (length === UNDEFINED) throw new DicomMalformedError(`element ${formatTag(t)} has undefined length but is not a sequence`)
    if (length > this.maxValueBytes) {
      const offset = this.cursor.position
      this.cursor.skip(length)
      return { vr, length, offset }
    }
    return { vr, length, value: Buffer.from(this.cursor.bytes(length)) }
  }

  private readSequence (length: number, encoding: Encoding, depth: number): Dataset[] {
    if (depth > this.maxDepth) throw new DicomMalformedError(`sequences nest deeper than ${this.maxDepth}`)
    const cursor = this.cursor
    const end = length === UNDEFINED ? Infinity : cursor.position + length
    if (end !== Infinity && end > cursor.size) throw new DicomTruncatedError(`a sequence runs past the end of the file (${end} > ${cursor.size})`)
    const items: Dataset[] = []
    while (cursor.position < end) {
      this.checkBudget()
      cursor.littleEndian = encoding.littleEndian
      const t = this.readTag()
      const itemLength = cursor.u32()
      if (t === SEQUENCE_END) break
      if (t !== ITEM) throw new DicomMalformedError(`expected a sequence item, found ${formatTag(t)} at byte ${cursor.position - 8}`)
      items.push(this.readItem(itemLength, encoding, depth))
    }
    return items
  }

  private readItem (length: number, encoding: Encoding, depth: number): Dataset {
    const cursor = this.cursor
    const item: Dataset = new Map()
    const end = length === UNDEFINED ? Infinity : cursor.position + length
    while (cursor.position < end) {
      this.checkBudget()
      cursor.littleEndian = encoding.littleEndian
      const t = this.readTag()
      if (t === ITEM_END) {
        cursor.u32()
        break
      }
      item.set(t, this.readElementBody(t, encoding, depth))
    }
    if (end !== Infinity && cursor.position !== end) throw new DicomMalformedError('a sequence item\'s elements overrun its declared length')
    return item
  }

  private notePixelData (encoding: Encoding): void {
    const { length } = this.readVrAndLength(PIXEL_DATA, encoding)
    this.pixelDataOffset = this.cursor.position
    // A deflated stream has no size to check against: inflating pixel data is left to who needs it.
    if (this.cursor.size === Infinity) {
      if (length !== UNDEFINED) this.pixelDataLength = length
    } else if (length === UNDEFINED) {
      this.checkFragments()
    } else {
      this.pixelDataLength = length
      this.cursor.skip(length)
    }
  }

  /** Encapsulated pixel data: walk the fragment items (headers only) to prove the file is whole. */
  private checkFragments (): void {
    const cursor = this.cursor
    cursor.littleEndian = true
    for (;;) {
      const t = this.readTag()
      const length = cursor.u32()
      if (t === SEQUENCE_END) return
      if (t !== ITEM || length === UNDEFINED) throw new DicomMalformedError(`encapsulated pixel data holds ${formatTag(t)} where a fragment belongs`)
      cursor.skip(length)
    }
  }
}

export function formatTag (t: number): string {
  const hex = (t >>> 0).toString(16).toUpperCase().padStart(8, '0')
  return `(${hex.slice(0, 4)},${hex.slice(4)})`
}

/** The bytes that decide whether a file can be DICOM at all: preamble, 'DICM' and one element's tag, VR and length. */
export const OPENING_BYTES = 140

/** How a file that can be DICOM opens: with File Meta Information (after a preamble or not), or as a bare dataset. */
export type Opening =
  | { hasPreamble: boolean, meta: true }
  | { hasPreamble: false, meta: false, bare: Encoding }

/**
 * The one rule for "not DICOM", where a file lies (readHeader) and on an upload's first bytes as they
 * arrive: `opening` is the file's first OPENING_BYTES, or all of it when it is shorter. Throws
 * NotDicomError (or DicomMalformedError for a preamble without File Meta) when the file cannot be one.
 */
export function checkOpening (opening: Uint8Array): Opening {
  const bytes = Buffer.from(opening.buffer, opening.byteOffset, Math.min(opening.byteLength, OPENING_BYTES))
  const hasPreamble = bytes.length >= 132 && bytes.subarray(128, 132).toString('latin1') === 'DICM'
  const start = hasPreamble ? 132 : 0
  if (bytes.length - start < 8) throw new NotDicomError(bytes.length === 0 ? 'the file is empty' : 'not DICOM: too short to hold a single element')
  const startsWithMeta = bytes.readUInt16LE(start) === 0x0002
  if (startsWithMeta) return { hasPreamble, meta: true }
  if (hasPreamble) throw new DicomMalformedError('the file has a DICM preamble but no File Meta Information')
  return { hasPreamble: false, meta: false, bare: sniffBareDataset(bytes.subarray(0, 8)) }
}

/** Guesses the encoding of a bare dataset (no preamble, no meta) from its first element. */
function sniffBareDataset (first: Buffer): Encoding {
  const groupLE = first.readUInt16LE(0)
  const groupBE = first.readUInt16BE(0)
  const vr = first.subarray(4, 6).toString('latin1')
  const explicit = KNOWN_VRS.has(vr)
  // Bare datasets start with a low group (0008 usually); anything else is not DICOM.
  if (groupLE >= 0x0008 && groupLE <= 0x0028) return { implicit: !explicit, littleEndian: true }
  if (groupBE >= 0x0008 && groupBE <= 0x0028 && explicit) return { implicit: false, littleEndian: false }
  throw new NotDicomError('not DICOM: no preamble, no File Meta Information and no recognisable first element')
}

function encodingOf (transferSyntaxUID: string): Encoding {
  if (transferSyntaxUID === TransferSyntax.ImplicitVRLittleEndian) return { implicit: true, littleEndian: true }
  if (transferSyntaxUID === TransferSyntax.ExplicitVRBigEndian) return { implicit: false, littleEndian: false }
  // Every other transfer syntax, compressed and deflated ones included, encodes the dataset explicit VR little endian.
  return { implicit: false, littleEndian: true }
}

function metaString (meta: Dataset, t: number): string | undefined {
  const value = meta.get(t)?.value
  return value === undefined ? undefined : value.toString('latin1').replace(/[\0 ]+$/, '')
}

/** Reads the header of the DICOM file at `path`: File Meta (if any) and the dataset up to pixel data. */
export function readHeader (path: string, init: ReadHeaderInit = {}): ParsedHeader {
  const fd = openSync(path, 'r')
  try {
    const fileSize = fstatSync(fd).size
    return walkHeader(new FileCursor(fd, fileSize), fileSize, init, (datasetOffset) => new InflatingCursor(fd, fileSize, datasetOffset, init.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES))
  } finally {
    closeSync(fd)
  }
}

/** Thrown by readHeaderFromBytes when the header goes on past the bytes given: read more and call again. */
export class HeaderIncompleteError extends Error {
  constructor () { super('the header goes on past the bytes read so far') }
}

/**
 * The header of a file arriving as a stream, from its first `bytes` (`complete`: they are the whole
 * file). Throws HeaderIncompleteError when the walk needs bytes past them; positions are the file's.
 * A deflated dataset is refused: its header could only be walked by inflating the stream.
 */
export function readHeaderFromBytes (bytes: Buffer, complete: boolean, init: ReadHeaderInit = {}): ParsedHeader {
  const size = complete ? bytes.length : Infinity
  return walkHeader(new PrefixCursor(bytes, complete), size, init, () => {
    throw new DicomUnsupportedError('a deflated dataset cannot be read from a stream here')
  })
}

/** A cursor over the first bytes of a file; past them is truncation when they are all of it, else "read more". */
class PrefixCursor implements ByteCursor {
  readonly size: number
  position = 0
  littleEndian = true
  private readonly buffer: Buffer
  private readonly complete: boolean

  constructor (buffer: Buffer, complete: boolean) {
    this.buffer = buffer
    this.complete = complete
    this.size = complete ? buffer.length : Infinity
  }

  /** Exact when complete; else at least 8 (all the walk asks about) or "read more". */
  remaining (): number {
    const left = this.buffer.length - this.position
    if (!this.complete && left < 8) throw new HeaderIncompleteError()
    return left
  }

  bytes (length: number): Buffer {
    const out = this.peek(length)
    this.position += length
    return out
  }

  peek (length: number): Buffer {
    this.need(length)
    return this.buffer.subarray(this.position, this.position + length)
  }

  skip (length: number): void {
    this.need(length)
    this.position += length
  }

  u16 (): number {
    const b = this.bytes(2)
    return this.littleEndian ? b.readUInt16LE(0) : b.readUInt16BE(0)
  }

  u32 (): number {
    const b = this.bytes(4)
    return this.littleEndian ? b.readUInt32LE(0) : b.readUInt32BE(0)
  }

  private need (length: number): void {
    if (this.position + length <= this.buffer.length) return
    if (!this.complete) throw new HeaderIncompleteError()
    throw new DicomTruncatedError(`the file ends at byte ${this.buffer.length}, inside an element that needs ${this.position + length}`)
  }
}

/** The walk common to a file and a stream's first bytes; `inflating` gives the cursor over a deflated dataset. */
function walkHeader (cursor: ByteCursor, fileSize: number, init: ReadHeaderInit, inflating: (datasetOffset: number) => ByteCursor): ParsedHeader {
  try {
    const walker = new HeaderWalker(cursor, init)
    let meta: Dataset | undefined
    let encoding: Encoding
    let transferSyntaxUID: string

    const opening = checkOpening(cursor.peek(Math.min(fileSize, OPENING_BYTES)))
    const hasPreamble = opening.hasPreamble
    if (hasPreamble) cursor.skip(132)
    if (opening.meta) {
      meta = walker.readTopLevel({ implicit: false, littleEndian: true }, true)
      const syntax = metaString(meta, tag(0x0002, 0x0010))
      if (syntax === undefined || syntax === '') throw new DicomMalformedError('the File Meta Information has no Transfer Syntax UID')
      transferSyntaxUID = syntax
      encoding = encodingOf(syntax)
    } else {
      encoding = opening.bare
      transferSyntaxUID = encoding.implicit
        ? TransferSyntax.ImplicitVRLittleEndian
        : encoding.littleEndian ? TransferSyntax.ExplicitVRLittleEndian : TransferSyntax.ExplicitVRBigEndian
    }
    const datasetOffset = cursor.position
    const deflated = transferSyntaxUID === TransferSyntax.DeflatedExplicitVRLittleEndian
    if (deflated) walker.cursor = inflating(datasetOffset)
    const dataset = walker.readTopLevel(encoding)
    return {
      datasetOffset,
      deflated,
      spans: walker.spans,
      headerEnd: walker.headerEnd,
      meta,
      dataset,
      transferSyntaxUID,
      hasPreamble,
      pixelDataOffset: walker.pixelDataOffset,
      pixelDataLength: walker.pixelDataLength,
      fileSize
    }
  } catch (err) {
    // A RangeError from a Buffer read means a length field pointed outside what we have.
    if (err instanceof RangeError) throw new DicomTruncatedError(`the file ends inside an element (${err.message})`)
    throw err
  }
}
