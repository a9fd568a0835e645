import { createReadStream, createWriteStream } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { HeaderIncompleteError, readHeaderFromBytes, type DataElement, type Dataset, type ParsedHeader } from '../dicom/dataset-reader.ts'
import { elementHeader, encodeElement, encodeSequence, sequenceItem } from '../dicom/element-writer.ts'
import { fileMetaInformation } from '../dicom/file-meta.ts'
import { Tags, TransferSyntax, tag } from '../dicom/tags.ts'
import { DicomHeaderTooLargeError, DicomMalformedError, DicomMissingUidError, DicomTruncatedError, DicomUnsupportedError } from '../errors.ts'
import { burnedInRisk } from './burned-in.ts'
import type { DeidentificationMap } from './deidentification-map.ts'
import { BurnedInAnnotationError } from './errors.ts'
import { describeProfile, methodCodes, type DeidentifyProfile, type MethodCode } from './options.ts'
import { PROFILE_TABLE_EDITION } from './profile-table.ts'
import { createRules, type Resolved, type Rule } from './rules.ts'
import { TEXT_VRS, cleanText, dummyValue } from './values.ts'

/*
 * One instance de-identified by PS3.15 Annex E as it streams: the header (everything before pixel
 * data, at most `maxHeaderBytes`) is read from the first bytes of the source and rewritten by Table
 * E.1-1, sequences item by item; then the pixel data element is copied through unchanged, chunk by
 * chunk, so memory stays flat whatever the instance's size. Elements after pixel data (Data Set
 * Trailing Padding, Digital Signatures, private ones: all X) are read and dropped. The output is a
 * Part 10 file in the source's transfer syntax with a new File Meta whose Media Storage SOP Instance
 * UID is the new SOP Instance UID. Big endian and deflated datasets are refused (DICOM_UNSUPPORTED).
 */

export interface PrivateTag {
  /** the odd group */
  group: number
  /** the private creator the block is reserved for (0010-00FF element's value) */
  creator: string
  /** the element within the block (the low byte, 0x00-0xFF) */
  element: number
}

export interface DeidentifyInit {
  profile: DeidentifyProfile
  /** the run's replacements: one map for every instance of an export, so references stay consistent */
  map: DeidentificationMap
  /** private attributes to keep (default none: every private attribute is removed) */
  allowPrivate?: readonly PrivateTag[]
  /** a person who has checked the pixels for burned-in text and takes responsibility */
  confirmBurnedIn?: { by: string }
  /** the most header read before pixel data (default 64 MiB) */
  maxHeaderBytes?: number
}

export type ActionCounts = Record<Resolved, number>

/** What de-identifying one instance did, for the caller to keep with the original's audit record. */
export interface InstanceDeidentificationRecord {
  /** e.g. 'basic,retain-dates' */
  profile: string
  table: string
  methodCodes: MethodCode[]
  original: { sopInstanceUID: string, seriesInstanceUID: string, studyInstanceUID: string }
  sopClassUID: string
  sopInstanceUID: string
  seriesInstanceUID: string
  studyInstanceUID: string
  transferSyntaxUID: string
  /** attributes acted on by Table E.1-1, nested ones included */
  counts: ActionCounts
  /** each action's attributes, as '(gggg,eeee)', once each */
  attributes: Record<Resolved, string[]>
  privateRemoved: number
  /** allow-listed private attributes kept, as '(gggg,eeee)' */
  privateKept: string[]
  /** bytes after pixel data dropped (known once the output has been read to its end) */
  trailingBytesRemoved: number
  burnedInAnnotation?: { reason: string, confirmedBy: string }
}

export interface DeidentifiedInstance {
  readonly record: InstanceDeidentificationRecord
  /** the new file: preamble, File Meta and header, then pixel data as it streams from the source */
  readonly bytes: AsyncIterable<Buffer>
  /** lets go of the source without reading it (after a refusal elsewhere, or when not wanted) */
  close: () => Promise<void>
}

const UNDEFINED = 0xFFFFFFFF
const ITEM = tag(0xFFFE, 0xE000)
const SEQUENCE_END = tag(0xFFFE, 0xE0DD)
/** Float, Double Float and Pixel Data: the bulk elements the header walk stops at, copied as they are. */
const PIXEL_TAGS = new Set([tag(0x7FE0, 0x0008), tag(0x7FE0, 0x0009), tag(0x7FE0, 0x0010)])
const PatientIdentityRemoved = tag(0x0012, 0x0062)
const DeidentificationMethod = tag(0x0012, 0x0063)
const DeidentificationMethodCodeSequence = tag(0x0012, 0x0064)
const LongitudinalTemporalInformationModified = tag(0x0028, 0x0303)
const CodeValue = tag(0x0008, 0x0100)
const CodingSchemeDesignator = tag(0x0008, 0x0102)
/** Attributes whose values are looked for in descriptors under Clean Descriptors. */
const IDENTIFYING = [
  Tags.PatientName, Tags.PatientID, tag(0x0010, 0x1000), tag(0x0010, 0x1001), tag(0x0010, 0x1060), Tags.PatientBirthDate,
  Tags.AccessionNumber, Tags.ReferringPhysicianName, tag(0x0008, 0x1050), tag(0x0008, 0x1070), tag(0x0008, 0x1060),
  tag(0x0008, 0x0080), tag(0x0008, 0x0081), tag(0x0008, 0x1010), tag(0x0008, 0x1040), tag(0x0020, 0x0010)
]

/**
 * Reads the header of the instance arriving on `source` and decides: a refusal (burned-in text, an
 * unsupported encoding, a header too large) is thrown before any byte of output exists. The source is
 * read to its end by `bytes`, so a verifying source (the store's) still checks its hash.
 */
export async function deidentifyInstance (source: AsyncIterable<Uint8Array>, init: DeidentifyInit): Promise<DeidentifiedInstance> {
  const input = source[Symbol.asyncIterator]()
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await input.return?.()
  }
  try {
    const { parsed, prefix } = await readPrefix(input, init.maxHeaderBytes ?? 64 * 1024 * 1024)
    if (parsed.transferSyntaxUID === TransferSyntax.ExplicitVRBigEndian) throw new DicomUnsupportedError('de-identifying a big endian dataset is not supported')
    const ds = parsed.dataset
    const original = {
      sopClassUID: requireText(ds, Tags.SOPClassUID, 'SOP Class UID'),
      sopInstanceUID: requireText(ds, Tags.SOPInstanceUID, 'SOP Instance UID'),
      seriesInstanceUID: requireText(ds, Tags.SeriesInstanceUID, 'Series Instance UID'),
      studyInstanceUID: requireText(ds, Tags.StudyInstanceUID, 'Study Instance UID')
    }
    const risk = burnedInRisk(ds)
    if (risk !== undefined && (init.confirmBurnedIn?.by ?? '').trim() === '') throw new BurnedInAnnotationError(original.sopInstanceUID, risk)

    const implicit = parsed.transferSyntaxUID === TransferSyntax.ImplicitVRLittleEndian
    const rewriter = new HeaderRewriter(init, implicit, identifiersOf(ds))
    const header = rewriter.topLevel(ds)
    const record: InstanceDeidentificationRecord = {
      profile: describeProfile(init.profile),
      table: PROFILE_TABLE_EDITION,
      methodCodes: methodCodes(init.profile),
      original: { sopInstanceUID: original.sopInstanceUID, seriesInstanceUID: original.seriesInstanceUID, studyInstanceUID: original.studyInstanceUID },
      sopClassUID: original.sopClassUID,
      sopInstanceUID: init.map.uid(original.sopInstanceUID),
      seriesInstanceUID: init.map.uid(original.seriesInstanceUID),
      studyInstanceUID: init.map.uid(original.studyInstanceUID),
      transferSyntaxUID: parsed.transferSyntaxUID,
      counts: rewriter.counts,
      attributes: Object.fromEntries(Object.entries(rewriter.attributes).map(([a, tags]) => [a, [...tags].sort()])) as Record<Resolved, string[]>,
      privateRemoved: rewriter.privateRemoved,
      privateKept: [...rewriter.privateKept].sort(),
      trailingBytesRemoved: 0,
      ...(risk === undefined ? {} : { burnedInAnnotation: { reason: risk, confirmedBy: init.confirmBurnedIn!.by } })
    }
    const meta = fileMetaInformation({ sopClassUID: original.sopClassUID, sopInstanceUID: record.sopInstanceUID, transferSyntaxUID: parsed.transferSyntaxUID })
    const rest = new ChunkReader(prefix.subarray(parsed.headerEnd), input)
    async function * bytes (): AsyncGenerator<Buffer> {
      try {
        yield Buffer.concat([meta, ...header])
        yield * copyPixelData(rest, implicit, (dropped) => { record.trailingBytesRemoved = dropped })
      } finally {
        await close()
      }
    }
    return { record, bytes: bytes(), close }
  } catch (err) {
    await close()
    throw err
  }
}

/**
 * De-identifies the instance file at `from` into a new file at `to` (written aside, then renamed:
 * complete or absent). Returns the record.
 */
export async function deidentifyFile (from: string, to: string, init: DeidentifyInit): Promise<InstanceDeidentificationRecord> {
  const result = await deidentifyInstance(createReadStream(from, { highWaterMark: 256 * 1024 }), init)
  const partial = `${to}.partial`
  try {
    await pipeline(Readable.from(result.bytes), createWriteStream(partial))
  } catch (err) {
    await rm(partial, { force: true })
    throw err
  }
  await rename(partial, to)
  return result.record
}

/** Reads the source until its header parses (or it ends), doubling what is read between attempts. */
async function readPrefix (input: AsyncIterator<Uint8Array>, maxHeaderBytes: number): Promise<{ parsed: ParsedHeader, prefix: Buffer }> {
  const chunks: Buffer[] = []
  let length = 0
  let complete = false
  let attemptAt = 64 * 1024
  for (;;) {
    while (!complete && length < attemptAt) {
      const next = await input.next()
      if (next.done === true) complete = true
      else {
        chunks.push(Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength))
        length += next.value.byteLength
      }
    }
    const prefix = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length)
    chunks.splice(0, chunks.length, prefix)
    try {
      // Every header value kept (the header is bounded), so nothing needs reading back from the source.
      return { parsed: readHeaderFromBytes(prefix, complete, { maxHeaderBytes, maxValueBytes: maxHeaderBytes }), prefix }
    } catch (err) {
      if (!(err instanceof HeaderIncompleteError)) throw err
      if (length > maxHeaderBytes + 1024 * 1024) throw new DicomHeaderTooLargeError(`no pixel data within the first ${maxHeaderBytes} bytes of header`)
      attemptAt = length * 2
    }
  }
}

/** Rewrites a header's elements by the rules, counting what it did. */
class HeaderRewriter {
  readonly counts: ActionCounts = { D: 0, Z: 0, X: 0, K: 0, C: 0, U: 0 }
  readonly attributes: Record<Resolved, Set<string>> = { D: new Set(), Z: new Set(), X: new Set(), K: new Set(), C: new Set(), U: new Set() }
  privateRemoved = 0
  readonly privateKept = new Set<string>()
  private readonly rules: (t: number) => Rule | undefined
  private readonly init: DeidentifyInit
  private readonly implicit: boolean
  private readonly identifiers: string[]

  constructor (init: DeidentifyInit, implicit: boolean, identifiers: string[]) {
    this.init = init
    this.rules = createRules(init.profile)
    this.implicit = implicit
    this.identifiers = identifiers
  }

  /** The top-level dataset, with the attributes saying it was de-identified and how. */
  topLevel (ds: Dataset): Buffer[] {
    const added = new Map<number, Buffer>()
    const text = (t: number, vr: string, value: string): Buffer => encodeElement(t, vr, value, { implicit: this.implicit, encoding: 'latin1' })
    const codes = methodCodes(this.init.profile)
    added.set(PatientIdentityRemoved, text(PatientIdentityRemoved, 'CS', 'YES'))
    added.set(DeidentificationMethod, text(DeidentificationMethod, 'LO', codes.map((c) => c.meaning.slice(0, 64)).join('\\')))
    added.set(DeidentificationMethodCodeSequence, encodeSequence(DeidentificationMethodCodeSequence, codes.map((c) => sequenceItem([
      text(CodeValue, 'SH', c.value), text(CodingSchemeDesignator, 'SH', c.scheme), text(Tags.CodeMeaning, 'LO', c.meaning)
    ])), this.implicit))
    const retained = this.init.profile.options.includes('retain-dates')
    added.set(LongitudinalTemporalInformationModified, text(LongitudinalTemporalInformationModified, 'CS', retained ? 'UNMODIFIED' : 'REMOVED'))
    return this.dataset(ds, added)
  }

  private dataset (ds: Dataset, added = new Map<number, Buffer>()): Buffer[] {
    const keptPrivate = this.keptPrivate(ds)
    const out = new Map<number, Buffer>()
    for (const [t, element] of ds) {
      if (added.has(t) || (t & 0xFFFF) === 0) continue // group lengths would be wrong after the change
      const name = formatTag(t)
      if (((t >>> 16) & 1) === 1) {
        if (keptPrivate.has(t)) {
          out.set(t, this.keep(t, element))
          if ((t & 0xFF00) !== 0) this.privateKept.add(name)
        } else this.privateRemoved++
        continue
      }
      const rule = this.rules(t)
      if (rule === undefined) {
        out.set(t, this.keep(t, element))
        continue
      }
      this.counts[rule.action]++
      this.attributes[rule.action].add(name)
      const bytes = this.apply(t, element, rule.action)
      if (bytes !== undefined) out.set(t, bytes)
    }
    for (const [t, bytes] of added) out.set(t, bytes)
    return [...out.keys()].sort((a, b) => a - b).map((t) => out.get(t)!)
  }

  private apply (t: number, element: DataElement, action: Resolved): Buffer | undefined {
    const isSequence = element.items !== undefined
    switch (action) {
      case 'X': return undefined
      case 'Z': return isSequence ? encodeSequence(t, [], this.implicit) : elementHeader(t, element.vr, 0, this.implicit)
      case 'K': return this.keep(t, element)
      case 'C':
        if (isSequence || !TEXT_VRS.has(element.vr)) return this.keep(t, element)
        return this.value(t, element.vr, cleanText(element.value ?? Buffer.alloc(0), this.identifiers))
      case 'U':
        if (isSequence) return this.keep(t, element)
        return this.value(t, 'UI', this.uids(element))
      case 'D':
        // A sequence's dummy is the sequence itself, every item cleaned by the table.
        if (isSequence) return this.keep(t, element)
        if (element.vr === 'UI') return this.value(t, 'UI', this.uids(element))
        if (t === Tags.PatientID) return this.value(t, element.vr, Buffer.from(this.init.map.patientId(textOf(element)), 'latin1'))
        return this.value(t, element.vr, dummyValue(element.vr))
    }
  }

  /** An element as it was; a sequence's items rewritten by the table all the same (K cleans sequences). */
  private keep (t: number, element: DataElement): Buffer {
    if (element.items !== undefined) return encodeSequence(t, element.items.map((item) => sequenceItem(this.dataset(item))), this.implicit)
    return this.value(t, element.vr, element.value ?? Buffer.alloc(0))
  }

  private value (t: number, vr: string, value: Buffer): Buffer {
    return encodeElement(t, vr, value, { implicit: this.implicit })
  }

  private uids (element: DataElement): Buffer {
    const values = textOf(element).split('\\').map((v) => v.trim())
    return Buffer.from(values.map((v) => v === '' ? '' : this.init.map.uid(v)).join('\\'), 'latin1')
  }

  /** Allow-listed private data elements of this dataset, with the creator elements that reserve their blocks. */
  private keptPrivate (ds: Dataset): Set<number> {
    const kept = new Set<number>()
    const allow = this.init.allowPrivate ?? []
    if (allow.length === 0) return kept
    for (const t of ds.keys()) {
      const group = t >>> 16
      const element = t & 0xFFFF
      if ((group & 1) === 0 || element < 0x1000) continue
      const creatorTag = ((group << 16) | (element >>> 8)) >>> 0
      const creator = ds.get(creatorTag)
      if (creator === undefined) continue
      const name = textOf(creator)
      if (allow.some((a) => a.group === group && a.element === (element & 0xFF) && a.creator.trim() === name)) {
        kept.add(t)
        kept.add(creatorTag)
      }
    }
    return kept
  }
}

/** Values of the identifying attributes (name parts split), looked for in descriptors by Clean Descriptors. */
function identifiersOf (ds: Dataset): string[] {
  const found = new Set<string>()
  const add = (value: string): void => {
    for (const part of value.split(/[\\^=]/)) if (part.trim().length >= 2) found.add(part.trim())
  }
  for (const t of IDENTIFYING) {
    const element = ds.get(t)
    if (element?.value !== undefined) add(textOf(element))
  }
  for (const item of ds.get(Tags.OtherPatientIDsSequence)?.items ?? []) {
    const id = item.get(Tags.PatientID)
    if (id?.value !== undefined) add(textOf(id))
  }
  // Longest first, so a full id is replaced before a part of it.
  return [...found].sort((a, b) => b.length - a.length)
}

function textOf (element: DataElement): string {
  return element.value?.toString('latin1').replace(/[\0 ]+$/, '') ?? ''
}

function requireText (ds: Dataset, t: number, name: string): string {
  const element = ds.get(t)
  const value = element === undefined ? '' : textOf(element).trim()
  if (value === '') throw new DicomMissingUidError(name)
  return value
}

function formatTag (t: number): string {
  const hex = t.toString(16).toUpperCase().padStart(8, '0')
  return `(${hex.slice(0, 4)},${hex.slice(4)})`
}

/** Exactly-sized reads and pass-through over the bytes left in the prefix and the rest of the source. */
class ChunkReader {
  private pending: Buffer
  private readonly input: AsyncIterator<Uint8Array>
  private ended = false

  constructor (first: Buffer, input: AsyncIterator<Uint8Array>) {
    this.pending = first
    this.input = input
  }

  /** `length` bytes, or undefined when the source ends exactly here (and `endOk`). */
  async take (length: number, endOk = false): Promise<Buffer | undefined> {
    while (this.pending.length < length && !this.ended) await this.pull()
    if (this.pending.length < length) {
      if (endOk && this.pending.length === 0) return undefined
      throw new DicomTruncatedError('the instance ends inside its pixel data')
    }
    const out = this.pending.subarray(0, length)
    this.pending = this.pending.subarray(length)
    return out
  }

  /** The next `length` bytes, as they arrive. */
  async * pass (length: number): AsyncGenerator<Buffer> {
    let left = length
    while (left > 0) {
      if (this.pending.length === 0) {
        if (this.ended) throw new DicomTruncatedError('the instance ends inside its pixel data')
        await this.pull()
        continue
      }
      const n = Math.min(left, this.pending.length)
      yield this.pending.subarray(0, n)
      this.pending = this.pending.subarray(n)
      left -= n
    }
  }

  /** Reads the source to its end, dropping the bytes; returns how many. */
  async drain (): Promise<number> {
    let dropped = this.pending.length
    this.pending = Buffer.alloc(0)
    while (!this.ended) {
      await this.pull()
      dropped += this.pending.length
      this.pending = Buffer.alloc(0)
    }
    return dropped
  }

  private async pull (): Promise<void> {
    const next = await this.input.next()
    if (next.done === true) {
      this.ended = true
      return
    }
    const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength)
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
  }
}

/** The pixel data element(s) copied through; whatever follows them is read and dropped. */
async function * copyPixelData (rest: ChunkReader, implicit: boolean, onDropped: (bytes: number) => void): AsyncGenerator<Buffer> {
  for (;;) {
    const head = await rest.take(8, true)
    if (head === undefined) return
    const t = ((head.readUInt16LE(0) << 16) | head.readUInt16LE(2)) >>> 0
    if (!PIXEL_TAGS.has(t)) {
      onDropped(head.length + await rest.drain())
      return
    }
    let header = head
    let length: number
    if (implicit) {
      length = head.readUInt32LE(4)
    } else {
      const vr = head.toString('latin1', 4, 6)
      if (!['OB', 'OW', 'OF', 'OD', 'UN'].includes(vr)) throw new DicomMalformedError(`pixel data with VR ${JSON.stringify(vr)}`)
      const long = (await rest.take(4))!
      header = Buffer.concat([head, long])
      length = long.readUInt32LE(0)
    }
    yield Buffer.from(header)
    if (length !== UNDEFINED) {
      yield * rest.pass(length)
      continue
    }
    // Encapsulated: fragments as items, up to the sequence delimiter.
    for (;;) {
      const item = Buffer.from((await rest.take(8))!)
      yield item
      const it = ((item.readUInt16LE(0) << 16) | item.readUInt16LE(2)) >>> 0
      if (it === SEQUENCE_END) break
      if (it !== ITEM) throw new DicomMalformedError('encapsulated pixel data holds something other than fragments')
      yield * rest.pass(item.readUInt32LE(4))
    }
  }
}
