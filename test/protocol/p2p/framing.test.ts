import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { DirectoryHello, offersTo } from '../../../protocol/p2p/directory-gossip.ts'
import {
  createFrameDecoder, decodeControl, decodeError, encodeControl, encodeData, encodeDataParts, encodeEnd, encodeError, encodeFrame, parseControl,
  FRAME_HEADER_BYTES, MAX_CONTROL_BYTES, MAX_DATA_FRAME_BYTES, type RawFrame
} from '../../../protocol/p2p/framing.ts'
import { PROTOCOLS, YAMUX_INITIAL_STREAM_WINDOW } from '../../../protocol/p2p/ids.ts'

function header (length: number, type: number): Uint8Array {
  const h = new Uint8Array(FRAME_HEADER_BYTES)
  new DataView(h.buffer).setUint32(0, length)
  h[4] = type
  return h
}

function decodeAll (bytes: Uint8Array, chunkSize: number): RawFrame[] {
  const decoder = createFrameDecoder()
  const frames: RawFrame[] = []
  for (let i = 0; i < bytes.byteLength; i += chunkSize) {
    decoder.push(bytes.subarray(i, i + chunkSize))
    for (let f = decoder.next(); f !== undefined; f = decoder.next()) frames.push(f)
  }
  decoder.end()
  return frames
}

describe('framing', () => {
  const data = new Uint8Array(70_000).map((_, i) => i * 31)
  const stream = Buffer.concat([encodeControl({ type: 'offer', n: 1 }), encodeData(data), encodeEnd(), encodeError('BEELDNET_ERR_STREAM_STALLED', 'stalled')])

  it.each([1, 3, 4096, stream.byteLength])('round-trips control, data, end and error frames in chunks of %i bytes', (chunk) => {
    const frames = decodeAll(stream, chunk)
    expect(frames.map((f) => f.kind)).toEqual(['control', 'data', 'end', 'error'])
    expect(decodeControl(frames[0]!.payload)).toEqual({ type: 'offer', n: 1 })
    expect(Buffer.from(frames[1]!.payload).equals(Buffer.from(data))).toBe(true)
    expect(frames[2]!.payload.byteLength).toBe(0)
    expect(decodeError(frames[3]!.payload)).toEqual({ code: 'BEELDNET_ERR_STREAM_STALLED', message: 'stalled' })
  })

  it('a frame sent a byte at a time is decoded in linear time and held compactly', () => {
    const big = encodeData(new Uint8Array(MAX_DATA_FRAME_BYTES).fill(7))
    const decoder = createFrameDecoder()
    for (let i = 0; i < big.byteLength - 1; i++) decoder.push(big.subarray(i, i + 1))
    expect(decoder.next()).toBeUndefined()
    // held as kilobyte pieces, not one object per byte
    expect((decoder as unknown as { chunks: unknown[] }).chunks.length).toBeLessThan(big.byteLength / 512)
    decoder.push(big.subarray(big.byteLength - 1))
    const frame = decoder.next()!
    expect(frame.payload.byteLength).toBe(MAX_DATA_FRAME_BYTES)
    expect(frame.payload.every((b) => b === 7)).toBe(true)
  })

  it('a data frame in parts (header, then the payload uncopied) decodes as the same frame; too large is refused', () => {
    const payload = new Uint8Array(MAX_DATA_FRAME_BYTES).fill(7)
    const [header, body] = encodeDataParts(payload)
    expect(body).toBe(payload)
    expect(Buffer.concat([header, body]).equals(encodeData(payload))).toBe(true)
    expect(() => encodeDataParts(new Uint8Array(MAX_DATA_FRAME_BYTES + 1))).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_FRAME_TOO_LARGE' }))
  })

  it('refuses an oversized frame on its header, before any payload is buffered', () => {
    const decoder = createFrameDecoder()
    decoder.push(header(MAX_CONTROL_BYTES + 1, 1))
    expect(() => decoder.next()).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_FRAME_TOO_LARGE' }))
    const data = createFrameDecoder()
    data.push(header(MAX_DATA_FRAME_BYTES + 1, 2))
    expect(() => data.next()).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_FRAME_TOO_LARGE' }))
    const end = createFrameDecoder()
    end.push(header(1, 3))
    expect(() => end.next()).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_FRAME_TOO_LARGE' }))
    // a lower limit chosen by the protocol applies; a higher one is capped at the hard maximum
    const strict = createFrameDecoder({ maxControlBytes: 100, maxDataBytes: 10 * MAX_DATA_FRAME_BYTES })
    strict.push(header(101, 1))
    expect(() => strict.next()).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_FRAME_TOO_LARGE' }))
    expect(() => encodeData(new Uint8Array(MAX_DATA_FRAME_BYTES + 1), { maxDataBytes: 10 * MAX_DATA_FRAME_BYTES })).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_FRAME_TOO_LARGE' }))
  })

  it('refuses an unknown frame type, text that is not UTF-8 JSON and a bad error frame', () => {
    const decoder = createFrameDecoder()
    decoder.push(header(0, 9))
    expect(() => decoder.next()).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_FRAME_MALFORMED' }))
    expect(() => decodeControl(new Uint8Array([0xc3, 0x28]))).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_FRAME_MALFORMED' }))
    expect(() => decodeControl(Buffer.from('{"a":'))).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_FRAME_MALFORMED' }))
    expect(() => decodeError(Buffer.from(JSON.stringify({ code: 'rm -rf', message: 'x' })))).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_FRAME_MALFORMED' }))
  })

  it('an end inside a frame is a truncation', () => {
    const decoder = createFrameDecoder()
    decoder.push(encodeControl({ a: 1 }).subarray(0, 8))
    expect(decoder.next()).toBeUndefined()
    expect(() => decoder.end()).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_STREAM_TRUNCATED' }))
  })

  it('control messages are checked against the schema the step expects; a message too big is not sent', () => {
    const Hello = z.strictObject({ version: z.number().int() })
    expect(parseControl(Hello, { version: 3 }, 'hello')).toEqual({ version: 3 })
    expect(() => parseControl(Hello, { version: 3, patient: 'x' }, 'hello')).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_SCHEMA' }))
    expect(() => encodeControl({ blob: 'x'.repeat(MAX_CONTROL_BYTES) })).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_FRAME_TOO_LARGE' }))
    expect(encodeFrame('end').byteLength).toBe(FRAME_HEADER_BYTES)
  })
})

describe('protocol ids and directory gossip rules', () => {
  it('every protocol id is versioned and distinct; the yamux initial window is the spec value', () => {
    const ids = Object.values(PROTOCOLS)
    for (const id of ids) expect(id).toMatch(/^\/beeldnet\/[a-z]+(?:-[a-z]+)*\/\d+\.\d+\.\d+$/)
    expect(new Set(ids).size).toBe(ids.length)
    expect(YAMUX_INITIAL_STREAM_WINDOW).toBe(256 * 1024)
  })

  it('whoever holds the newer version, or the same with another hash, offers it', () => {
    const hello = (version: number | null, hash: string | null): DirectoryHello => DirectoryHello.parse({ type: 'hello', version, hash })
    const h1 = 'a'.repeat(64)
    const h2 = 'b'.repeat(64)
    expect(offersTo(hello(2, h1), hello(1, h2))).toBe(true)
    expect(offersTo(hello(1, h2), hello(2, h1))).toBe(false)
    expect(offersTo(hello(1, h1), hello(null, null))).toBe(true)
    expect(offersTo(hello(null, null), hello(1, h1))).toBe(false)
    expect(offersTo(hello(2, h1), hello(2, h1))).toBe(false)
    // a fork: both offer
    expect(offersTo(hello(2, h1), hello(2, h2))).toBe(true)
    expect(offersTo(hello(2, h2), hello(2, h1))).toBe(true)
    expect(DirectoryHello.safeParse({ type: 'hello', version: 2, hash: null }).success).toBe(false)
  })
})
