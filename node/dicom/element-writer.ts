/*
 * Writing DICOM data elements (PS3.5 7.1), little endian: what the node makes itself (File Meta,
 * a wrapped PDF report, a reconciled header). Values are padded to even length as their VR wants.
 */

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT', 'SV', 'UV'])
const UNDEFINED_LENGTH = 0xFFFFFFFF

/** Tag, VR (explicit) and length of an element. */
export function elementHeader (t: number, vr: string, length: number, implicit = false): Buffer {
  const long = !implicit && LONG_VRS.has(vr)
  const head = Buffer.alloc(long ? 12 : 8)
  head.writeUInt16LE(t >>> 16, 0)
  head.writeUInt16LE(t & 0xFFFF, 2)
  if (implicit) {
    head.writeUInt32LE(length, 4)
    return head
  }
  head.write(vr, 4, 'latin1')
  if (long) head.writeUInt32LE(length, 8)
  else head.writeUInt16LE(length, 6)
  return head
}

/** One element; a string value is encoded with `encoding` and padded (UI and OB with NUL, text with a space). */
export function encodeElement (t: number, vr: string, value: Buffer | string, options: { implicit?: boolean, encoding?: BufferEncoding } = {}): Buffer {
  let bytes = typeof value === 'string' ? Buffer.from(value, options.encoding ?? 'utf8') : value
  if (bytes.length % 2 === 1) bytes = Buffer.concat([bytes, Buffer.from([vr === 'UI' || vr === 'OB' || vr === 'UN' ? 0 : 0x20])])
  return Buffer.concat([elementHeader(t, vr, bytes.length, options.implicit), bytes])
}

/** A sequence item of undefined length, ended by an item delimiter. */
export function sequenceItem (content: Buffer[]): Buffer {
  const head = Buffer.alloc(8)
  head.writeUInt16LE(0xFFFE, 0)
  head.writeUInt16LE(0xE000, 2)
  head.writeUInt32LE(UNDEFINED_LENGTH, 4)
  return Buffer.concat([head, ...content, Buffer.from([0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0])])
}

/** A sequence of undefined length: raw items (already encoded), ended by a sequence delimiter. */
export function encodeSequence (t: number, items: Buffer[], implicit = false): Buffer {
  return Buffer.concat([elementHeader(t, 'SQ', UNDEFINED_LENGTH, implicit), ...items, Buffer.from([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0])])
}
