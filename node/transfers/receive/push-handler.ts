import type { Logger } from 'pino'
import { SignedManifest } from '../../../protocol/exchange/manifest.ts'
import { PushOffer, PushSenderStep } from '../../../protocol/exchange/push.ts'
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
 * wire on it, which is most of the time for studies of many small instances.
 */
const MAX_FINISHING_INSTANCES = 8

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

