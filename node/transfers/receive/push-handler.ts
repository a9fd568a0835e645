import type { Logger } from 'pino'
import { SignedManifest } from '../../../protocol/exchange/manifest.ts'
import type { WireCompression } from '../../../protocol/exchange/data-path.ts'
import { PushDataVia, PushOffer, PushSenderStep } from '../../../protocol/exchange/push.ts'
import type { DataChannel, ExpectedConnection } from '../../p2p/data-channel.ts'
import { endWithPushStream } from '../push-streams.ts'
import { zstdDecompressed } from '../wire-compression.ts'
import { FrameUnexpectedError, StreamTruncatedError } from '../../../protocol/p2p/errors.ts'
import type { IncomingTransfers, ReceiveSession } from './incoming.ts'
import type { RemotePeer } from '../../p2p/host.ts'
import { jsonBytes, readJsonRun, writeRun } from '../../p2p/json-run.ts'
import { createFramedStream, DEFAULT_STALL_TIMEOUT_MS, type FramedStream, type FramedStreamInit } from '../../p2p/stream-io.ts'
import type { Stream } from '@libp2p/interface'

/*
 * The receiver's side of the push protocol on one stream (steps in protocol/exchange/push.ts). It
 * verifies the signed offer, answers with what it holds already, takes each missing instance
 * through its receive session (hash, size, header checked before anything is kept) and
 * acknowledges it, then commits the study in one batch and returns its signed receipt.
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
 * wire on it, which is most of the time for studies of many small instances. Their bytes are on
 * disk, not in memory. 32, not 8: with 8 the reading stopped behind a few slow fsyncs, and on a link
 * slower than the disk such a pause is line time lost for good (bench:wan, 1 Gbit/s x 50 ms: 0.50 ->
 * 0.73 of the line, and steadier rounds).
 */
const MAX_FINISHING_INSTANCES = 32

/** The sender's word on where the instances come; with 'tls', the data connection it opened with our token. */
async function dataStreamOf (framed: FramedStream, expected: ExpectedConnection, init: FramedStreamInit): Promise<FramedStream> {
  const via = await framed.readControl(PushDataVia, 'push data channel')
  if (via.via === 'stream') return framed
  const data = createFramedStream(await expected.stream, init)
  endWithPushStream(framed, data)
  return data
}

export interface PushReceiverComponents {
  incoming: IncomingTransfers
  logger: Logger
  /** the TLS data channel: named in the answer when the sender offered it */
  dataChannel?: Pick<DataChannel, 'expect'>
  /** zstd for uncompressed pixel data, when the sender offers it too (transfers.compression) */
  compression?: boolean
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
    /** where the instances come: the push stream, or the data channel the sender connected to */
    let data = framed
    const keepAlive = setInterval(() => {
      // Both streams: the push stream waits idle meanwhile, and must not be closed as inactive.
      for (const each of new Set([framed, data])) each.writeControl({ type: 'beeldnet/push-progress' }).catch(() => {})
    }, keepAliveMs)
    try {
      const expected = header.dataChannels?.includes('tls') === true ? components.dataChannel?.expect(peer.peerId) : undefined
      const compression = header.compression?.includes('zstd') === true && components.compression === true ? 'zstd' as const : undefined
      try {
        await writeRun(framed, jsonBytes({
          ...await session.accept(),
          ...(expected === undefined ? {} : { dataChannel: { kind: 'tls', port: expected.port, token: expected.token } }),
          ...(compression === undefined ? {} : { compression })
        }))
        if (expected !== undefined) data = await dataStreamOf(framed, expected, init)
      } finally {
        expected?.cancel()
      }
      await receiveInstances(data, session, compression)
      const receipt = jsonBytes(await session.commit())
      committed = true
      await data.writeControl({ type: 'beeldnet/push-receipt', bytes: receipt.byteLength })
      await writeRun(data, receipt)
      await data.close()
      if (data !== framed) await framed.close()
      components.logger.info({ transferId: session.transferId, from: peer.ura, study: session.manifest.study.studyInstanceUID, via: data === framed ? 'stream' : 'tls', compression }, 'push received')
    } catch (err) {
      // The session is closed before the peer hears why, so its next attempt finds the transfer free.
      if (!committed) await session.abort()
      if (data !== framed) data.abort(err as Error)
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
async function receiveInstances (framed: FramedStream, session: ReceiveSession, compression: WireCompression | undefined): Promise<void> {
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
      if (step.compression !== undefined && step.compression !== compression) throw new FrameUnexpectedError(`an instance ${compression === undefined ? 'uncompressed' : `uncompressed or ${compression}`}`, `one in ${step.compression}`)
      const run = dataRun(framed, consumed)
      const received = session.receiveInstance(step.sha256, step.compression === 'zstd' ? zstdDecompressed(run) : run)
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

