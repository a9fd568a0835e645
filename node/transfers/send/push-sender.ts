import { Answer } from '../../../protocol/exchange/answer.ts'
import type { DataChannelOffer } from '../../../protocol/exchange/data-path.ts'
import { reportsFirst, type ManifestInstance } from '../../../protocol/exchange/manifest.ts'
import { MAX_PUSH_DOCUMENT_BYTES, PushReceiverStep } from '../../../protocol/exchange/push.ts'
import { SignedReceipt } from '../../../protocol/exchange/receipt.ts'
import { FRAME_HEADER_BYTES, MAX_DATA_FRAME_BYTES } from '../../../protocol/p2p/framing.ts'
import { SchemaError } from '../../../protocol/errors.ts'
import type { Logger } from 'pino'
import type { DataChannel } from '../../p2p/data-channel.ts'
import type { TlsStream } from '../../p2p/tls-stream.ts'
import type { ReadBuffers } from '../../store/blob-store.ts'
import { DataChannelError } from '../../p2p/errors.ts'
import { endWithPushStream } from '../push-streams.ts'
import type { StudyStore } from '../../store/study-store.ts'
import { worthCompressing, zstdCompressed } from '../wire-compression.ts'
import { TransferDeclinedError } from '../errors.ts'
import type { DeliveryJob, DeliveryOptions } from './queue.ts'
import { jsonBytes, readJsonRun, writeRun } from '../../p2p/json-run.ts'
import { adoptRemoteCode } from '../../p2p/remote-errors.ts'
import { createFramedStream, DEFAULT_STALL_TIMEOUT_MS, sendReadable, type FramedStream, type FramedStreamInit } from '../../p2p/stream-io.ts'
import type { Stream } from '@libp2p/interface'

/*
 * The sender's side of the push protocol on one stream (steps in protocol/exchange/push.ts; the
 * receiver's side is receive/push-handler.ts): offer the signed manifest, send what the receiver
 * does not hold, read its acknowledgements, return its signed receipt. Either side's error resets
 * the stream with its code; the receiver's verified instances stay for the next attempt.
 */

/**
 * Instance bytes are read in chunks that, with the 5-byte frame header, fill one 256 KiB yamux
 * message: about 1.4x the throughput of 64 KiB reads in bench:transfer, for less CPU.
 */
const SEND_CHUNK_BYTES = MAX_DATA_FRAME_BYTES - FRAME_HEADER_BYTES

export interface PushSenderComponents {
  store: Pick<StudyStore, 'openInstance' | 'index'>
  logger: Logger
  /** the TLS data channel: offered to the receiver when there is one */
  dataChannel?: Pick<DataChannel, 'connect'>
  /** where an open connection reaches a peer: its data channel listens at the same address */
  remoteHostOf?: (peerId: string) => string | undefined
  /** offer zstd for uncompressed pixel data (transfers.compression) */
  compression?: boolean
}

/** One delivery attempt over an open stream: offer, send what is missing, return the receipt. */
export async function pushOverStream (components: PushSenderComponents, stream: Stream, job: DeliveryJob, options: DeliveryOptions, init: FramedStreamInit = {}): Promise<SignedReceipt> {
  const { onProgress, signal } = options
  const framed = createFramedStream(stream, init)
  /** where the instances go: the push stream, or the data channel the receiver named */
  let data = framed
  const { manifest } = job
  try {
    onProgress({ kind: 'state', state: 'offering' })
    const offer = jsonBytes(manifest)
    await framed.writeControl({
      type: 'beeldnet/push-offer',
      bytes: offer.byteLength,
      ...(components.dataChannel === undefined ? {} : { dataChannels: ['tls'] }),
      ...(components.compression === true ? { compression: ['zstd'] } : {})
    }, signal)
    await writeRun(framed, offer, signal)
    const answer = await readJsonRun(framed, MAX_PUSH_DOCUMENT_BYTES, Answer, 'push answer', signal)
    if (answer.transferId !== manifest.signed.transferId || answer.manifestHash !== job.record.manifestHash) {
      throw new SchemaError('push answer', [`it answers transfer ${answer.transferId} (manifest ${answer.manifestHash.slice(0, 16)}), not this one`])
    }
    if (answer.decision === 'decline') {
      await framed.close(signal).catch(() => {})
      throw new TransferDeclinedError(manifest.signed.transferId, answer.reason, answer.text)
    }
    if ((answer.dataChannel !== undefined && components.dataChannel === undefined) || (answer.compression !== undefined && components.compression !== true)) {
      throw new SchemaError('push answer', ['it names a data channel or a compression the offer did not allow'])
    }
    if (answer.dataChannel !== undefined) data = await useDataChannel(components, framed, job.record.peerId, answer.dataChannel, init, signal)
    const compress = answer.compression === 'zstd'
    onProgress({ kind: 'have', sha256s: answer.have })
    const have = new Set(answer.have)
    const toSend = reportsFirst(manifest.signed.instances).filter((i) => !have.has(i.sha256))
    onProgress({ kind: 'state', state: 'sending' })
    // Acknowledgements come back while we write; the receipt ends the run.
    const receipt = readAcksThenReceipt(data, onProgress, signal)
    receipt.catch(() => {})
    // On the data channel, uncompressed, file chunks are read into buffers used again once written.
    const buffers = data !== framed && !compress ? reusedBuffers(SEND_CHUNK_BYTES) : undefined
    /** chunks sent and not yet known to be out of the stream's buffers */
    const written: Uint8Array[] = []
    const open = (i: number): EarlyRead<Uint8Array> | undefined =>
      i < toSend.length ? readEarly(components.store.openInstance(toSend[i]!, { chunkBytes: SEND_CHUNK_BYTES, buffers })) : undefined
    // The next instance's file is opened and its first chunk read while this one is on the wire.
    let current: EarlyRead<Uint8Array> | undefined
    let next = open(0)
    try {
      for (let i = 0; i < toSend.length; i++) {
        current = next!
        next = open(i + 1)
        const instance = toSend[i]!
        const zstd = compress && worthCompressing(await transferSyntaxOf(components.store, manifest.signed.study.studyInstanceUID, instance))
        await data.writeControl({ type: 'beeldnet/push-instance', sha256: instance.sha256, ...(zstd ? { compression: 'zstd' } : {}) }, signal)
        const bytes = counted(current.chunks, onProgress)
        if (buffers === undefined) await sendReadable(data, zstd ? zstdCompressed(bytes) : bytes, { signal })
        else await sendReleasing(data, bytes, buffers, written, signal)
      }
    } finally {
      // Files opened ahead, or one whose sending never started, are closed here.
      await Promise.all([current?.cancel(), next?.cancel()])
    }
    await data.writeControl({ type: 'beeldnet/push-done' }, signal)
    onProgress({ kind: 'state', state: 'verifying' })
    const signed = await receipt
    await data.close(signal).catch(() => {})
    if (data !== framed) await framed.close(signal).catch(() => {})
    return signed
  } catch (err) {
    if (data !== framed) data.abort(err as Error)
    framed.abort(err as Error)
    throw adoptRemoteCode(err)
  }
}

/**
 * Connects to the receiver's data channel and says so on the push stream, which then only waits;
 * a data port that cannot be reached (a firewall, say) leaves the push on the push stream.
 */
async function useDataChannel (components: PushSenderComponents, framed: FramedStream, peerId: string, offer: DataChannelOffer, init: FramedStreamInit, signal: AbortSignal): Promise<FramedStream> {
  const host = components.remoteHostOf?.(peerId)
  try {
    if (host === undefined) throw new DataChannelError(`no open connection tells where ${peerId} is`)
    // A firewall that drops packets would hold a connect for minutes: give up well inside the
    // receiver's stall timeout, which is how long it waits for our word on the push stream.
    const connecting = AbortSignal.any([signal, AbortSignal.timeout(Math.min(10_000, Math.floor((init.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS) / 2)))])
    const channel = await components.dataChannel!.connect(peerId, { host, port: offer.port }, offer.token, { signal: connecting })
    const data = createFramedStream(channel, init)
    await framed.writeControl({ type: 'beeldnet/push-data', via: 'tls' }, signal)
    endWithPushStream(framed, data)
    return data
  } catch (err) {
    signal.throwIfAborted()
    components.logger.warn({ err, peerId, host, port: offer.port }, 'the data channel of the receiving node cannot be reached: the push goes over the libp2p stream')
    await framed.writeControl({ type: 'beeldnet/push-data', via: 'stream' }, signal)
    return framed
  }
}

async function transferSyntaxOf (store: Pick<StudyStore, 'index'>, studyInstanceUID: string, instance: ManifestInstance): Promise<string | undefined> {
  return (await store.index.getInstance({ studyInstanceUID, seriesInstanceUID: instance.seriesInstanceUID }, instance.sopInstanceUID))?.transferSyntaxUID
}

/**
 * A pool of equal buffers for file reads. A fresh 256 KiB buffer per read cost the sender about 3x
 * its CPU and tens of MB of peak RSS (bench:transfer: allocation, page faults, external-memory
 * garbage); a chunk comes back only once the TLS stream holds nothing more (sendReleasing).
 */
function reusedBuffers (bytes: number): ReadBuffers {
  const free: Buffer[] = []
  return {
    acquire: (size) => (size === bytes ? free.pop() : undefined) ?? Buffer.allocUnsafeSlow(size),
    release: (chunk) => {
      if (chunk.buffer.byteLength === bytes && free.length < 16) free.push(Buffer.from(chunk.buffer, 0, bytes))
    }
  }
}

/**
 * sendReadable for chunks of `buffers`: each goes back to the pool once it is written out, when the
 * TLS stream and its socket hold nothing more (a write that had to wait for 'drain' is out by then;
 * a short last chunk of a file, at the next such moment).
 */
async function sendReleasing (data: FramedStream, source: AsyncIterable<Uint8Array>, buffers: ReadBuffers, written: Uint8Array[], signal: AbortSignal): Promise<void> {
  const stream = data.stream as Partial<Pick<TlsStream, 'allWritten'>>
  try {
    for await (const chunk of source) {
      await data.writeData(chunk, signal)
      // Writes go out in order: once the stream holds nothing, every chunk given to it so far is out.
      written.push(chunk)
      if (stream.allWritten === true) for (const out of written.splice(0)) buffers.release(out)
    }
    await data.writeEnd(signal)
  } catch (err) {
    data.abort(err as Error)
    throw err
  }
}

async function readAcksThenReceipt (framed: FramedStream, onProgress: DeliveryOptions['onProgress'], signal: AbortSignal): Promise<SignedReceipt> {
  for (;;) {
    const step = await framed.readControl(PushReceiverStep, 'push acknowledgement', signal)
    if (step.type === 'beeldnet/push-progress') continue
    if (step.type === 'beeldnet/push-ack') {
      onProgress({ kind: 'confirmed', sha256: step.sha256 })
      continue
    }
    return await readJsonRun(framed, step.bytes, SignedReceipt, 'receipt', signal)
  }
}

async function * counted (source: AsyncIterable<Uint8Array>, onProgress: DeliveryOptions['onProgress']): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    yield chunk
    onProgress({ kind: 'bytes', bytes: chunk.byteLength })
  }
}

interface EarlyRead<T> {
  /** what the source yields, from its first item on */
  chunks: AsyncIterable<T>
  /** ends the source when its chunks are not going to be read */
  cancel: () => Promise<void>
}

/** Starts reading `source` now rather than when its chunks are first asked for. */
function readEarly<T> (source: AsyncIterable<T>): EarlyRead<T> {
  const iterator = source[Symbol.asyncIterator]()
  const first = iterator.next()
  first.catch(() => {})
  return {
    chunks: (async function * () {
      try {
        for (let item = await first; item.done !== true; item = await iterator.next()) yield item.value
      } finally {
        await iterator.return?.()
      }
    })(),
    cancel: async () => {
      await first.catch(() => {})
      await iterator.return?.()
    }
  }
}
