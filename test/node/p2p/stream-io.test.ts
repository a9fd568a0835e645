import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createReadStream, createWriteStream } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import type { Stream } from '@libp2p/interface'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { MUXER_DEFAULTS } from '../../../node/p2p/host.ts'
import { createFramedStream, receiveToWritable, sendReadable, type FramedStream } from '../../../node/p2p/stream-io.ts'
import { encodeControl, encodeData, encodeFrame, FRAME_HEADER_BYTES, MAX_CONTROL_BYTES, MAX_DATA_FRAME_BYTES } from '../../../protocol/p2p/framing.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { useP2PNetwork, type TestNode } from './p2p-fixtures.ts'
import { until } from '../../helpers/patience.ts'

const BULK = '/beeldnet-test/bulk/1.0.0'
const KiB = 1024
const MiB = 1024 * KiB
const Header = z.strictObject({ size: z.number().int() })
const network = useP2PNetwork()
const tempDir = useTempDirs()

interface Pair { a: TestNode, b: TestNode }

async function pair (): Promise<Pair> {
  const net = network()
  const a = await net.startNode('a')
  const b = await net.startNode('b')
  const v1 = net.next(undefined, [await net.admit(a, '10000001'), await net.admit(b, '10000002')])
  await a.directory.acceptDirectory(v1.envelope, 'test')
  await b.directory.acceptDirectory(v1.envelope, 'test')
  return { a, b }
}

/** B opens a BULK stream to A; the first bytes B sends make A's handler run. */
async function open ({ a, b }: Pair, first: Uint8Array = encodeControl({ size: 0 })): Promise<{ client: Stream, server: Stream }> {
  const inbound = a.nextInbound(BULK)
  const client = await b.host.dialProtocol(a.peerId, BULK)
  client.send(first)
  return { client, server: (await inbound).stream }
}

/** `size` bytes made on the fly from one random block (never the whole payload in memory), hashed as they go. */
function generated (size: number, chunk = 256 * KiB): { source: Readable, digest: () => string } {
  const block = randomBytes(MiB + chunk)
  const hash = createHash('sha256')
  async function * produce (): AsyncGenerator<Uint8Array> {
    for (let sent = 0, i = 0; sent < size; i++) {
      const n = Math.min(chunk, size - sent)
      const offset = (i * 7919) % MiB
      const bytes = block.subarray(offset, offset + n)
      hash.update(bytes)
      sent += n
      yield bytes
    }
  }
  return { source: Readable.from(produce(), { objectMode: false, highWaterMark: chunk }), digest: () => hash.digest('hex') }
}

describe('stream IO: backpressure', () => {
  it('carries 300 MB from a generated source to a slow sink intact, with both ends bounded', async () => {
    const p = await pair()
    const SIZE = 300 * MiB
    const { client, server } = await open(p, encodeControl({ size: SIZE }))
    const sender = createFramedStream(client)
    const receiver = createFramedStream(server)
    expect(await receiver.readControl(Header, 'the header')).toEqual({ size: SIZE })

    let maxParked = 0
    let maxHeld = 0
    let maxArrayBuffers = 0
    const holds: Array<{ parked: number, senderBlocked: boolean, receiverPaused: boolean }> = []
    const sample = (): void => {
      maxParked = Math.max(maxParked, server.readBufferLength)
      maxHeld = Math.max(maxHeld, server.readBufferLength + receiver.stats.bufferedBytes)
      maxArrayBuffers = Math.max(maxArrayBuffers, process.memoryUsage().arrayBuffers)
    }
    const holdAt = new Set([50, 150, 250].map((m) => m * MiB))
    const hash = createHash('sha256')
    let written = 0
    // A slow disk: every write yields to the event loop; three times it stops until the whole pipeline is backed up.
    const sink = new Writable({
      highWaterMark: 256 * KiB,
      write (chunk: Buffer, _encoding, callback) {
        hash.update(chunk)
        const before = written
        written += chunk.byteLength
        sample()
        const hold = [...holdAt].find((at) => before < at && written >= at)
        if (hold === undefined) { setImmediate(callback); return }
        // Wait (no clock involved) until the receiver paused the stream and the sender is blocked on 'drain'.
        until(() => receiver.paused && client.writableNeedsDrain, 'the pipeline is backed up').then(() => {
          sample()
          holds.push({ parked: server.readBufferLength, senderBlocked: client.writableNeedsDrain, receiverPaused: receiver.paused })
          callback()
        }, callback)
      }
    })

    const gen = generated(SIZE)
    const [sent, received] = await Promise.all([
      sendReadable(sender, gen.source),
      receiveToWritable(receiver, sink)
    ])
    expect(sent).toBe(SIZE)
    expect(received).toBe(SIZE)
    // receiveToWritable leaves the sink open with what it buffered: everything is in once it finished.
    sink.end()
    await once(sink, 'finish')
    expect(hash.digest('hex')).toBe(gen.digest())

    // Each hold backed the pipeline up: the receiver paused, the sender waited for 'drain'.
    expect(holds).toHaveLength(3)
    for (const hold of holds) expect(hold).toMatchObject({ senderBlocked: true, receiverPaused: true })
    expect(receiver.stats.pauses).toBeGreaterThanOrEqual(3)
    // Bounded by the yamux window and our water marks, not by the 300 MB transferred: the paused
    // stream holds at most one window, and a resume hands our decoder at most one window more.
    const window = MUXER_DEFAULTS.maxStreamWindowSize
    expect(maxParked).toBeLessThanOrEqual(window)
    expect(receiver.stats.maxBufferedBytes).toBeLessThanOrEqual(window + MiB + MAX_DATA_FRAME_BYTES)
    expect(maxHeld).toBeLessThanOrEqual(2 * window + MiB + MAX_DATA_FRAME_BYTES)
    // The sender never queues more than the frame that filled the window (plus one in flight).
    expect(sender.stats.maxWriteBufferBytes).toBeLessThanOrEqual(2 * (MAX_DATA_FRAME_BYTES + FRAME_HEADER_BYTES))
    expect(sender.stats.drainWaits).toBeGreaterThan(0)
    // Both ends live in this process; all its buffers (garbage not yet collected included) stay below
    // the payload. (A 1 GB run peaks at the same ~170 MB as this one: it does not grow with the size.)
    expect(maxArrayBuffers).toBeLessThan(SIZE)

    await Promise.all([sender.close(), receiver.close()])
    expect(await receiver.next()).toBeUndefined()
  })

  it('delivers data parked in a paused stream after the peer closed: done only when remoteCloseWrite fired and the buffer is empty', async () => {
    const p = await pair()
    const { client, server } = await open(p)
    const limits = { maxDataBytes: 16 * KiB, highWaterMark: 128 * KiB }
    const sender = createFramedStream(client, limits)
    const receiver = createFramedStream(server, limits)
    await receiver.readControl(Header, 'the header')
    const part1 = randomBytes(160 * KiB)
    const part2 = randomBytes(32 * KiB)

    // Part 1 exceeds the receiver's high-water mark while nobody reads: the stream pauses.
    await sender.writeData(part1)
    await until(() => receiver.paused, 'the receiver pauses')
    // Part 2 fits in the window: it is sent, and parked in the paused stream, before the peer closes.
    await sender.writeData(part2)
    await sender.writeEnd()
    await sender.close()
    await until(() => server.remoteWriteStatus === 'closed', 'the close arrives')
    expect(server.readBufferLength).toBeGreaterThan(0)

    const chunks: Buffer[] = []
    const sink = new Writable({ write (chunk: Buffer, _e, cb) { chunks.push(chunk); cb() } })
    expect(await receiveToWritable(receiver, sink)).toBe(part1.byteLength + part2.byteLength)
    expect(Buffer.concat(chunks).equals(Buffer.concat([part1, part2]))).toBe(true)
    expect(await receiver.next()).toBeUndefined()
  })

  it('streams a file to a file, byte for byte', async () => {
    const p = await pair()
    const dir = await tempDir('stream-io')
    const input = join(dir, 'in.bin')
    const output = join(dir, 'out.bin')
    await writeFile(input, randomBytes(12 * MiB + 12345))
    const { client, server } = await open(p)
    const sender = createFramedStream(client)
    const receiver = createFramedStream(server)
    await receiver.readControl(Header, 'the header')
    const file = createWriteStream(output)
    const [sent, received] = await Promise.all([
      sendReadable(sender, createReadStream(input, { highWaterMark: 256 * KiB })),
      receiveToWritable(receiver, file)
    ])
    file.end()
    await once(file, 'close')
    expect(received).toBe(sent)
    expect((await readFile(output)).equals(await readFile(input))).toBe(true)
  })
})

describe('stream IO: failures at either end', () => {
  it('a sink that fails (disk full) resets the stream; the sender learns it failed', async () => {
    const p = await pair()
    const { client, server } = await open(p)
    const sender = createFramedStream(client)
    const receiver = createFramedStream(server)
    await receiver.readControl(Header, 'the header')
    let writes = 0
    const sink = new Writable({
      highWaterMark: 1,
      write (_chunk, _e, cb) { setImmediate(() => { cb(++writes === 3 ? Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }) : null) }) }
    })
    sink.on('error', () => {})
    const [sent, received] = await Promise.all([
      sendReadable(sender, generated(64 * MiB).source).catch((err: unknown) => err),
      receiveToWritable(receiver, sink).catch((err: unknown) => err)
    ])
    expect(received).toMatchObject({ code: 'ENOSPC' })
    expect(server.status).toBe('aborted')
    // internal errors cross the wire as a code only
    expect(sent).toMatchObject({ code: expect.stringMatching(/^BEELDNET_ERR_(REMOTE_ABORT|STREAM_RESET)$/) })
  })

  it('a source that fails (unreadable file) resets the stream with the reason', async () => {
    const p = await pair()
    const { client, server } = await open(p)
    const sender = createFramedStream(client)
    const receiver = createFramedStream(server)
    await receiver.readControl(Header, 'the header')
    async function * failing (): AsyncGenerator<Uint8Array> {
      yield randomBytes(1000)
      throw new Error('EIO: i/o error, read')
    }
    const sink = new Writable({ write (_c, _e, cb) { cb() } })
    const [sent, received] = await Promise.all([
      sendReadable(sender, failing()).catch((err: unknown) => err),
      receiveToWritable(receiver, sink).catch((err: unknown) => err)
    ])
    expect(sent).toMatchObject({ message: 'EIO: i/o error, read' })
    expect(received).toMatchObject({ code: 'BEELDNET_ERR_REMOTE_ABORT', remoteCode: 'BEELDNET_ERR_INTERNAL', remoteMessage: 'internal error' })
  })
})

describe('stream IO: violations reset the stream with a code', () => {
  async function refused (p: Pair, bytes: Uint8Array, read: (f: FramedStream) => Promise<unknown>): Promise<{ local: unknown, remote: unknown }> {
    const { client, server } = await open(p, bytes)
    const peer = createFramedStream(client)
    const framed = createFramedStream(server)
    const local = await read(framed).catch((err: unknown) => err)
    const remote = await peer.next().catch((err: unknown) => err)
    expect(server.status).toBe('aborted')
    return { local, remote }
  }

  it('an oversized control frame, refused on its header', async () => {
    const header = new Uint8Array(FRAME_HEADER_BYTES)
    new DataView(header.buffer).setUint32(0, MAX_CONTROL_BYTES + 1)
    header[4] = 1
    const { local, remote } = await refused(await pair(), header, (f) => f.next())
    expect(local).toMatchObject({ code: 'BEELDNET_ERR_FRAME_TOO_LARGE' })
    expect(remote).toMatchObject({ code: 'BEELDNET_ERR_REMOTE_ABORT', remoteCode: 'BEELDNET_ERR_FRAME_TOO_LARGE' })
  })

  it('garbage (not a frame at all)', async () => {
    const { local, remote } = await refused(await pair(), Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), (f) => f.next())
    expect(local).toMatchObject({ code: 'BEELDNET_ERR_FRAME_MALFORMED' })
    expect(remote).toMatchObject({ code: 'BEELDNET_ERR_REMOTE_ABORT', remoteCode: 'BEELDNET_ERR_FRAME_MALFORMED' })
  })

  it('a control frame that is not JSON', async () => {
    const { local } = await refused(await pair(), encodeFrame('control', Buffer.from([0xff, 0xfe, 0x7b])), (f) => f.next())
    expect(local).toMatchObject({ code: 'BEELDNET_ERR_FRAME_MALFORMED' })
  })

  it('a control message that does not match the schema', async () => {
    const { local, remote } = await refused(await pair(), encodeControl({ size: 1, patientName: 'Jansen' }), (f) => f.readControl(Header, 'the header'))
    expect(local).toMatchObject({ code: 'BEELDNET_ERR_SCHEMA' })
    expect(remote).toMatchObject({ remoteCode: 'BEELDNET_ERR_SCHEMA' })
  })

  it('a data frame where a control message is due', async () => {
    const { local } = await refused(await pair(), encodeData(Buffer.from('pixels')), (f) => f.readControl(Header, 'the header'))
    expect(local).toMatchObject({ code: 'BEELDNET_ERR_FRAME_UNEXPECTED' })
  })

  it('more data than the receiver allows', async () => {
    const p = await pair()
    const { client, server } = await open(p, encodeData(randomBytes(2000)))
    const sink = new Writable({ write (_c, _e, cb) { cb() } })
    const local = await receiveToWritable(createFramedStream(server), sink, { maxBytes: 1000 }).catch((err: unknown) => err)
    expect(local).toMatchObject({ code: 'BEELDNET_ERR_DATA_TOO_LONG' })
    expect(await createFramedStream(client).next().catch((err: unknown) => err)).toMatchObject({ remoteCode: 'BEELDNET_ERR_DATA_TOO_LONG' })
  })

  it('a stream that ends inside a frame', async () => {
    const p = await pair()
    const { client, server } = await open(p, encodeControl({ size: 1 }).subarray(0, 7))
    await client.close()
    expect(await createFramedStream(server).next().catch((err: unknown) => err)).toMatchObject({ code: 'BEELDNET_ERR_STREAM_TRUNCATED' })
  })

  it('a peer that stops sending mid-frame stalls past the timeout', async () => {
    const p = await pair()
    const { client, server } = await open(p, encodeControl({ size: 1 }).subarray(0, 7))
    const framed = createFramedStream(server, { stallTimeoutMs: 150 })
    expect(await framed.next().catch((err: unknown) => err)).toMatchObject({ code: 'BEELDNET_ERR_STREAM_STALLED' })
    expect(server.status).toBe('aborted')
    expect(await createFramedStream(client).next().catch((err: unknown) => err)).toMatchObject({ remoteCode: 'BEELDNET_ERR_STREAM_STALLED' })
  })

  it('a peer that stops reading stalls the writer past the timeout', async () => {
    const p = await pair()
    const { client, server } = await open(p)
    // The receiver holds a framed reader (so it pauses) but never asks for a frame.
    const receiver = createFramedStream(server)
    const sender = createFramedStream(client, { stallTimeoutMs: 150 })
    const big = randomBytes(MiB)
    let failure: unknown
    for (let i = 0; i < 64 && failure === undefined; i++) failure = await sender.writeData(big).then(() => undefined, (err: unknown) => err)
    expect(failure).toMatchObject({ code: 'BEELDNET_ERR_STREAM_STALLED' })
    expect(client.status).toBe('aborted')
    await until(() => server.status !== 'open', 'the reset arrives')
    expect(await receiver.next().catch((err: unknown) => err)).toMatchObject({ code: expect.stringMatching(/^BEELDNET_ERR_(STREAM_RESET|REMOTE_ABORT)$/) })
  })
})
