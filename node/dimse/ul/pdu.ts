import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from '../../dicom/file-meta.ts'

/*
 * The DICOM upper layer PDUs (PS3.8 9.3) a C-STORE SCU needs: association request and its answers,
 * P-DATA, release and abort, plus the implicit VR command sets of C-STORE (PS3.7 9.3.1). Ours
 * because the DIMSE library sends a dataset from one buffer; this sends it from the disk in PDUs.
 */

export const PduType = { associateRq: 0x01, associateAc: 0x02, associateRj: 0x03, pData: 0x04, releaseRq: 0x05, releaseRp: 0x06, abort: 0x07 } as const

const APPLICATION_CONTEXT = '1.2.840.10008.3.1.1.1'
/** What we announce we can receive: our answers are small. */
const OUR_MAX_PDU = 64 * 1024

export interface ProposedContext { id: number, abstractSyntax: string, transferSyntax: string }

function item (type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(4)
  head.writeUInt8(type, 0)
  head.writeUInt16BE(body.length, 2)
  return Buffer.concat([head, body])
}

function aeTitle (title: string): Buffer {
  return Buffer.from(title.padEnd(16, ' ').slice(0, 16), 'latin1')
}

export function pdu (type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(6)
  head.writeUInt8(type, 0)
  head.writeUInt32BE(body.length, 2)
  return Buffer.concat([head, body])
}

export function associateRq (calledAe: string, callingAe: string, contexts: ProposedContext[]): Buffer {
  const fixed = Buffer.alloc(68)
  fixed.writeUInt16BE(1, 0)
  aeTitle(calledAe).copy(fixed, 4)
  aeTitle(callingAe).copy(fixed, 20)
  const maxLength = Buffer.alloc(4)
  maxLength.writeUInt32BE(OUR_MAX_PDU, 0)
  const userInfo = item(0x50, Buffer.concat([
    item(0x51, maxLength),
    item(0x52, Buffer.from(IMPLEMENTATION_CLASS_UID, 'latin1')),
    item(0x55, Buffer.from(IMPLEMENTATION_VERSION_NAME, 'latin1'))
  ]))
  const pcs = contexts.map((c) => item(0x20, Buffer.concat([
    Buffer.from([c.id, 0, 0, 0]),
    item(0x30, Buffer.from(c.abstractSyntax, 'latin1')),
    item(0x40, Buffer.from(c.transferSyntax, 'latin1'))
  ])))
  return pdu(PduType.associateRq, Buffer.concat([fixed, item(0x10, Buffer.from(APPLICATION_CONTEXT, 'latin1')), ...pcs, userInfo]))
}

export interface AssociateAc {
  /** context id -> accepted (result 0) or not */
  accepted: Map<number, boolean>
  /** the most bytes of PDV items one P-DATA may carry to the peer (0: no limit) */
  maxPduLength: number
}

export function parseAssociateAc (body: Buffer): AssociateAc {
  const accepted = new Map<number, boolean>()
  let maxPduLength = 0
  let at = 68
  while (at + 4 <= body.length) {
    const type = body.readUInt8(at)
    const length = body.readUInt16BE(at + 2)
    const value = body.subarray(at + 4, at + 4 + length)
    if (type === 0x21) accepted.set(value.readUInt8(0), value.readUInt8(2) === 0)
    if (type === 0x50) {
      let sub = 0
      while (sub + 4 <= value.length) {
        const subType = value.readUInt8(sub)
        const subLength = value.readUInt16BE(sub + 2)
        if (subType === 0x51 && subLength === 4) maxPduLength = value.readUInt32BE(sub + 4)
        sub += 4 + subLength
      }
    }
    at += 4 + length
  }
  return { accepted, maxPduLength }
}

export function releaseRq (): Buffer {
  return pdu(PduType.releaseRq, Buffer.alloc(4))
}

/** A-ABORT from the service user (source 0), no reason given. */
export function abortPdu (): Buffer {
  return pdu(PduType.abort, Buffer.alloc(4))
}

/** The header of a P-DATA-TF with one PDV of `data` (sent right after it, not copied in): command or dataset fragment, last or not. */
export function pDataHeader (contextId: number, command: boolean, last: boolean, data: Uint8Array): Buffer {
  const head = Buffer.alloc(12)
  head.writeUInt8(PduType.pData, 0)
  head.writeUInt32BE(6 + data.byteLength, 2)
  head.writeUInt32BE(2 + data.byteLength, 6)
  head.writeUInt8(contextId, 10)
  head.writeUInt8((command ? 1 : 0) | (last ? 2 : 0), 11)
  return head
}

/**
 * A dataset as P-DATA-TF PDUs of at most `fragment` bytes, each written (and waited for) through
 * `write`. What is left over after whole fragments is never sent before the next chunk (or the
 * end) comes, so the last fragment goes only once the source has ended without throwing (a source
 * that checks its hash at its end keeps a damaged dataset from ever going out whole).
 */
export async function sendDataset (write: (bytes: Uint8Array) => Promise<void>, contextId: number, fragment: number, dataset: AsyncIterable<Uint8Array>): Promise<void> {
  let carry: Buffer = Buffer.alloc(0)
  for await (const chunk of dataset) {
    let bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    if (carry.length > 0) {
      // Only the carry and the head of the chunk are copied into one fragment, never the whole chunk (a frame).
      const need = fragment - carry.length
      if (bytes.length <= need) {
        carry = Buffer.concat([carry, bytes])
        continue
      }
      const first = Buffer.concat([carry, bytes.subarray(0, need)])
      await write(pDataHeader(contextId, false, false, first))
      await write(first)
      bytes = bytes.subarray(need)
    }
    let at = 0
    while (bytes.length - at > fragment) {
      const piece = bytes.subarray(at, at + fragment)
      await write(pDataHeader(contextId, false, false, piece))
      await write(piece)
      at += fragment
    }
    carry = bytes.subarray(at)
  }
  await write(pDataHeader(contextId, false, true, carry))
  await write(carry)
}

function element (group: number, elementNumber: number, value: Buffer): Buffer {
  const head = Buffer.alloc(8)
  head.writeUInt16LE(group, 0)
  head.writeUInt16LE(elementNumber, 2)
  head.writeUInt32LE(value.length, 4)
  return Buffer.concat([head, value])
}

const uid = (value: string): Buffer => Buffer.from(value.length % 2 === 0 ? value : `${value}\0`, 'latin1')
const us = (value: number): Buffer => { const b = Buffer.alloc(2); b.writeUInt16LE(value, 0); return b }

/** The C-STORE-RQ command set (implicit VR little endian, with its group length). */
export function cStoreRq (messageId: number, sopClassUID: string, sopInstanceUID: string): Buffer {
  const rest = Buffer.concat([
    element(0x0000, 0x0002, uid(sopClassUID)),
    element(0x0000, 0x0100, us(0x0001)),
    element(0x0000, 0x0110, us(messageId)),
    element(0x0000, 0x0700, us(0x0000)),
    element(0x0000, 0x0800, us(0x0000)),
    element(0x0000, 0x1000, uid(sopInstanceUID))
  ])
  const length = Buffer.alloc(4)
  length.writeUInt32LE(rest.length, 0)
  return Buffer.concat([element(0x0000, 0x0000, length), rest])
}

/**
 * The C-STORE-RSP command set (implicit VR little endian, with its group length), PS3.7 9.3.1.2:
 * written here because the DIMSE library encodes every answer through dcmjs, a millisecond each.
 */
export function cStoreRsp (messageIdBeingRespondedTo: number, sopClassUID: string, sopInstanceUID: string, status: number, errorComment?: string): Buffer {
  const rest = Buffer.concat([
    element(0x0000, 0x0002, uid(sopClassUID)),
    element(0x0000, 0x0100, us(0x8001)),
    element(0x0000, 0x0120, us(messageIdBeingRespondedTo)),
    element(0x0000, 0x0800, us(0x0101)),
    element(0x0000, 0x0900, us(status)),
    ...(errorComment === undefined ? [] : [element(0x0000, 0x0902, Buffer.from(errorComment.length % 2 === 0 ? errorComment : `${errorComment} `, 'latin1'))]),
    element(0x0000, 0x1000, uid(sopInstanceUID))
  ])
  const length = Buffer.alloc(4)
  length.writeUInt32LE(rest.length, 0)
  return Buffer.concat([element(0x0000, 0x0000, length), rest])
}

export interface CommandAnswer {
  commandField: number
  messageIdBeingRespondedTo: number
  status: number
  errorComment: string
}

/** Reads the command elements of an answer (C-STORE-RSP) from its command set bytes. */
export function parseCommand (bytes: Buffer): CommandAnswer {
  const answer: CommandAnswer = { commandField: 0, messageIdBeingRespondedTo: -1, status: -1, errorComment: '' }
  let at = 0
  while (at + 8 <= bytes.length) {
    const tagElement = bytes.readUInt16LE(at + 2)
    const length = bytes.readUInt32LE(at + 4)
    const value = bytes.subarray(at + 8, at + 8 + length)
    if (tagElement === 0x0100 && length >= 2) answer.commandField = value.readUInt16LE(0)
    if (tagElement === 0x0120 && length >= 2) answer.messageIdBeingRespondedTo = value.readUInt16LE(0)
    if (tagElement === 0x0900 && length >= 2) answer.status = value.readUInt16LE(0)
    if (tagElement === 0x0902) answer.errorComment = value.toString('latin1').replace(/[\0 ]+$/, '')
    at += 8 + length
  }
  return answer
}

export interface StoreRequest {
  messageId: number
  sopClassUID: string
  sopInstanceUID: string
}

/**
 * The C-STORE-RQ in a command set's bytes (implicit VR little endian, PS3.7 9.3.1.1), or undefined
 * when they hold another command, a C-STORE without a dataset, or cannot be read.
 */
export function parseStoreRq (bytes: Buffer): StoreRequest | undefined {
  let commandField = -1
  let messageId = -1
  let dataSetType = -1
  let sopClassUID: string | undefined
  let sopInstanceUID: string | undefined
  let at = 0
  while (at + 8 <= bytes.length) {
    const group = bytes.readUInt16LE(at)
    const tagElement = bytes.readUInt16LE(at + 2)
    const length = bytes.readUInt32LE(at + 4)
    if (group !== 0x0000 || at + 8 + length > bytes.length) return undefined
    const value = bytes.subarray(at + 8, at + 8 + length)
    const text = (): string => value.toString('latin1').replace(/[\0 ]+$/, '')
    if (tagElement === 0x0100 && length === 2) commandField = value.readUInt16LE(0)
    if (tagElement === 0x0110 && length === 2) messageId = value.readUInt16LE(0)
    if (tagElement === 0x0800 && length === 2) dataSetType = value.readUInt16LE(0)
    if (tagElement === 0x0002) sopClassUID = text()
    if (tagElement === 0x1000) sopInstanceUID = text()
    at += 8 + length
  }
  if (at !== bytes.length || commandField !== 0x0001 || messageId < 0 || dataSetType < 0 || dataSetType === 0x0101) return undefined
  if (sopClassUID === undefined || sopInstanceUID === undefined) return undefined
  return { messageId, sopClassUID, sopInstanceUID }
}

/** Splits a byte stream into whole PDUs (type and body). */
export class PduReader {
  private buffer: Buffer = Buffer.alloc(0)

  push (chunk: Buffer): Array<{ type: number, body: Buffer }> {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk])
    const out: Array<{ type: number, body: Buffer }> = []
    while (this.buffer.length >= 6) {
      const length = this.buffer.readUInt32BE(2)
      if (length > 16 * 1024 * 1024) throw new Error(`the peer sent a PDU of ${length} bytes`)
      if (this.buffer.length < 6 + length) break
      out.push({ type: this.buffer.readUInt8(0), body: this.buffer.subarray(6, 6 + length) })
      this.buffer = this.buffer.subarray(6 + length)
    }
    return out
  }
}

/** The PDVs of a P-DATA-TF body. */
export function pdvsOf (body: Buffer): Array<{ contextId: number, command: boolean, last: boolean, data: Buffer }> {
  const out: Array<{ contextId: number, command: boolean, last: boolean, data: Buffer }> = []
  let at = 0
  while (at + 6 <= body.length) {
    const length = body.readUInt32BE(at)
    const header = body.readUInt8(at + 5)
    out.push({ contextId: body.readUInt8(at + 4), command: (header & 1) === 1, last: (header & 2) === 2, data: body.subarray(at + 6, at + 4 + length) })
    at += 4 + length
  }
  return out
}
