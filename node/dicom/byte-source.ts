import { readSync } from 'node:fs'
import { DicomTruncatedError } from '../errors.ts'

/** What the header walk reads from: a file as it is, or the inflated dataset of a deflated one. */
export interface ByteCursor {
  /** where the bytes end, or Infinity while that is not known (a stream) */
  readonly size: number
  position: number
  littleEndian: boolean
  /** bytes left; a stream answers exactly only near its end, and at least 8 before it */
  remaining (): number
  bytes (length: number): Buffer
  peek (length: number): Buffer
  skip (length: number): void
  u16 (): number
  u32 (): number
}

/**
 * Sequential reader over an open file that reads in windows, so a header can be walked and large
 * values skipped without ever loading the file. Reading past the end of the file is truncation.
 */
export class FileCursor implements ByteCursor {
  readonly size: number
  private readonly fd: number
  private readonly windowSize: number
  private window: Buffer = Buffer.alloc(0)
  private windowStart = 0
  position = 0
  littleEndian = true

  constructor (fd: number, size: number, windowSize = 64 * 1024) {
    this.fd = fd
    this.size = size
    this.windowSize = windowSize
  }

  remaining (): number { return this.size - this.position }

  /** Bytes at the current position, advancing past them. */
  bytes (length: number): Buffer {
    const out = this.peek(length)
    this.position += length
    return out
  }

  /** Bytes at the current position without advancing; throws when the file is shorter. */
  peek (length: number): Buffer {
    if (this.position + length > this.size) throw new DicomTruncatedError(`the file ends at byte ${this.size}, inside an element that needs ${this.position + length}`)
    const offset = this.position - this.windowStart
    if (offset < 0 || offset + length > this.window.length) this.fill(length)
    const start = this.position - this.windowStart
    return this.window.subarray(start, start + length)
  }

  skip (length: number): void {
    if (this.position + length > this.size) throw new DicomTruncatedError(`the file ends at byte ${this.size}, inside an element that needs ${this.position + length}`)
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

  private fill (atLeast: number): void {
    const length = Math.min(Math.max(atLeast, this.windowSize), this.size - this.position)
    const buf = Buffer.allocUnsafe(length)
    let read = 0
    while (read < length) {
      const n = readSync(this.fd, buf, read, length - read, this.position + read)
      if (n === 0) throw new DicomTruncatedError('the file shrank while it was being read')
      read += n
    }
    this.window = buf
    this.windowStart = this.position
  }
}
