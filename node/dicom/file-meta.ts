/*
 * The Part 10 preamble and File Meta Information (PS3.10 7.1) for a bare dataset: instances that
 * arrived without them (some media, DIMSE) leave the node as proper files.
 */

/** Beeldnet's implementation class UID (a 2.25 UUID-derived UID) and version name. */
export const IMPLEMENTATION_CLASS_UID = '2.25.108349265214365271598763913906372412790'
export const IMPLEMENTATION_VERSION_NAME = 'BEELDNET_0_1'

export interface FileMetaInit {
  sopClassUID: string
  sopInstanceUID: string
  transferSyntaxUID: string
}

function element (group: number, elementNumber: number, vr: string, value: Buffer): Buffer {
  const long = vr === 'OB'
  const head = Buffer.alloc(long ? 12 : 8)
  head.writeUInt16LE(group, 0)
  head.writeUInt16LE(elementNumber, 2)
  head.write(vr, 4, 'latin1')
  if (long) head.writeUInt32LE(value.length, 8)
  else head.writeUInt16LE(value.length, 6)
  return Buffer.concat([head, value])
}

/** UIs are padded with NUL, other strings with a space, to an even length. */
function text (value: string, pad: '\0' | ' '): Buffer {
  return Buffer.from(value.length % 2 === 0 ? value : value + pad, 'latin1')
}

/** 128-byte preamble, 'DICM' and group 0002 (explicit VR little endian), ready to put before the dataset. */
export function fileMetaInformation (init: FileMetaInit): Buffer {
  const body = Buffer.concat([
    element(0x0002, 0x0001, 'OB', Buffer.from([0x00, 0x01])),
    element(0x0002, 0x0002, 'UI', text(init.sopClassUID, '\0')),
    element(0x0002, 0x0003, 'UI', text(init.sopInstanceUID, '\0')),
    element(0x0002, 0x0010, 'UI', text(init.transferSyntaxUID, '\0')),
    element(0x0002, 0x0012, 'UI', text(IMPLEMENTATION_CLASS_UID, '\0')),
    element(0x0002, 0x0013, 'SH', text(IMPLEMENTATION_VERSION_NAME, ' '))
  ])
  const length = Buffer.alloc(4)
  length.writeUInt32LE(body.length, 0)
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), element(0x0002, 0x0000, 'UL', length), body])
}
