// One end of the node-tls transfer benchmark, in its own process (for its own peak RSS and CPU): the
// same files and the same wire format as transfer-bare-worker.ts, over a node:tls connection (OpenSSL,
// TLS 1.3) instead of a libp2p stream. Both ends authenticate as libp2p's TLS handshake does: each
// has a fresh Ed25519 identity and presents a self-signed certificate bound to it (@libp2p/tls's
// generateCertificate), and each checks the other's certificate against the peer id it expects
// (verifyPeerCertificate) before a byte of data moves; a wrong or missing certificate is refused.
//   receive <outDir>   listens on loopback; writes every connection's files under outDir/stream-N
//   send               connects to the receiver and sends files when the parent asks
// Driven over the IPC channel like the bare worker, plus {cmd:'admit', peerId} (receiver: the one
// sender it accepts) and a peerId in {cmd:'send'} (the receiver the sender expects); the ready
// answers carry each side's peer id.
//
// On the wire, per file: its size as a u64 (big-endian), then its bytes; after the last file the
// END header (all ones); the receiver answers one byte once every file is written (and fsynced),
// then both ends close. One connection per session (as a one-time transfer connection would be).
// Backpressure both ways: the sender waits for 'drain' when write() returns false; the receiver
// pauses the socket while more than HIGH_WATER bytes wait for the disk and resumes below LOW_WATER,
// and each file is fsynced and closed before the next is read (as bare-libp2p does).
//
// Environment (both ends read it): BENCH_TLS_CHUNK (sender's read and write size, default 1 MiB),
// BENCH_TLS_CIPHERS (OpenSSL cipher list, TLS 1.3 suites included, e.g. TLS_AES_128_GCM_SHA256;
// default OpenSSL's, AES-256-GCM first), BENCH_TLS_HIGH_WATER (the sockets' stream highWaterMark,
// default Node's), BENCH_TLS_READS=pool (the sender reads each file into two buffers it reuses, each
// once the socket has taken it) or stream (a fresh buffer per read from fs.createReadStream), default
// pool, BENCH_TLS_WRITES=batch (the receiver gathers the socket's chunks into one writev per MiB, two
// in flight) or stream (fs.createWriteStream, one write per chunk), default stream (batch was no
// better, and at times paid more system time), BENCH_TLS_PIPELINE (files whose fsync and close may
// still be under way while the next streams; default 0, one after another as bare-libp2p),
// BENCH_TLS_PLAIN=1 (plain TCP, no encryption and no authentication: what the rest costs),
// BENCH_TLS_STREAM=1 (the TLS socket seen as a libp2p Stream by the node's TlsStream,
// node/p2p/tls-stream.ts, and the files moved by the bare-libp2p worker's stream code: what that
// wrapper costs).
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, open, stat } from 'node:fs/promises'
import { once } from 'node:events'
import { connect as connectTcp, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net'
import { join } from 'node:path'
import { finished } from 'node:stream/promises'
import { connect, createServer, type TLSSocket } from 'node:tls'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { generateCertificate, verifyPeerCertificate } from '@libp2p/tls/utils'

const KiB = 1024
const MiB = 1024 * KiB
const CHUNK = envNumber('BENCH_TLS_CHUNK', MiB)
const CIPHERS = process.env.BENCH_TLS_CIPHERS === '' ? undefined : process.env.BENCH_TLS_CIPHERS
const SOCKET_HIGH_WATER = process.env.BENCH_TLS_HIGH_WATER === undefined ? undefined : envNumber('BENCH_TLS_HIGH_WATER', 0)
const HIGH_WATER = 4 * MiB
const LOW_WATER = 2 * MiB
const END = 0xffff_ffff_ffff_ffffn
const STREAM_PROTOCOL = '/beeldnet-bench/tls-stream/1.0.0'
const POOLED_READS = (process.env.BENCH_TLS_READS ?? 'pool') === 'pool'
const PLAIN = process.env.BENCH_TLS_PLAIN === '1'
const AS_STREAM = process.env.BENCH_TLS_STREAM === '1'
const BATCHED_WRITES = process.env.BENCH_TLS_WRITES === 'batch'
const WRITE_BATCH = MiB
const PIPELINE = Number(process.env.BENCH_TLS_PIPELINE ?? 0)

type Command = { cmd: 'send', address: string, peerId: string, files: string[] } | { cmd: 'admit', peerId: string } | { cmd: 'fsync', on: boolean } | { cmd: 'stop' }

function envNumber (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`${name} must be a positive integer, not ${raw}`)
  return n
}

function reply (message: unknown): void {
  process.send!(message)
}

/** What both ends' TLS contexts share: TLS 1.3 only, our certificate, the peer's checked by us, not by a CA. */
function tlsOptions (credentials: { cert: string, key: string }): { cert: string, key: string, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', rejectUnauthorized: false, ciphers?: string, highWaterMark?: number } {
  return {
    ...credentials,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    rejectUnauthorized: false,
    ...(CIPHERS === undefined ? {} : { ciphers: CIPHERS }),
    ...(SOCKET_HIGH_WATER === undefined ? {} : { highWaterMark: SOCKET_HIGH_WATER })
  }
}

/** The peer's certificate, bound to the Ed25519 key of the peer we expect, or an error. */
async function verifyPeer (socket: TLSSocket, expected: PeerId | undefined): Promise<void> {
  if (expected === undefined) throw new Error('no peer is admitted')
  const raw = socket.getPeerCertificate().raw as Buffer | undefined
  if (raw === undefined) throw new Error('the peer presented no certificate')
  await verifyPeerCertificate(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength), expected)
}

/** Reads a socket's bytes with bounded memory: pauses it while the consumer is behind. */
class SocketReader {
  private readonly chunks: Buffer[] = []
  private buffered = 0
  private ended = false
  private error: Error | undefined
  private wake: (() => void) | undefined
  private readonly socket: Socket

  constructor (socket: Socket) {
    this.socket = socket
    if (socket.destroyed) this.error = new Error('the connection closed')
    socket.on('data', (data: Buffer) => {
      this.chunks.push(data)
      this.buffered += data.byteLength
      if (this.buffered > HIGH_WATER) socket.pause()
      this.notify()
    })
    socket.on('end', () => { this.ended = true; this.notify() })
    socket.on('error', (err) => { this.error = err; this.notify() })
    socket.on('close', () => { this.error ??= this.ended ? undefined : new Error('the connection closed'); this.ended = true; this.notify() })
  }

  private notify (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  /** Up to `max` bytes, or undefined once the peer has closed and everything was read. */
  async read (max: number): Promise<Buffer | undefined> {
    for (;;) {
      const head = this.chunks[0]
      if (head !== undefined) {
        let out: Buffer
        if (head.byteLength <= max) {
          out = head
          this.chunks.shift()
        } else {
          out = head.subarray(0, max)
          this.chunks[0] = head.subarray(max)
        }
        this.buffered -= out.byteLength
        if (this.socket.isPaused() && this.buffered < LOW_WATER) this.socket.resume()
        return out
      }
      if (this.error !== undefined) throw this.error
      if (this.ended) return undefined
      if (this.socket.isPaused()) this.socket.resume()
      await new Promise<void>((resolve) => { this.wake = resolve })
    }
  }

  /** Exactly `n` bytes; undefined at a clean end before the first byte. */
  async readExact (n: number): Promise<Buffer | undefined> {
    const out = Buffer.allocUnsafe(n)
    let got = 0
    while (got < n) {
      const chunk = await this.read(n - got)
      if (chunk === undefined) {
        if (got === 0) return undefined
        throw new Error(`the connection ended inside a ${n}-byte header`)
      }
      out.set(chunk, got)
      got += chunk.byteLength
    }
    return out
  }
}

/**
 * A file's bytes through fs.createWriteStream, one write per chunk the socket gave; flush: fsync
 * before close. Resolves once every byte is queued, with the file's last write, fsync and close
 * still to come in `durable`.
 */
async function writeStreamed (reader: SocketReader, path: string, size: number, flush: boolean): Promise<{ durable: Promise<void> }> {
  const out = createWriteStream(path, { highWaterMark: MiB, flush })
  let remaining = size
  while (remaining > 0) {
    const chunk = await reader.read(remaining)
    if (chunk === undefined) throw new Error(`the connection ended ${remaining} bytes before the end of ${path}`)
    remaining -= chunk.byteLength
    if (!out.write(chunk)) await once(out, 'drain')
  }
  out.end()
  const durable = finished(out)
  durable.catch(() => {})
  return { durable }
}

/**
 * A file's bytes as the socket's chunks, gathered (not copied) into one writev per WRITE_BATCH bytes,
 * at most two of them in flight; flush: fsync before close.
 */
async function writeBatched (reader: SocketReader, path: string, size: number, flush: boolean): Promise<void> {
  const handle = await open(path, 'w')
  try {
    const inFlight: Array<Promise<unknown>> = []
    let batch: Buffer[] = []
    let batched = 0
    let position = 0
    let remaining = size
    while (remaining > 0) {
      const chunk = await reader.read(remaining)
      if (chunk === undefined) throw new Error(`the connection ended ${remaining} bytes before the end of ${path}`)
      remaining -= chunk.byteLength
      batch.push(chunk)
      batched += chunk.byteLength
      if (batched >= WRITE_BATCH || remaining === 0) {
        if (inFlight.length >= 2) await inFlight.shift()
        inFlight.push(handle.writev(batch, position))
        position += batched
        batch = []
        batched = 0
      }
    }
    await Promise.all(inFlight)
    if (flush) await handle.sync()
  } finally {
    await handle.close()
  }
}

async function receiveFiles (socket: Socket, dir: string, flush: boolean): Promise<{ files: number, bytes: number }> {
  await mkdir(dir, { recursive: true })
  const reader = new SocketReader(socket)
  let files = 0
  let bytes = 0
  const pending: Array<Promise<void>> = []
  for (;;) {
    const header = await reader.readExact(8)
    if (header === undefined) throw new Error('the connection ended before the END header')
    const size = header.readBigUInt64BE(0)
    if (size === END) break
    const path = join(dir, `${String(files).padStart(5, '0')}.dcm`)
    if (BATCHED_WRITES) await writeBatched(reader, path, Number(size), flush)
    else {
      const { durable } = await writeStreamed(reader, path, Number(size), flush)
      // Up to PIPELINE files may still be on their way to disk while the next one streams.
      pending.push(durable)
      if (pending.length > PIPELINE) await pending.shift()
    }
    files++
    bytes += Number(size)
  }
  // The answer (the receipt's place) only once every file is durable.
  await Promise.all(pending)
  return { files, bytes }
}

async function receive (outDir: string): Promise<void> {
  let fsync = true
  let admitted: PeerId | undefined
  let connections = 0
  const privateKey = await generateKeyPair('Ed25519')
  const onConnection = (socket: Socket): void => {
    socket.setNoDelay(true)
    socket.on('error', () => {}) // the reader or the check below sees it
    const dir = join(outDir, `stream-${++connections}`)
    const flush = fsync
    void (async () => {
      try {
        // Not a byte is read before the sender's certificate is checked against the admitted peer id.
        if (!PLAIN) await verifyPeer(socket as TLSSocket, admitted)
        if (AS_STREAM) {
          const stream = new (await import('../../node/p2p/tls-stream.ts')).TlsStream(socket as TLSSocket, 'inbound', STREAM_PROTOCOL)
          reply({ type: 'received', ...await (await import('./transfer-bare-worker.ts')).receiveOverStream(stream, dir, flush) })
          return
        }
        const received = await receiveFiles(socket, dir, flush)
        socket.end(Buffer.of(1))
        reply({ type: 'received', ...received })
      } catch (err) {
        socket.destroy()
        reply({ type: 'error', message: `receiving: ${(err as Error).message}` })
      }
    })()
  }
  const server = PLAIN
    ? createTcpServer(SOCKET_HIGH_WATER === undefined ? {} : { highWaterMark: SOCKET_HIGH_WATER }, onConnection)
    : createServer({ ...tlsOptions(await generateCertificate(privateKey)), requestCert: true }, onConnection)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { address, port } = server.address() as AddressInfo
  reply({ type: 'ready', address: `${address}:${port}`, peerId: peerIdFromPrivateKey(privateKey).toString() })
  process.on('message', (command: Command) => {
    if (command.cmd === 'stop') server.close(() => { reply({ type: 'stopped' }); process.exit(0) })
    if (command.cmd === 'admit') { admitted = peerIdFromString(command.peerId); reply({ type: 'admitted' }) }
    if (command.cmd === 'fsync') { fsync = command.on; reply({ type: 'fsync', on: fsync }) }
  })
}

/** Resolves once the socket can take more, or fails if it closes first. */
async function drained (socket: Socket): Promise<void> {
  const controller = new AbortController()
  try {
    await Promise.race([
      once(socket, 'drain', { signal: controller.signal }),
      once(socket, 'close', { signal: controller.signal }).then(() => { throw new Error('the connection closed while waiting for drain') })
    ])
  } finally {
    controller.abort()
  }
}

/** Two read buffers for the whole process, each reused once the socket is done with what it held. */
const pool = POOLED_READS ? [Buffer.allocUnsafeSlow(CHUNK), Buffer.allocUnsafeSlow(CHUNK)] : []
const taken: Array<Promise<void>> = [Promise.resolve(), Promise.resolve()]

async function sendPooled (socket: Socket, file: string): Promise<void> {
  const handle = await open(file)
  try {
    for (let i = 0; ; i ^= 1) {
      await taken[i]
      const { bytesRead } = await handle.read(pool[i]!, 0, CHUNK, null)
      if (bytesRead === 0) return
      // The write callback comes once the bytes are encrypted and handed to the kernel.
      taken[i] = new Promise<void>((resolve, reject) => {
        socket.write(pool[i]!.subarray(0, bytesRead), (err) => { if (err == null) resolve(); else reject(err) })
      })
      taken[i]!.catch(() => {})
      if (socket.writableNeedDrain) await drained(socket)
    }
  } finally {
    await handle.close()
  }
}

function header (size: bigint): Buffer {
  const out = Buffer.allocUnsafe(8)
  out.writeBigUInt64BE(size)
  return out
}

async function sendFiles (credentials: { cert: string, key: string }, address: string, receiver: PeerId, files: string[]): Promise<number> {
  const colon = address.lastIndexOf(':')
  const target = { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) }
  const socket = PLAIN
    ? connectTcp({ ...target, ...(SOCKET_HIGH_WATER === undefined ? {} : { highWaterMark: SOCKET_HIGH_WATER }) })
    : connect({ ...tlsOptions(credentials), ...target })
  try {
    socket.setNoDelay(true)
    await once(socket, PLAIN ? 'connect' : 'secureConnect')
    // Not a byte is sent before the receiver's certificate is checked against the peer id we expect.
    if (!PLAIN) await verifyPeer(socket as TLSSocket, receiver)
    if (AS_STREAM) {
      const stream = new (await import('../../node/p2p/tls-stream.ts')).TlsStream(socket as TLSSocket, 'outbound', STREAM_PROTOCOL)
      return await (await import('./transfer-bare-worker.ts')).sendOverStream(stream, files, CHUNK, true)
    }
    const acknowledged = new Promise<void>((resolve, reject) => {
      socket.once('data', () => { resolve() })
      socket.once('close', () => { reject(new Error('the receiver closed without acknowledging')) })
    })
    acknowledged.catch(() => {})
    const send = async (chunk: Buffer): Promise<void> => {
      if (!socket.write(chunk)) await drained(socket)
    }
    let bytes = 0
    for (const file of files) {
      const { size } = await stat(file)
      await send(header(BigInt(size)))
      if (POOLED_READS) await sendPooled(socket, file)
      else for await (const chunk of createReadStream(file, { highWaterMark: CHUNK })) await send(chunk as Buffer)
      bytes += size
    }
    await send(header(END))
    await acknowledged
    socket.end()
    return bytes
  } catch (err) {
    socket.destroy()
    throw err
  }
}

async function sender (): Promise<void> {
  const privateKey = await generateKeyPair('Ed25519')
  const credentials = await generateCertificate(privateKey)
  reply({ type: 'ready', peerId: peerIdFromPrivateKey(privateKey).toString() })
  process.on('message', (command: Command) => {
    if (command.cmd === 'stop') {
      reply({ type: 'stopped' })
      process.exit(0)
    }
    if (command.cmd !== 'send') return
    void (async () => {
      try {
        const started = process.hrtime.bigint()
        const bytes = await sendFiles(credentials, command.address, peerIdFromString(command.peerId), command.files)
        const seconds = Number(process.hrtime.bigint() - started) / 1e9
        reply({ type: 'sent', seconds, bytes, files: command.files.length, streams: 1 })
      } catch (err) {
        reply({ type: 'error', message: `sending: ${(err as Error).message}` })
      }
    })()
  })
}

const [mode, outDir] = process.argv.slice(2)
if (mode === 'receive') await receive(outDir!)
else if (mode === 'send') await sender()
else throw new Error('usage: transfer-node-tls-worker.ts receive <outDir> | send')
