/*
 * Whole upper-layer PDUs (PS3.8 9.3: type, reserved, 32-bit length, body) out of a socket's chunks.
 * dcmjs-dimse gathers a PDU by concatenating every chunk onto what it has so far: a 256 KiB P-DATA
 * arriving in 64 KiB reads is copied about 2.5 times over, in buffers that each become garbage.
 * Given whole PDUs, it takes them as they are. Here a PDU lying whole in one chunk is passed on as
 * a view of that chunk, and one spread over chunks is copied once into a buffer of its own size.
 */

const HEADER_BYTES = 6

export class PduTooLargeError extends Error {}

export class PduAssembler {
  private readonly deliver: (pdu: Buffer) => void
  private readonly maxPduBytes: number
  /** the first bytes of a header split across chunks */
  private head: Buffer | undefined
  /** the PDU being filled, and how much of it is there */
  private filling: Buffer | undefined
  private filled = 0

  /** `maxPduBytes`: the largest PDU body taken; a larger length is a broken or hostile peer. */
  constructor (deliver: (pdu: Buffer) => void, maxPduBytes: number) {
    this.deliver = deliver
    this.maxPduBytes = maxPduBytes
  }

  /** Takes one chunk read from the socket; delivers every PDU it completes, in order. */
  push (chunk: Buffer): void {
    let at = 0
    while (at < chunk.length) {
      if (this.filling !== undefined) {
        const n = Math.min(chunk.length - at, this.filling.length - this.filled)
        chunk.copy(this.filling, this.filled, at, at + n)
        this.filled += n
        at += n
        if (this.filled === this.filling.length) {
          const pdu = this.filling
          this.filling = undefined
          this.deliver(pdu)
        }
        continue
      }
      if (this.head !== undefined || chunk.length - at < HEADER_BYTES) {
        // A header split across chunks: its six bytes are gathered first.
        const have = this.head ?? Buffer.alloc(0)
        const take = Math.min(HEADER_BYTES - have.length, chunk.length - at)
        this.head = Buffer.concat([have, chunk.subarray(at, at + take)])
        at += take
        if (this.head.length < HEADER_BYTES) return
        const head = this.head
        this.head = undefined
        this.start(head, 0)
        continue
      }
      const end = at + HEADER_BYTES + this.bodyLength(chunk, at)
      if (end <= chunk.length) {
        this.deliver(chunk.subarray(at, end))
        at = end
        continue
      }
      this.start(chunk, at)
      at += HEADER_BYTES
    }
  }

  /** Starts filling the PDU whose header is at `at` of `bytes` (or delivers it, when it has no body). */
  private start (bytes: Buffer, at: number): void {
    const length = this.bodyLength(bytes, at)
    if (length === 0) {
      this.deliver(Buffer.from(bytes.subarray(at, at + HEADER_BYTES)))
      return
    }
    this.filling = Buffer.allocUnsafe(HEADER_BYTES + length)
    bytes.copy(this.filling, 0, at, at + HEADER_BYTES)
    this.filled = HEADER_BYTES
  }

  private bodyLength (bytes: Buffer, at: number): number {
    const length = bytes.readUInt32BE(at + 2)
    if (length > this.maxPduBytes) throw new PduTooLargeError(`a PDU of ${length} bytes, more than the ${this.maxPduBytes} this node takes`)
    return length
  }
}
