// One end of the bare-libp2p transfer benchmark, in its own process (for its own peak RSS and CPU):
//   receive <outDir>   listens on loopback; writes every inbound stream's files under outDir/stream-N
//   send               dials the receiver and sends files when the parent asks
// Driven over the IPC channel: the parent sends {cmd:'send', address, files}, {cmd:'fsync', on}
// (receiver: fsync every file before its close, as a node does, or not) and {cmd:'stop'}; the
// worker answers {type:'ready'|'sent'|'received'|'fsync'|'stopped'|'error', ...}.
//
// On the wire, per file: its size as a u64 (big-endian), then its bytes; the sender closes its write
// side after the last file (or sends a header of all ones, see sendOverStream), the receiver answers one byte once every file is written (and fsynced),
// then closes. Backpressure both ways, as docs/dependencies.md says it must be done: the sender waits for
// the 'drain' EVENT when send() returns false (never stream.onDrain()); the receiver pauses the
// stream (deferred with queueMicrotask) while more than HIGH_WATER bytes wait for the disk and
// resumes below LOW_WATER; it is finished only when the peer closed its write side AND the
// stream's read buffer is empty.
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, stat } from 'node:fs/promises'
import { once } from 'node:events'
import { join } from 'node:path'
import { finished } from 'node:stream/promises'
import type { Libp2p, Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { createBenchLibp2p } from './transfer-libp2p.ts'

const PROTOCOL = '/beeldnet-bench/bare/1.0.0'
const MiB = 1024 * 1024
/** sender's read size: one yamux message each at the node's maxMessageSize (BENCH_BARE_CHUNK) */
const CHUNK = Number(process.env.BENCH_BARE_CHUNK ?? 256 * 1024)
/** streams a session's files are spread over (BENCH_BARE_STREAMS); a single file always takes one */
const STREAMS = Number(process.env.BENCH_BARE_STREAMS ?? 1)
const HIGH_WATER = 4 * MiB
/** a size header that ends the session's files instead of a close (sendOverStream's endHeader) */
const END = 0xffff_ffff_ffff_ffffn
const LOW_WATER = 2 * MiB

type Command = { cmd: 'send', address: string, files: string[] } | { cmd: 'fsync', on: boolean } | { cmd: 'stop' }

function reply (message: unknown): void {
  process.send!(message)
}

/** Reads a stream's bytes with bounded memory: pauses the stream while the consumer is behind. */
export class StreamReader {
  private readonly chunks: Uint8Array[] = []
  private buffered = 0
  private ended = false
  private error: Error | undefined
  private wake: (() => void) | undefined
  private paused = false
  private pauseScheduled = false
  private readonly stream: Stream

  constructor (stream: Stream) {
    this.stream = stream
    stream.addEventListener('message', (evt: StreamMessageEvent) => {
      // A list's buffers as they are: subarray() would copy them into one.
      if (evt.data instanceof Uint8Array) this.chunks.push(evt.data)
      else for (const data of evt.data) this.chunks.push(data)
      this.buffered += evt.data.byteLength
      if (this.buffered > HIGH_WATER) this.schedulePause()
      this.notify()
    })
    stream.addEventListener('remoteCloseWrite', () => { this.ended = true; this.notify() })
    stream.addEventListener('close', (evt: StreamCloseEvent) => {
      if (evt.error !== undefined) this.error = evt.error
      else this.ended = true
      this.notify()
    })
  }

  private notify (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  private schedulePause (): void {
    if (this.pauseScheduled || this.paused) return
    this.pauseScheduled = true
    // Not inside the 'message' dispatch: yamux is still doing its bookkeeping there.
    queueMicrotask(() => {
      this.pauseScheduled = false
      if (this.paused || this.buffered <= HIGH_WATER || this.stream.readStatus !== 'readable') return
      this.stream.pause()
      this.paused = true
    })
  }

  /** Up to `max` bytes, or undefined once the peer has closed and everything was read. */
  async read (max: number): Promise<Uint8Array | undefined> {
    for (;;) {
      if (this.error !== undefined) throw this.error
      const head = this.chunks[0]
      if (head !== undefined) {
        let out: Uint8Array
        if (head.byteLength <= max) {
          out = head
          this.chunks.shift()
        } else {
          out = head.subarray(0, max)
          this.chunks[0] = head.subarray(max)
        }
        this.buffered -= out.byteLength
        if (this.paused && this.buffered < LOW_WATER) this.resume()
        return out
      }
      // Nothing buffered here: whatever the paused stream holds must come out now.
      if (this.stream.readStatus === 'paused') {
        this.resume()
        if (this.chunks.length > 0) continue
      }
      if (this.ended && this.stream.readBufferLength === 0) return undefined
      await new Promise<void>((resolve) => { this.wake = resolve })
    }
  }

  private resume (): void {
    this.paused = false
    if (this.stream.readStatus === 'paused') this.stream.resume()
  }

  /** Exactly `n` bytes; undefined at a clean end before the first byte. */
  async readExact (n: number): Promise<Uint8Array | undefined> {
    const out = new Uint8Array(n)
    let got = 0
    while (got < n) {
      const chunk = await this.read(n - got)
      if (chunk === undefined) {
        if (got === 0) return undefined
        throw new Error(`the stream ended inside a ${n}-byte header`)
      }
      out.set(chunk, got)
      got += chunk.byteLength
    }
    return out
  }
}

/** One session's files from a stream into dir (fsynced if flush), then the answer byte and close. */
export async function receiveOverStream (stream: Stream, dir: string, flush: boolean): Promise<{ files: number, bytes: number }> {
  await mkdir(dir, { recursive: true })
  const reader = new StreamReader(stream)
  let files = 0
  let bytes = 0
  for (;;) {
    const header = await reader.readExact(8)
    if (header === undefined) break
    const size64 = new DataView(header.buffer, header.byteOffset).getBigUint64(0)
    if (size64 === END) break
    const size = Number(size64)
    // flush: fsync before close, as a node does for every instance it verifies
    const out = createWriteStream(join(dir, `${String(files).padStart(5, '0')}.dcm`), { highWaterMark: MiB, flush })
    let remaining = size
    while (remaining > 0) {
      const chunk = await reader.read(remaining)
      if (chunk === undefined) throw new Error(`the stream ended ${remaining} bytes before the end of file ${files}`)
      remaining -= chunk.byteLength
      if (!out.write(chunk)) await once(out, 'drain')
    }
    out.end()
    await finished(out)
    files++
    bytes += size
  }
  stream.send(new Uint8Array([1]))
  await stream.close()
  return { files, bytes }
}

async function receive (outDir: string): Promise<void> {
  let fsync = true
  const node = await createBenchLibp2p(['/ip4/127.0.0.1/tcp/0'])
  let streams = 0
  await node.handle(PROTOCOL, async (stream: Stream) => {
    const dir = join(outDir, `stream-${++streams}`)
    const flush = fsync
    try {
      reply({ type: 'received', ...await receiveOverStream(stream, dir, flush) })
    } catch (err) {
      stream.abort(err as Error)
      reply({ type: 'error', message: `receiving: ${(err as Error).message}` })
    }
  }, { maxInboundStreams: 64 })
  await node.start()
  reply({ type: 'ready', address: node.getMultiaddrs()[0]!.toString() })
  process.on('message', (command: Command) => {
    if (command.cmd === 'stop') void Promise.resolve(node.stop()).finally(() => { reply({ type: 'stopped' }); process.exit(0) })
    if (command.cmd === 'fsync') { fsync = command.on; reply({ type: 'fsync', on: fsync }) }
  })
}

/** Resolves once the stream can take more, or fails if it closes first. */
async function drained (stream: Stream): Promise<void> {
  const controller = new AbortController()
  try {
    await Promise.race([
      once(stream, 'drain', { signal: controller.signal }),
      once(stream, 'close', { signal: controller.signal }).then(([evt]: StreamCloseEvent[]) => { throw new Error(`the stream closed while waiting for drain${evt?.error === undefined ? '' : `: ${evt.error.message}`}`) })
    ])
  } finally {
    controller.abort()
  }
}

async function sendFiles (node: Libp2p, address: string, files: string[]): Promise<number> {
  return sendOverStream(await node.dialProtocol(multiaddr(address), PROTOCOL), files, CHUNK)
}

/**
 * One session's files over a stream, then its write side closed; resolves on the receiver's answer.
 * endHeader: the END header ends the files instead, and the write side is closed after the answer
 * (for a stream whose close of one side is racy, such as a TLS socket's half-close).
 */
export async function sendOverStream (stream: Stream, files: string[], chunkSize: number, endHeader = false): Promise<number> {
  const acknowledged = new Promise<void>((resolve, reject) => {
    stream.addEventListener('message', () => { resolve() })
    stream.addEventListener('close', (evt: StreamCloseEvent) => { reject(evt.error ?? new Error('the receiver closed without acknowledging')) })
  })
  acknowledged.catch(() => {})
  const send = async (chunk: Uint8Array): Promise<void> => {
    // A loop, not an if: yamux also dispatches 'drain' for a window update while the connection
    // below is still full, and one more chunk queued per such 'drain' outgrew maxWriteBufferLength
    // (16 MiB) within a second over @libp2p/tls with 1 MiB chunks: the stream was reset.
    while (stream.writableNeedsDrain) await drained(stream)
    if (!stream.send(chunk)) await drained(stream)
  }
  let bytes = 0
  for (const file of files) {
    const { size } = await stat(file)
    const header = new Uint8Array(8)
    new DataView(header.buffer).setBigUint64(0, BigInt(size))
    await send(header)
    for await (const chunk of createReadStream(file, { highWaterMark: chunkSize })) await send(chunk as Uint8Array)
    bytes += size
  }
  if (endHeader) {
    const end = new Uint8Array(8)
    new DataView(end.buffer).setBigUint64(0, END)
    await send(end)
    await acknowledged
    await stream.close()
  } else {
    await stream.close()
    await acknowledged
  }
  return bytes
}

async function sender (): Promise<void> {
  const node = await createBenchLibp2p([])
  await node.start()
  reply({ type: 'ready' })
  process.on('message', (command: Command) => {
    if (command.cmd === 'stop') {
      void Promise.resolve(node.stop()).finally(() => { reply({ type: 'stopped' }); process.exit(0) })
      return
    }
    if (command.cmd !== 'send') return
    void (async () => {
      try {
        // Files spread over the streams by size, largest first, each to the least loaded stream.
        const lanes = Array.from({ length: Math.max(1, Math.min(STREAMS, command.files.length)) }, () => ({ bytes: 0, files: [] as string[] }))
        const sized = await Promise.all(command.files.map(async (f) => ({ f, size: (await stat(f)).size })))
        for (const { f, size } of sized.sort((a, b) => b.size - a.size)) {
          const lane = lanes.reduce((a, b) => (b.bytes < a.bytes ? b : a))
          lane.files.push(f)
          lane.bytes += size
        }
        for (const lane of lanes) lane.files.sort()
        const started = process.hrtime.bigint()
        const sent = await Promise.all(lanes.map(async (lane) => sendFiles(node, command.address, lane.files)))
        const seconds = Number(process.hrtime.bigint() - started) / 1e9
        reply({ type: 'sent', seconds, bytes: sent.reduce((a, b) => a + b, 0), files: command.files.length, streams: lanes.length })
      } catch (err) {
        reply({ type: 'error', message: `sending: ${(err as Error).message}` })
      }
    })()
  })
}

if (import.meta.main) {
  const [mode, outDir] = process.argv.slice(2)
  if (mode === 'receive') await receive(outDir!)
  else if (mode === 'send') await sender()
  else throw new Error('usage: transfer-bare-worker.ts receive <outDir> | send')
}
