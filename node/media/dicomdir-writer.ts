import { elementHeader, encodeElement } from '../dicom/element-writer.ts'
import { fileMetaInformation } from '../dicom/file-meta.ts'
import { SopClass, TransferSyntax, tag } from '../dicom/tags.ts'

/*
 * A DICOMDIR (PS3.10 7.1, PS3.3 F.3 Basic Directory IOD): File Meta, the File-set ID and the
 * Directory Record Sequence, explicit VR little endian with explicit lengths. Records are linked by
 * byte offsets from the start of the file: the root's first and last record (0004,1200/1202), each
 * record's next sibling (0004,1400) and first child (0004,1420), 0 for none. Records are written
 * depth first, each followed by its children, as dcmtk writes them.
 */

/** One encoded data element of a record, kept with its tag so the keys can be put in tag order. */
export interface RecordKey { tag: number, bytes: Buffer }

export interface DirectoryRecord {
  /** Directory Record Type: PATIENT, STUDY, SERIES, IMAGE, SR DOCUMENT, ... */
  type: string
  /** the record's keys (any order; group 0004's own record elements are added here) */
  keys: RecordKey[]
  children: DirectoryRecord[]
}

export interface DicomdirInit {
  /** File-set ID (0004,1130): up to 16 of A-Z 0-9 _ and space */
  fileSetId: string
  /** Media Storage SOP Instance UID of the DICOMDIR itself */
  sopInstanceUID: string
}

const FileSetID = tag(0x0004, 0x1130)
const FirstRootRecord = tag(0x0004, 0x1200)
const LastRootRecord = tag(0x0004, 0x1202)
const FileSetConsistencyFlag = tag(0x0004, 0x1212)
const DirectoryRecordSequence = tag(0x0004, 0x1220)
const NextRecord = tag(0x0004, 0x1400)
const RecordInUseFlag = tag(0x0004, 0x1410)
const LowerLevelRecord = tag(0x0004, 0x1420)
const DirectoryRecordType = tag(0x0004, 0x1430)

/** Where in an encoded record item the values of 0004,1400 and 0004,1420 sit (item header 8, then 8 + 4, then 8 + 2, then 8). */
const NEXT_AT = 8 + 8
const LOWER_AT = 8 + 12 + 10 + 8

function ul (t: number, value = 0): Buffer {
  const v = Buffer.alloc(4)
  v.writeUInt32LE(value, 0)
  return encodeElement(t, 'UL', v)
}

function us (t: number, value: number): Buffer {
  const v = Buffer.alloc(2)
  v.writeUInt16LE(value, 0)
  return encodeElement(t, 'US', v)
}

function encodeRecord (record: DirectoryRecord): Buffer {
  const keys = [...record.keys].sort((a, b) => a.tag - b.tag)
  if (keys.some((k) => k.tag <= DirectoryRecordType)) throw new RangeError('a record key may not be one of the record\'s own elements')
  const content = Buffer.concat([
    ul(NextRecord), us(RecordInUseFlag, 0xFFFF), ul(LowerLevelRecord),
    encodeElement(DirectoryRecordType, 'CS', record.type, { encoding: 'latin1' }),
    ...keys.map((k) => k.bytes)
  ])
  const head = Buffer.alloc(8)
  head.writeUInt16LE(0xFFFE, 0)
  head.writeUInt16LE(0xE000, 2)
  head.writeUInt32LE(content.length, 4)
  return Buffer.concat([head, content])
}

/** The DICOMDIR file's bytes for the tree under `roots` (the PATIENT records). */
export function encodeDicomdir (roots: DirectoryRecord[], init: DicomdirInit): Buffer {
  const meta = fileMetaInformation({ sopClassUID: SopClass.MediaStorageDirectory, sopInstanceUID: init.sopInstanceUID, transferSyntaxUID: TransferSyntax.ExplicitVRLittleEndian })
  const ordered: DirectoryRecord[] = []
  const walk = (records: DirectoryRecord[]): void => { for (const r of records) { ordered.push(r); walk(r.children) } }
  walk(roots)
  const items = ordered.map(encodeRecord)
  const itemsLength = items.reduce((n, b) => n + b.length, 0)
  // The dataset's elements before the records have fixed sizes: the offsets are known before they are filled in.
  const fileSetId = encodeElement(FileSetID, 'CS', init.fileSetId, { encoding: 'latin1' })
  const headLength = meta.length + fileSetId.length + 12 + 12 + 10 + 12
  const offsets = new Map<DirectoryRecord, number>()
  const itemOf = new Map<DirectoryRecord, Buffer>()
  let at = headLength
  ordered.forEach((record, i) => { offsets.set(record, at); itemOf.set(record, items[i]!); at += items[i]!.length })
  if (at > 0xFFFFFFFF) throw new RangeError('a DICOMDIR above 4 GiB cannot be linked by 32-bit offsets')
  const offsetOf = (r: DirectoryRecord | undefined): number => r === undefined ? 0 : offsets.get(r)!
  const link = (records: DirectoryRecord[]): void => {
    records.forEach((record, i) => {
      const item = itemOf.get(record)!
      item.writeUInt32LE(offsetOf(records[i + 1]), NEXT_AT)
      item.writeUInt32LE(offsetOf(record.children[0]), LOWER_AT)
      link(record.children)
    })
  }
  link(roots)
  const out = Buffer.concat([
    meta, fileSetId, ul(FirstRootRecord, offsetOf(roots[0])), ul(LastRootRecord, offsetOf(roots.at(-1))), us(FileSetConsistencyFlag, 0),
    elementHeader(DirectoryRecordSequence, 'SQ', itemsLength), ...items
  ])
  if (out.length !== at) throw new Error('DICOMDIR offsets computed wrongly')
  return out
}
