import type { Logger } from 'pino'
import { Answer } from '../../protocol/exchange/answer.ts'
import { reportsFirst, SignedManifest } from '../../protocol/exchange/manifest.ts'
import { MAX_PUSH_DOCUMENT_BYTES, PushOffer, PushReceiverStep, PushSenderStep } from '../../protocol/exchange/push.ts'
import { SignedReceipt } from '../../protocol/exchange/receipt.ts'
import { FrameUnexpectedError, StreamTruncatedError } from '../../protocol/p2p/errors.ts'
import { FRAME_HEADER_BYTES, MAX_DATA_FRAME_BYTES } from '../../protocol/p2p/framing.ts'
import { SchemaError } from '../../protocol/errors.ts'
import type { StudyStore } from '../store/study-store.ts'
import { TransferDeclinedError } from '../transfers/errors.ts'
import type { IncomingTransfers, ReceiveSession } from '../transfers/incoming.ts'
import type { DeliveryJob, DeliveryOptions } from '../transfers/queue.ts'
import type { RemotePeer } from './host.ts'
import { jsonBytes, readJsonRun, writeRun } from './json-run.ts'
import { adoptRemoteCode } from './remote-errors.ts'
import { createFramedStream, DEFAULT_STALL_TIMEOUT_MS, sendReadable, type FramedStream, type FramedStreamInit } from './stream-io.ts'
import type { Stream } from '@libp2p/interface'

/*
 * The push protocol on one stream (steps in protocol/exchange/push.ts). The receiver verifies the
 * signed offer, answers with what it holds already, takes each missing instance through its
 * receive session (hash, size, header checked before anything is kept) and acknowledges it, then
 * commits the study in one batch and returns its signed receipt. Either side's error resets the
 * stream with its code; the receiver's verified instances stay for the next attempt.
 */

/**
 * The data frames of one instance, up to its end frame, as a byte source for a session.
 * `consumed` settles once the end frame is read (or reading failed): the next step may be read.
 */
async function * dataRun (framed: FramedStream, consumed: PromiseWithResolvers<void>): AsyncGenerator<Uint8Array> {
  try {
    for (;;) {
      const frame = await framed.next()
      if (frame === undefined) throw new StreamTruncatedError('the stream ended inside an instance')
      if (frame.type === 'end') break
      if (frame.type !== 'data') throw new FrameUnexpectedError('data or end', frame.type)
      yield frame.bytes
    }
    consumed.resolve()
  } catch (err) {
    consumed.reject(err)
    throw err
  }
}

/**
 * Instances whose bytes are in but which are still being made durable (fsync, rename, the verified
 * record) while the next one arrives: per-instance durability no longer waits on the wire, nor the
 * wire on it, which is most of the time for studies of many small instances.
 */
const MAX_FINISHING_INSTANCES = 8

/**
 * Instance bytes are read in chunks that, with the 5-byte frame header, fill one 256 KiB yamux
 * message: about 1.4x the throughput of 64 KiB reads in bench:transfer, for less CPU.
 */
const SEND_CHUNK_BYTES = MAX_DATA_FRAME_BYTES - FRAME_HEADER_BYTES

export interface PushReceiverComponents {
  incoming: IncomingTransfers
  logger: Logger
}

/** Serves /beeldnet/push/1.0.0: one offer per stream. */
export function createPushHandler (components: PushReceiverComponents, init: FramedStreamInit = {}): (stream: Stream, peer: RemotePeer) => Promise<void> {
  // The sender reads only acknowledgements: it hears from us at least this often, so its reads do not
  // stall on a 1 GB instance on a slow link or on a long commit.
  const keepAliveMs = Math.max(100, Math.floor((init.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS) / 3))
  return async (stream, peer) => {
    const framed = createFramedStream(stream, init)
    const header = await framed.readControl(PushOffer, 'push offer')
    const offer = await readJsonRun(framed, header.bytes, SignedManifest, 'manifest')
    let session: ReceiveSession
    try {
      session = await components.incoming.open(offer, { peerId: peer.peerId, ura: peer.ura })
    } catch (err) {
      framed.abort(err as Error)
      throw err
    }
    let committed = false
    const keepAlive = setInterval(() => { framed.writeControl({ type: 'beeldnet/push-progress' }).catch(() => {}) }, keepAliveMs)
    try {
      await writeRun(framed, jsonBytes(await session.accept()))
      await receiveInstances(framed, session)
      const receipt = jsonBytes(await session.commit())
      committed = true
      await framed.writeControl({ type: 'beeldnet/push-receipt', bytes: receipt.byteLength })
      await writeRun(framed, receipt)
      await framed.close()
      components.logger.info({ transferId: session.transferId, from: peer.ura, study: session.manifest.study.studyInstanceUID }, 'push received')
    } catch (err) {
      // The session is closed before the peer hears why, so its next attempt finds the transfer free.
      if (!committed) await session.abort()
      framed.abort(err as Error)
      throw err
    } finally {
      clearInterval(keepAlive)
    }
  }
}

/**
 * Takes instances until the sender says it is done, acknowledging each once it is verified and
 * durable. Returns when all are; throws the first failure.
 */
async function receiveInstances (framed: FramedStream, session: ReceiveSession): Promise<void> {
  const finishing = new Set<Promise<void>>()
  /** the first instance that failed after its bytes were in: it ends the push */
  let failure: Error | undefined
  const failed = new AbortController()
  try {
    for (;;) {
      const step = await framed.readControl(PushSenderStep, 'push step', failed.signal)
      if (step.type === 'beeldnet/push-done') break
      while (finishing.size >= MAX_FINISHING_INSTANCES) await Promise.race(finishing)
      if (failure !== undefined) throw failure
      const consumed = Promise.withResolvers<void>()
      consumed.promise.catch(() => {})
      const received = session.receiveInstance(step.sha256, dataRun(framed, consumed))
      const fail = (err: unknown): void => { failure ??= err as Error; failed.abort(err) }
      // Never rejects: a failed instance, or an ack the stream no longer takes, is recorded as the
      // push's failure. (It leaves the set when it settles, so a rejection here would go unheard.)
      const acked = received.then(
        async (r) => { await framed.writeControl({ type: 'beeldnet/push-ack', sha256: r.sha256 }) }
      ).catch(fail).finally(() => finishing.delete(acked))
      finishing.add(acked)
      // On to the next step once this instance's bytes are in. If reading them failed, the session
      // is left to settle first: the transfer's record then names the reason, not our abort.
      await Promise.race([consumed.promise, received]).catch(async (err: unknown) => {
        await received.catch(() => {})
        throw failure ?? err
      })
    }
    await Promise.all(finishing)
    if (failure !== undefined) throw failure
  } catch (err) {
    // Instances whose bytes are all in finish first (none is reading from the stream by now):
    // kept, verified, they are not asked for again.
    await Promise.allSettled(finishing)
    throw failure ?? err
  }
}

export interface PushSenderComponents {
  store: StudyStore
}

/** One delivery attempt over an open stream: offer, send what is missing, return the receipt. */
export async function pushOverStream (components: PushSenderComponents, stream: Stream, job: DeliveryJob, options: DeliveryOptions, init: FramedStreamInit = {}): Promise<SignedReceipt> {
  const { onProgress, signal } = options
  const framed = createFramedStream(stream, init)
  const { manifest } = job
  try {
    onProgress({ kind: 'state', state: 'offering' })
    const offer = jsonBytes(manifest)
    await framed.writeControl({ type: 'beeldnet/push-offer', bytes: offer.byteLength }, signal)
    await writeRun(framed, offer, signal)
    const answer = await readJsonRun(framed, MAX_PUSH_DOCUMENT_BYTES, Answer, 'push answer', signal)
    if (answer.transferId !== manifest.signed.transferId || answer.manifestHash !== job.record.manifestHash) {
      throw new SchemaError('push answer', [`it answers transfer ${answer.transferId} (manifest ${answer.manifestHash.slice(0, 16)}), not this one`])
    }
    if (answer.decision === 'decline') {
      await framed.close(signal).catch(() => {})
      throw new TransferDeclinedError(manifest.signed.transferId, answer.reason, answer.text)
    }
    onProgress({ kind: 'have', sha256s: answer.have })
    const have = new Set(answer.have)
    const toSend = reportsFirst(manifest.signed.instances).filter((i) => !have.has(i.sha256))
    onProgress({ kind: 'state', state: 'sending' })
    // Acknowledgements come back while we write; the receipt ends the run.
    const receipt = readAcksThenReceipt(framed, onProgress, signal)
    receipt.catch(() => {})
    const open = (i: number): EarlyRead<Uint8Array> | undefined =>
      i < toSend.length ? readEarly(components.store.openInstance(toSend[i]!, { chunkBytes: SEND_CHUNK_BYTES })) : undefined
    // The next instance's file is opened and its first chunk read while this one is on the wire.
    let current: EarlyRead<Uint8Array> | undefined
    let next = open(0)
    try {
      for (let i = 0; i < toSend.length; i++) {
        current = next!
        next = open(i + 1)
        await framed.writeControl({ type: 'beeldnet/push-instance', sha256: toSend[i]!.sha256 }, signal)
        await sendReadable(framed, counted(current.chunks, onProgress), { signal })
      }
    } finally {
      // Files opened ahead, or one whose sending never started, are closed here.
      await Promise.all([current?.cancel(), next?.cancel()])
    }
    await framed.writeControl({ type: 'beeldnet/push-done' }, signal)
    onProgress({ kind: 'state', state: 'verifying' })
    const signed = await receipt
    await framed.close(signal).catch(() => {})
    return signed
  } catch (err) {
    framed.abort(err as Error)
    throw adoptRemoteCode(err)
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
