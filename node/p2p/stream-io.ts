import { once } from 'node:events'
import type { Writable } from 'node:stream'
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import type { z } from 'zod'
import { isBeeldnetError } from '../../protocol/errors.ts'
import { FrameUnexpectedError, RemoteAbortError, StreamTruncatedError } from '../../protocol/p2p/errors.ts'
import {
  createFrameDecoder, decodeControl, decodeError, encodeControl, encodeDataParts, encodeEnd, encodeError, parseControl,
  MAX_CONTROL_BYTES, MAX_DATA_FRAME_BYTES, type FrameDecoder, type FrameLimits, type RawFrame
} from '../../protocol/p2p/framing.ts'
import { DataTooLongError, StreamResetError, StreamStalledError } from './errors.ts'

/*
 * Frames over a libp2p stream, with backpressure both ways (the traps are in docs/dependencies.md):
 *  - receiving: frames are decoded from a buffer that is bounded: above `highWaterMark` the stream
 *    is paused (deferred with queueMicrotask, so yamux stops granting window) and resumed once the
 *    consumer has taken it below `lowWaterMark`. Memory is then at most the peer's window (held
 *    by the paused stream) plus our buffer, whatever the transfer's size.
 *  - the stream is finished only when the peer closed its write side AND the stream's read buffer
 *    is empty: data parked while paused is still delivered.
 *  - sending: after send() returns false we wait for the 'drain' EVENT. stream.onDrain() is not
 *    used: its promise is made once and resolves at once ever after, which queues without bound.
 *  - no frame (or no drain) within `stallTimeoutMs` resets the stream with BEELDNET_ERR_STREAM_STALLED.
 *  - a frame that breaks the rules, a control message that fails its schema, or any error a
 *    caller passes to abort() sends an error frame with the code (best effort) and resets the stream.
 */

export type Frame =
  | { type: 'control', message: unknown }
  | { type: 'data', bytes: Uint8Array }
  | { type: 'end' }

export interface FramedStreamInit extends FrameLimits {
  /** reading waits at most this long for a frame, writing for a drain, before resetting the stream (default 30_000) */
  stallTimeoutMs?: number
  /** decoded-but-unread bytes above which the stream is paused; at least two of the largest frames (default 512 KiB) */
  highWaterMark?: number
  /** the stream is resumed when the unread bytes fall below this (default highWaterMark / 2) */
  lowWaterMark?: number
}

export interface FramedStreamStats {
  /** decoded-but-unread bytes held now */
  bufferedBytes: number
  /** the most ever held */
  maxBufferedBytes: number
  /** times the stream was paused because the consumer was behind */
  pauses: number
  /** times a write waited for 'drain' */
  drainWaits: number
  /** the stream's largest write buffer seen right after a send */
  maxWriteBufferBytes: number
  bytesRead: number
  bytesWritten: number
}

export interface FramedStream extends AsyncIterable<Frame> {
  readonly stream: Stream
  readonly stats: FramedStreamStats
  /** true while the stream is paused for backpressure */
  readonly paused: boolean
  /** the next frame, or undefined when the peer closed its write side at a frame boundary */
  next (signal?: AbortSignal): Promise<Frame | undefined>
  /** the next frame, which must be a control message matching `schema` (else the stream is reset) */
  readControl<T extends z.ZodType> (schema: T, what: string, signal?: AbortSignal): Promise<z.infer<T>>
  writeControl (message: unknown, signal?: AbortSignal): Promise<void>
  /** writes `bytes` as one or more data frames; they are sent by reference: the caller must not change them afterwards */
  writeData (bytes: Uint8Array, signal?: AbortSignal): Promise<void>
  writeEnd (signal?: AbortSignal): Promise<void>
  /** closes our write side once everything queued is sent; the peer's frames can still be read */
  close (signal?: AbortSignal): Promise<void>
  /** tells the peer the error's code in an error frame (best effort) and resets the stream */
  abort (err: Error): void
}

/** How long a read waits for a frame, or a write for a drain, unless the caller sets stallTimeoutMs. */
export const DEFAULT_STALL_TIMEOUT_MS = 30_000
const DEFAULT_HIGH_WATER = 512 * 1024

/** Sends an error frame with the error's code (best effort: dropped if the window is full) and resets the stream. */
export function resetStream (stream: Stream, err: Error): void {
  if (stream.status === 'closed' || stream.status === 'aborted' || stream.status === 'reset') return
  if (stream.writeStatus === 'writable') {
    // Internal errors cross the wire as a code only: their messages are for our logs.
    const [code, message] = isBeeldnetError(err) ? [err.code, err.message] : ['BEELDNET_ERR_INTERNAL', 'internal error']
    try { stream.send(encodeError(code, message)) } catch { /* the reset below says enough */ }
  }
  stream.abort(err)
}

class DefaultFramedStream implements FramedStream {
  readonly stream: Stream
  private readonly decoder: FrameDecoder
  private readonly limits: Required<FrameLimits>
  private readonly stallTimeoutMs: number
  private readonly highWaterMark: number
  private readonly lowWaterMark: number
  private readonly counters = { maxBufferedBytes: 0, pauses: 0, drainWaits: 0, maxWriteBufferBytes: 0, bytesRead: 0, bytesWritten: 0 }
  private pausedForBackpressure = false
  private pauseScheduled = false
  private remoteEnded: boolean
  private closeEvent: StreamCloseEvent | undefined
  /** once set, every read and write throws it */
  private failure: Error | undefined
  /** whoever waits for the stream (a read and a write may wait at once) */
  private readonly waiters = new Set<() => void>()
  private reading = false

  constructor (stream: Stream, init: FramedStreamInit = {}) {
    this.stream = stream
    this.limits = {
      maxControlBytes: Math.min(init.maxControlBytes ?? MAX_CONTROL_BYTES, MAX_CONTROL_BYTES),
      maxDataBytes: Math.min(init.maxDataBytes ?? MAX_DATA_FRAME_BYTES, MAX_DATA_FRAME_BYTES)
    }
    this.decoder = createFrameDecoder(this.limits)
    this.stallTimeoutMs = init.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS
    this.highWaterMark = init.highWaterMark ?? DEFAULT_HIGH_WATER
    // Pausing with less than a couple of frames buffered would pause and resume on every frame.
    const floor = 2 * Math.max(this.limits.maxControlBytes, this.limits.maxDataBytes)
    if (this.highWaterMark < floor) throw new RangeError(`highWaterMark must be at least ${floor} bytes (two of the largest frames)`)
    this.lowWaterMark = init.lowWaterMark ?? Math.floor(this.highWaterMark / 2)
    // A stream handed over after its peer finished writing still reads to the end.
    this.remoteEnded = stream.remoteWriteStatus === 'closed' && stream.status !== 'reset' && stream.status !== 'aborted'
    if (stream.status === 'reset' || stream.status === 'aborted') this.failure = new StreamResetError('the stream was reset before it was read')
    stream.addEventListener('message', this.onMessage)
    stream.addEventListener('remoteCloseWrite', this.onRemoteCloseWrite)
    stream.addEventListener('close', this.onClose)
    stream.addEventListener('drain', this.onActivity)
  }

  get stats (): FramedStreamStats {
    return { ...this.counters, bufferedBytes: this.decoder.bufferedBytes }
  }

  get paused (): boolean { return this.pausedForBackpressure }

  private readonly onMessage = (evt: StreamMessageEvent): void => {
    const data = evt.data
    if (data instanceof Uint8Array) this.decoder.push(data)
    else for (const chunk of data) this.decoder.push(chunk)
    this.counters.bytesRead += data.byteLength
    this.counters.maxBufferedBytes = Math.max(this.counters.maxBufferedBytes, this.decoder.bufferedBytes)
    if (this.decoder.bufferedBytes > this.highWaterMark) this.schedulePause()
    this.wakeAll()
  }

  private readonly onRemoteCloseWrite = (): void => {
    this.remoteEnded = true
    this.wakeAll()
  }

  private readonly onClose = (evt: StreamCloseEvent): void => {
    this.closeEvent = evt
    if (evt.error === undefined) this.remoteEnded = true
    this.wakeAll()
  }

  private readonly onActivity = (): void => { this.wakeAll() }

  private wakeAll (): void {
    for (const wake of this.waiters) wake()
  }

  /** Pausing inside the 'message' dispatch is deferred: it must not interleave with the muxer's own bookkeeping. */
  private schedulePause (): void {
    if (this.pauseScheduled || this.pausedForBackpressure) return
    this.pauseScheduled = true
    queueMicrotask(() => {
      this.pauseScheduled = false
      if (this.pausedForBackpressure || this.decoder.bufferedBytes <= this.highWaterMark || this.stream.readStatus !== 'readable') return
      this.stream.pause()
      this.pausedForBackpressure = true
      this.counters.pauses++
    })
  }

  /** Resuming hands over what the paused stream holds at once (a 'message' dispatched synchronously). */
  private resumeStream (): void {
    if (!this.pausedForBackpressure) return
    this.pausedForBackpressure = false
    if (this.stream.readStatus === 'paused') this.stream.resume()
  }

  async next (signal?: AbortSignal): Promise<Frame | undefined> {
    if (this.reading) throw new Error('FramedStream.next() called while another read is pending')
    this.reading = true
    try {
      return await this.readFrame(signal)
    } finally {
      this.reading = false
    }
  }

  private async readFrame (signal?: AbortSignal): Promise<Frame | undefined> {
    // The deadline is per frame, not per event: a peer trickling a byte at a time still stalls.
    const deadline = Date.now() + this.stallTimeoutMs
    for (;;) {
      signal?.throwIfAborted()
      if (this.failure !== undefined) throw this.failure
      if (this.closeEvent?.error !== undefined) throw this.fail(this.remoteFailure())
      let raw: RawFrame | undefined
      try {
        raw = this.decoder.next()
      } catch (err) {
        throw this.abortWith(err as Error)
      }
      if (raw !== undefined) {
        if (this.decoder.bufferedBytes < this.lowWaterMark) this.resumeStream()
        return this.toFrame(raw)
      }
      // Less than a frame buffered: data must flow again, whatever the water marks say.
      this.pausedForBackpressure = false
      if (this.stream.readStatus === 'paused') {
        const before = this.decoder.bufferedBytes
        this.stream.resume()
        if (this.decoder.bufferedBytes !== before) continue
      }
      // Finished only when the peer closed its write side AND nothing is left in the stream's buffer.
      if (this.remoteEnded && this.stream.readBufferLength === 0) {
        try { this.decoder.end() } catch (err) { throw this.abortWith(err as Error) }
        return undefined
      }
      await this.waitFor('a frame', deadline, signal)
    }
  }

  private toFrame (raw: RawFrame): Frame {
    try {
      switch (raw.kind) {
        case 'control': return { type: 'control', message: decodeControl(raw.payload) }
        case 'data': return { type: 'data', bytes: raw.payload }
        case 'end': return { type: 'end' }
        case 'error': {
          const { code, message } = decodeError(raw.payload)
          // The peer resets next; we reset too, without echoing an error frame back.
          const err = this.fail(new RemoteAbortError(code, message))
          this.stream.abort(err)
          throw err
        }
      }
    } catch (err) {
      if (err === this.failure) throw err
      throw this.abortWith(err as Error)
    }
  }

  /** After a reset: an error frame the peer sent before resetting says why; otherwise a plain reset. */
  private remoteFailure (): Error {
    if (this.stream.readBufferLength > 0 && this.stream.readStatus === 'paused') this.stream.resume()
    try {
      for (let raw = this.decoder.next(); raw !== undefined; raw = this.decoder.next()) {
        if (raw.kind === 'error') {
          const { code, message } = decodeError(raw.payload)
          return new RemoteAbortError(code, message)
        }
      }
    } catch { /* garbage after a reset: the reset is the news */ }
    const { error, local } = this.closeEvent!
    if (isBeeldnetError(error)) return error
    return new StreamResetError(local === true ? `the stream was aborted: ${error?.message}` : 'the peer reset the stream', { cause: error })
  }

  async readControl<T extends z.ZodType> (schema: T, what: string, signal?: AbortSignal): Promise<z.infer<T>> {
    const frame = await this.next(signal)
    if (frame === undefined) throw this.abortWith(new StreamTruncatedError(`the stream ended where ${what} was expected`))
    if (frame.type !== 'control') throw this.abortWith(new FrameUnexpectedError(what, frame.type))
    try {
      return parseControl(schema, frame.message, what)
    } catch (err) {
      throw this.abortWith(err as Error)
    }
  }

  async writeControl (message: unknown, signal?: AbortSignal): Promise<void> {
    await this.send(encodeControl(message, this.limits), signal)
  }

  async writeData (bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    const max = this.limits.maxDataBytes
    for (let offset = 0; offset < bytes.byteLength; offset += max) {
      await this.send(new Uint8ArrayList(...encodeDataParts(bytes.subarray(offset, offset + max), this.limits)), signal)
    }
  }

  async writeEnd (signal?: AbortSignal): Promise<void> {
    await this.send(encodeEnd(), signal)
  }

  private async send (frame: Uint8Array | Uint8ArrayList, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted()
    if (this.stream.writableNeedsDrain) await this.waitForDrain(signal)
    this.throwIfNotWritable()
    const more = this.stream.send(frame)
    this.counters.bytesWritten += frame.byteLength
    this.counters.maxWriteBufferBytes = Math.max(this.counters.maxWriteBufferBytes, this.stream.writeBufferLength)
    if (!more) await this.waitForDrain(signal)
  }

  private throwIfNotWritable (): void {
    if (this.failure !== undefined) throw this.failure
    if (this.closeEvent?.error !== undefined) throw this.fail(this.remoteFailure())
    if (this.stream.writeStatus !== 'writable') throw new StreamResetError(`the stream is ${this.stream.writeStatus} for writing`)
  }

  private async waitForDrain (signal?: AbortSignal): Promise<void> {
    this.counters.drainWaits++
    const deadline = Date.now() + this.stallTimeoutMs
    while (this.stream.writableNeedsDrain) {
      this.throwIfNotWritable()
      await this.waitFor('the peer to take more data', deadline, signal)
    }
  }

  async close (signal?: AbortSignal): Promise<void> {
    if (this.failure !== undefined) throw this.failure
    const timeout = AbortSignal.timeout(this.stallTimeoutMs)
    try {
      await this.stream.close({ signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]) })
    } catch (err) {
      if (signal?.aborted === true) throw err
      if (timeout.aborted) throw this.abortWith(new StreamStalledError('flushing before close', this.stallTimeoutMs))
      if (this.closeEvent?.error !== undefined) throw this.fail(this.remoteFailure())
      throw this.abortWith(new StreamResetError(`closing the stream failed: ${(err as Error).message}`, { cause: err }))
    }
  }

  abort (err: Error): void {
    this.abortWith(err)
  }

  private fail (err: Error): Error {
    this.failure ??= err
    return this.failure
  }

  private abortWith (err: Error): Error {
    const failure = this.fail(err)
    resetStream(this.stream, failure)
    this.wakeAll()
    return failure
  }

  /** Waits for any stream event; past the deadline the stream is reset as stalled. */
  private async waitFor (what: string, deadline: number, signal?: AbortSignal): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>()
    this.waiters.add(resolve)
    const timer = setTimeout(() => { reject(this.abortWith(new StreamStalledError(`waiting for ${what}`, this.stallTimeoutMs))) }, Math.max(0, deadline - Date.now()))
    const onAbort = (): void => { reject(signal!.reason) }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      await promise
    } finally {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      this.waiters.delete(resolve)
    }
  }

  async * [Symbol.asyncIterator] (): AsyncIterator<Frame> {
    for (let frame = await this.next(); frame !== undefined; frame = await this.next()) yield frame
  }
}

export function createFramedStream (stream: Stream, init?: FramedStreamInit): FramedStream {
  return new DefaultFramedStream(stream, init)
}

export interface TransferOptions {
  signal?: AbortSignal
}

/**
 * Streams `source` (a file's Readable, or any async iterable of bytes) as data frames followed by an
 * end frame, waiting for the stream to drain as it goes; the source is read only as fast as the
 * peer takes it. Returns the bytes sent. A failure resets the stream with the error's code.
 */
export async function sendReadable (framed: FramedStream, source: AsyncIterable<Uint8Array>, options: TransferOptions = {}): Promise<number> {
  let total = 0
  try {
    for await (const chunk of source) {
      await framed.writeData(chunk, options.signal)
      total += chunk.byteLength
    }
    await framed.writeEnd(options.signal)
  } catch (err) {
    framed.abort(err as Error)
    throw err
  }
  return total
}

export interface ReceiveOptions extends TransferOptions {
  /** more data than this resets the stream with BEELDNET_ERR_DATA_TOO_LONG (default: no limit) */
  maxBytes?: number
}

/**
 * Writes the data frames up to the next end frame into `sink`, waiting for the sink's 'drain'
 * when it is full: a slow disk pauses the stream instead of filling memory. The sink is left open
 * (the caller syncs and closes its file). Returns the bytes written.
 */
export async function receiveToWritable (framed: FramedStream, sink: Writable, options: ReceiveOptions = {}): Promise<number> {
  let total = 0
  try {
    for (;;) {
      const frame = await framed.next(options.signal)
      if (frame === undefined) throw new StreamTruncatedError(`the stream ended after ${total} bytes, before the end frame`)
      if (frame.type === 'end') return total
      if (frame.type !== 'data') throw new FrameUnexpectedError('data or end', frame.type)
      total += frame.bytes.byteLength
      if (options.maxBytes !== undefined && total > options.maxBytes) throw new DataTooLongError('the data', options.maxBytes)
      if (!sink.write(frame.bytes)) await sinkDrained(sink, options.signal)
    }
  } catch (err) {
    framed.abort(err as Error)
    throw err
  }
}

/** Waits for the sink's 'drain'; a sink that fails or closes meanwhile ends the wait with its error. */
async function sinkDrained (sink: Writable, signal?: AbortSignal): Promise<void> {
  if (sink.errored !== null) throw sink.errored
  if (sink.destroyed) throw new Error('the sink was closed before it took all the data')
  const done = new AbortController()
  const listen = signal === undefined ? done.signal : AbortSignal.any([signal, done.signal])
  try {
    await Promise.race([
      once(sink, 'drain', { signal: listen }),
      once(sink, 'close', { signal: listen }).then(() => { throw sink.errored ?? new Error('the sink was closed before it took all the data') })
    ])
  } finally {
    done.abort()
  }
}

/** Collects the data frames up to the next end frame in memory; for small payloads only (a directory). */
export async function receiveBytes (framed: FramedStream, maxBytes: number, options: TransferOptions = {}): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let total = 0
  try {
    for (;;) {
      const frame = await framed.next(options.signal)
      if (frame === undefined) throw new StreamTruncatedError(`the stream ended after ${total} bytes, before the end frame`)
      if (frame.type === 'end') break
      if (frame.type !== 'data') throw new FrameUnexpectedError('data or end', frame.type)
      total += frame.bytes.byteLength
      if (total > maxBytes) throw new DataTooLongError('the data', maxBytes)
      chunks.push(frame.bytes)
    }
  } catch (err) {
    framed.abort(err as Error)
    throw err
  }
  return Buffer.concat(chunks, total)
}
