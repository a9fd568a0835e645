/*
 * The upper-layer PDUs (PS3.8 9.3) of one association, read from the socket's chunks and handed
 * to the DIMSE library, except the bytes of a C-STORE's dataset, which go straight to the store.
 *
 * dcmjs-dimse gathers a PDU by concatenating every chunk onto what it has so far, then parses it
 * into objects and writes each fragment on: per 16 KiB P-DATA (dcmtk's default PDU size) that
 * costs more than storing the bytes. Here a PDU is read as it arrives. A dataset fragment of the
 * C-STORE being received goes to its sink as views of the socket's chunks, never copied; when it
 * is the last, the library gets an empty last fragment, so it ends the dataset and answers as
 * before. A command set that comes whole in one PDV may be taken by the caller instead (the
 * node takes C-STORE-RQs: then the dataset's sink finishes it, and the library never hears of it).
 * Everything else (association PDUs, other commands, the first fragment of a dataset the library
 * began, which makes it open the sink, C-FIND and C-MOVE identifiers) reaches the library as whole
 * PDUs of one PDV each, copied once.
 */

const HEADER_BYTES = 6
const PDV_HEADER_BYTES = 6
const P_DATA = 0x04

export class PduProtocolError extends Error {}

/** Where a C-STORE's dataset bytes go; `finish`, if there, is told of the last fragment instead of the library. */
export interface StoreSink {
  write: (bytes: Buffer) => unknown
  finish?: () => void
}

export interface PduRoute {
  /** gives the library one whole PDU */
  library: (pdu: Buffer) => void
  /** where dataset bytes of the C-STORE being received go directly, if one is being received */
  storeSink: () => StoreSink | undefined
  /** offered a command set that came whole in one PDV; true when taken (the library then never sees it) */
  command?: (contextId: number, bytes: Buffer) => boolean
}

export class PduRouter {
  private readonly route: PduRoute
  private readonly maxPduBytes: number
  /** a PDU or PDV header split across chunks */
  private head: Buffer | undefined
  /** a PDU being gathered for the library, and how much of it is there */
  private filling: Buffer | undefined
  private filled = 0
  /** after a non-P-DATA PDU is gathered: nothing more; in a P-DATA: bytes of it not yet read */
  private pduLeft = 0
  /** the PDV being read: bytes of its data left, and where they go */
  private pdv: { left: number, contextId: number, command: boolean, last: boolean, first: boolean, sink: StoreSink | undefined } | undefined
  /** whether the last PDV read ended its command or dataset (so the next one is a first fragment) */
  private ended = true

  /** `maxPduBytes`: the largest PDU body taken; a larger length is a broken or hostile peer. */
  constructor (route: PduRoute, maxPduBytes: number) {
    this.route = route
    this.maxPduBytes = maxPduBytes
  }

  /** Takes one chunk read from the socket. Throws PduProtocolError for bytes that are not PDUs. */
  push (chunk: Buffer): void {
    let at = 0
    while (at < chunk.length) {
      if (this.pdv !== undefined) {
        at = this.pdvData(chunk, at)
        continue
      }
      if (this.filling !== undefined && this.pduLeft === 0) {
        // A whole non-P-DATA PDU being gathered.
        at = this.fill(chunk, at)
        continue
      }
      const inPData = this.pduLeft > 0
      const need = inPData ? PDV_HEADER_BYTES : HEADER_BYTES
      const header = this.header(chunk, at, need)
      at = header.at
      if (header.bytes === undefined) return
      if (inPData) this.startPdv(header.bytes)
      else this.startPdu(header.bytes)
    }
  }

  /** `need` header bytes from `at` on (gathered across chunks when split), or undefined for now. */
  private header (chunk: Buffer, at: number, need: number): { bytes: Buffer | undefined, at: number } {
    if (this.head === undefined && chunk.length - at >= need) return { bytes: chunk.subarray(at, at + need), at: at + need }
    const have = this.head ?? Buffer.alloc(0)
    const take = Math.min(need - have.length, chunk.length - at)
    this.head = Buffer.concat([have, chunk.subarray(at, at + take)])
    if (this.head.length < need) return { bytes: undefined, at: at + take }
    const bytes = this.head
    this.head = undefined
    return { bytes, at: at + take }
  }

  private startPdu (header: Buffer): void {
    const type = header.readUInt8(0)
    const length = header.readUInt32BE(2)
    if (length > this.maxPduBytes) throw new PduProtocolError(`a PDU of ${length} bytes, more than the ${this.maxPduBytes} this node takes`)
    if (type === P_DATA && length > 0) {
      this.pduLeft = length
      return
    }
    this.filling = Buffer.allocUnsafe(HEADER_BYTES + length)
    header.copy(this.filling, 0)
    this.filled = HEADER_BYTES
    if (length === 0) this.deliverFilled()
  }

  private startPdv (header: Buffer): void {
    const length = header.readUInt32BE(0)
    if (length < 2 || length + 4 > this.pduLeft) throw new PduProtocolError(`a PDV item of ${length} bytes in a P-DATA with ${this.pduLeft} bytes left`)
    this.pduLeft -= length + 4
    const contextId = header.readUInt8(4)
    const control = header.readUInt8(5)
    const command = (control & 0x01) !== 0
    const last = (control & 0x02) !== 0
    const sink = command ? undefined : this.route.storeSink()
    this.pdv = { left: length - 2, contextId, command, last, first: this.ended, sink }
    this.ended = last
    if (sink === undefined) {
      // For the library: a P-DATA of this PDV alone.
      this.filling = Buffer.allocUnsafe(HEADER_BYTES + PDV_HEADER_BYTES + length - 2)
      this.filling.writeUInt8(P_DATA, 0)
      this.filling.writeUInt8(0, 1)
      this.filling.writeUInt32BE(PDV_HEADER_BYTES + length - 2, 2)
      header.copy(this.filling, HEADER_BYTES)
      this.filled = HEADER_BYTES + PDV_HEADER_BYTES
    }
    if (this.pdv.left === 0) this.endPdv()
  }

  private pdvData (chunk: Buffer, at: number): number {
    const pdv = this.pdv!
    const n = Math.min(chunk.length - at, pdv.left)
    if (pdv.sink !== undefined) pdv.sink.write(chunk.subarray(at, at + n))
    else chunk.copy(this.filling!, this.filled, at, at + n)
    this.filled += pdv.sink === undefined ? n : 0
    pdv.left -= n
    if (pdv.left === 0) this.endPdv()
    return at + n
  }

  private endPdv (): void {
    const pdv = this.pdv!
    this.pdv = undefined
    if (pdv.sink === undefined) {
      if (pdv.command && pdv.first && pdv.last && this.route.command?.(pdv.contextId, this.filling!.subarray(HEADER_BYTES + PDV_HEADER_BYTES)) === true) {
        this.filling = undefined
        this.filled = 0
        return
      }
      this.deliverFilled()
      return
    }
    if (!pdv.last) return
    // The dataset is whole: its C-STORE is answered by whoever began it. The library ends a
    // dataset on a last fragment: it gets an empty one.
    if (pdv.sink.finish !== undefined) pdv.sink.finish()
    else this.route.library(Buffer.from([P_DATA, 0, 0, 0, 0, PDV_HEADER_BYTES, 0, 0, 0, 2, pdv.contextId, 0x02]))
  }

  private fill (chunk: Buffer, at: number): number {
    const n = Math.min(chunk.length - at, this.filling!.length - this.filled)
    chunk.copy(this.filling!, this.filled, at, at + n)
    this.filled += n
    if (this.filled === this.filling!.length) this.deliverFilled()
    return at + n
  }

  private deliverFilled (): void {
    const pdu = this.filling!
    this.filling = undefined
    this.filled = 0
    this.route.library(pdu)
  }
}
