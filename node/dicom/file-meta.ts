import { encodeElement } from './element-writer.ts'
import { tag } from './tags.ts'

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

/** 128-byte preamble, 'DICM' and group 0002 (explicit VR little endian), ready to put before the dataset. */
export function fileMetaInformation (init: FileMetaInit): Buffer {
  const body = Buffer.concat([
    encodeElement(tag(0x0002, 0x0001), 'OB', Buffer.from([0x00, 0x01])),
    encodeElement(tag(0x0002, 0x0002), 'UI', init.sopClassUID),
    encodeElement(tag(0x0002, 0x0003), 'UI', init.sopInstanceUID),
    encodeElement(tag(0x0002, 0x0010), 'UI', init.transferSyntaxUID),
    encodeElement(tag(0x0002, 0x0012), 'UI', IMPLEMENTATION_CLASS_UID),
    encodeElement(tag(0x0002, 0x0013), 'SH', IMPLEMENTATION_VERSION_NAME)
  ])
  const length = Buffer.alloc(4)
  length.writeUInt32LE(body.length, 0)
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), encodeElement(tag(0x0002, 0x0000), 'UL', length), body])
}
