/*
 * Hand-built DICOM bytes for tests that need files no honest generator makes: hostile structures,
 * unsupported encodings. Explicit VR little endian only.
 */

const LONG = new Set(['OB', 'OW', 'SQ', 'UN', 'UT', 'UC', 'UR'])

export function element (group: number, elem: number, vr: string, value: Buffer | string, length?: number): Buffer {
  let bytes = typeof value === 'string' ? Buffer.from(value, 'latin1') : value
  if (bytes.length % 2 === 1) bytes = Buffer.concat([bytes, Buffer.from(vr === 'UI' ? [0] : [0x20])])
  const head = Buffer.alloc(LONG.has(vr) ? 12 : 8)
  head.writeUInt16LE(group, 0)
  head.writeUInt16LE(elem, 2)
  head.write(vr, 4, 'latin1')
  if (LONG.has(vr)) head.writeUInt32LE(length ?? bytes.length, 8)
  else head.writeUInt16LE(length ?? bytes.length, 6)
  return Buffer.concat([head, bytes])
}

/** Preamble, DICM and a File Meta group naming `transferSyntaxUID`, followed by `dataset`. */
export function part10 (transferSyntaxUID: string, dataset: Buffer): Buffer {
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), element(0x0002, 0x0010, 'UI', transferSyntaxUID), dataset])
}

/** The four UIDs every instance must have, so only the thing under test is wrong. */
export function uidElements (): Buffer {
  return Buffer.concat([
    element(0x0008, 0x0016, 'UI', '1.2.840.10008.5.1.4.1.1.7'),
    element(0x0008, 0x0018, 'UI', '1.2.3.4.5.6.7.8'),
    element(0x0020, 0x000D, 'UI', '1.2.3.4.5.6'),
    element(0x0020, 0x000E, 'UI', '1.2.3.4.5.6.7')
  ])
}

export function itemHeader (length: number): Buffer {
  const b = Buffer.alloc(8)
  b.writeUInt16LE(0xFFFE, 0)
  b.writeUInt16LE(0xE000, 2)
  b.writeUInt32LE(length, 4)
  return b
}
