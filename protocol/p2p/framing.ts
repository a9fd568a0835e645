import { z } from 'zod'
import { parseDocument } from '../registry/documents.ts'
import { FrameMalformedError, FrameTooLargeError, StreamTruncatedError } from './errors.ts'

/*
 * Every Beeldnet stream carries frames:
 *
 *   +----------------------+---------+------------------+
 *   | length (u32, BE)     | type u8 | payload (length) |
 *   +----------------------+---------+------------------+
 *
 *   control (1)  UTF-8 JSON, at most 64 KiB, validated against the schema the protocol step expects
 *   data    (2)  raw bytes of an instance (or any blob), at most 256 KiB per frame
 *   end     (3)  empty: the data run that started after the last control message is complete
 *   error   (4)  JSON {code, message}: the sender aborts the stream and says why (then resets it)
 *
 * The limits are checked on the header, before a payload byte is buffered, so a peer cannot make a
 * node hold more than one frame's worth of memory by announcing a huge one. Pure bytes in, frames
 * out: this file knows nothing of libp2p.
 */

export const FRAME_HEADER_BYTES = 5
export const FRAME_TYPES = { control: 1, data: 2, end: 3, error: 4 } as const
export type FrameKind = keyof typeof FRAME_TYPES
const KIND_OF: Record<number, FrameKind> = { 1: 'control', 2: 'data', 3: 'end', 4: 'error' }
const SMALL_CHUNK = 256
const STAGING_BYTES = 1024

/** Hard maximum of a control frame's payload. */
export const MAX_CONTROL_BYTES = 64 * 1024
/** Hard maximum of a data frame's payload. */
export const MAX_DATA_FRAME_BYTES = 256 * 1024
/** Hard maximum of an error frame's payload. */
export const MAX_ERROR_BYTES = 4 * 1024
const MAX_ERROR_MESSAGE = 1024

export interface FrameLimits {
  /** largest control payload accepted; at most MAX_CONTROL_BYTES (default MAX_CONTROL_BYTES) */
  maxControlBytes?: number
  /** largest data payload accepted; at most MAX_DATA_FRAME_BYTES (default MAX_DATA_FRAME_BYTES) */
  maxDataBytes?: number
}

export interface RawFrame {
  kind: FrameKind
  payload: Uint8Array
}

/** What an error frame says. Codes are ours in form; a peer's code is reported, never adopted. */
export const ErrorFrame = z.strictObject({
  code: z.string().regex(/^BEELDNET_ERR_[A-Z0-9_]{1,64}$/),
  message: z.string().max(MAX_ERROR_MESSAGE)
})
export type ErrorFrame = z.infer<typeof ErrorFrame>

const utf8 = new TextEncoder()
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

function limitsOf (limits: FrameLimits = {}): Required<FrameLimits> {
  return {
    maxControlBytes: Math.min(limits.maxControlBytes ?? MAX_CONTROL_BYTES, MAX_CONTROL_BYTES),
    maxDataBytes: Math.min(limits.maxDataBytes ?? MAX_DATA_FRAME_BYTES, MAX_DATA_FRAME_BYTES)
  }
}

function maxFor (kind: FrameKind, limits: Required<FrameLimits>): number {
  switch (kind) {
    case 'control': return limits.maxControlBytes
    case 'data': return limits.maxDataBytes
    case 'end': return 0
    case 'error': return MAX_ERROR_BYTES
  }
}

/** One frame as bytes (header and payload in one buffer, so one send() carries it). */
export function encodeFrame (kind: FrameKind, payload: Uint8Array = new Uint8Array(0), limits?: FrameLimits): Uint8Array {
  const max = maxFor(kind, limitsOf(limits))
  if (payload.byteLength > max) throw new FrameTooLargeError(kind, payload.byteLength, max)
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength)
  new DataView(frame.buffer).setUint32(0, payload.byteLength)
  frame[4] = FRAME_TYPES[kind]
  frame.set(payload, FRAME_HEADER_BYTES)
  return frame
}

export function encodeControl (message: unknown, limits?: FrameLimits): Uint8Array {
  return encodeFrame('control', utf8.encode(JSON.stringify(message)), limits)
}

export function encodeData (bytes: Uint8Array, limits?: FrameLimits): Uint8Array {
  return encodeFrame('data', bytes, limits)
}

/**
 * A data frame as its header and the payload itself, uncopied: a sender moving a 256 KiB chunk
 * per frame would otherwise make 256 KiB of garbage per frame just to put 5 bytes in front.
 */
export function encodeDataParts (bytes: Uint8Array, limits?: FrameLimits): [header: Uint8Array, payload: Uint8Array] {
  const max = maxFor('data', limitsOf(limits))
  if (bytes.byteLength > max) throw new FrameTooLargeError('data', bytes.byteLength, max)
  const header = new Uint8Array(FRAME_HEADER_BYTES)
  new DataView(header.buffer).setUint32(0, bytes.byteLength)
  header[4] = FRAME_TYPES.data
  return [header, bytes]
}

export function encodeEnd (): Uint8Array {
  return encodeFrame('end')
}

export function encodeError (code: string, message: string): Uint8Array {
  return encodeFrame('error', utf8.encode(JSON.stringify({ code, message: message.slice(0, MAX_ERROR_MESSAGE) })))
}

function decodeJson (payload: Uint8Array, kind: FrameKind): unknown {
  try {
    return JSON.parse(strictUtf8.decode(payload))
  } catch {
    throw new FrameMalformedError(`a ${kind} frame that is not UTF-8 JSON`)
  }
}

/** A control payload as JSON (not yet checked against a schema). */
export function decodeControl (payload: Uint8Array): unknown {
  return decodeJson(payload, 'control')
}

/** Checks a control message against the schema the protocol step expects (SchemaError, BEELDNET_ERR_SCHEMA). */
export function parseControl<T extends z.ZodType> (schema: T, message: unknown, what: string): z.infer<T> {
  return parseDocument(schema, message, what)
}

export function decodeError (payload: Uint8Array): ErrorFrame {
  const result = ErrorFrame.safeParse(decodeJson(payload, 'error'))
  if (!result.success) throw new FrameMalformedError('an error frame without a valid code and message')
  return result.data
}

export interface FrameDecoder {
  /** appends received bytes (no copy; the caller must not reuse the buffer) */
  push (chunk: Uint8Array): void
  /** the next complete frame, or undefined until more bytes arrive; throws on a bad header */
  next (): RawFrame | undefined
  /** bytes held: complete frames not yet taken plus a partial one */
  readonly bufferedBytes: number
  /** the input ended: throws StreamTruncatedError if part of a frame is left */
  end (): void
}

class DefaultFrameDecoder implements FrameDecoder {
  private readonly limits: Required<FrameLimits>
  private chunks: Uint8Array[] = []
  /** chunks before this index are consumed */
  private head = 0
  /** where small pieces are copied together */
  private staging: { buf: Uint8Array, used: number } | undefined
  private total = 0
  /** the validated header of the frame whose payload is still arriving */
  private pending: { kind: FrameKind, length: number } | undefined

  constructor (limits?: FrameLimits) {
    this.limits = limitsOf(limits)
  }

  get bufferedBytes (): number { return this.total }

  push (chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return
    this.total += chunk.byteLength
    if (chunk.byteLength < SMALL_CHUNK) this.pushSmall(chunk)
    else this.chunks.push(chunk)
  }

  /**
   * Small pieces are copied together: a peer sending a frame a byte at a time must not make us hold
   * a quarter of a million array objects. Views handed out earlier cover bytes already written.
   */
  private pushSmall (chunk: Uint8Array): void {
    const at = this.chunks.length - 1
    const last = this.chunks[at]
    const own = this.staging
    if (own !== undefined && last !== undefined && at >= this.head && last.buffer === own.buf.buffer &&
        last.byteOffset + last.byteLength === own.buf.byteOffset + own.used && own.used + chunk.byteLength <= own.buf.byteLength) {
      own.buf.set(chunk, own.used)
      own.used += chunk.byteLength
      this.chunks[at] = new Uint8Array(own.buf.buffer, last.byteOffset, last.byteLength + chunk.byteLength)
      return
    }
    const buf = new Uint8Array(STAGING_BYTES)
    buf.set(chunk)
    this.staging = { buf, used: chunk.byteLength }
    this.chunks.push(buf.subarray(0, chunk.byteLength))
  }

  next (): RawFrame | undefined {
    if (this.pending === undefined) {
      if (this.total < FRAME_HEADER_BYTES) return undefined
      const header = this.take(FRAME_HEADER_BYTES)
      const length = new DataView(header.buffer, header.byteOffset, FRAME_HEADER_BYTES).getUint32(0)
      const kind = KIND_OF[header[4]!]
      if (kind === undefined) throw new FrameMalformedError(`unknown frame type ${header[4]}`)
      const max = maxFor(kind, this.limits)
      if (length > max) throw new FrameTooLargeError(kind, length, max)
      this.pending = { kind, length }
    }
    if (this.total < this.pending.length) return undefined
    const frame = { kind: this.pending.kind, payload: this.take(this.pending.length) }
    this.pending = undefined
    return frame
  }

  end (): void {
    if (this.pending !== undefined || this.total > 0) {
      throw new StreamTruncatedError(`the stream ended inside a frame (${this.total} bytes of it received)`)
    }
  }

  /** Takes n bytes off the front: a view when they lie in one chunk, a copy when they span chunks. */
  private take (n: number): Uint8Array {
    this.total -= n
    if (n === 0) return new Uint8Array(0)
    const first = this.chunks[this.head]!
    if (first.byteLength >= n) {
      if (first.byteLength === n) this.dropHead()
      else this.chunks[this.head] = first.subarray(n)
      return first.subarray(0, n)
    }
    const out = new Uint8Array(n)
    let filled = 0
    while (filled < n) {
      const chunk = this.chunks[this.head]!
      const part = Math.min(chunk.byteLength, n - filled)
      out.set(chunk.subarray(0, part), filled)
      filled += part
      if (part === chunk.byteLength) this.dropHead()
      else this.chunks[this.head] = chunk.subarray(part)
    }
    return out
  }

  /** An index, not shift(): a peer sending a frame in one-byte pieces must not cost quadratic time. */
  private dropHead (): void {
    this.head++
    if (this.head === this.chunks.length) {
      this.chunks = []
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.head)
      this.head = 0
    }
  }
}

export function createFrameDecoder (limits?: FrameLimits): FrameDecoder {
  return new DefaultFrameDecoder(limits)
}
