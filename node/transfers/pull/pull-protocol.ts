import type { Stream } from '@libp2p/interface'
import { PullAnswer, PullRequest } from '../../../protocol/exchange/pull.ts'
import type { RemotePeer } from '../../p2p/host.ts'
import { adoptRemoteCode } from '../../p2p/remote-errors.ts'
import { createFramedStream, type FramedStreamInit } from '../../p2p/stream-io.ts'

/*
 * The pull protocol: one request, one answer, both control frames. What an allowed pull does
 * (a push back to the requester) is the caller's `decide`; this file only carries the words. A
 * pull queued for approval is decided later: the source then tells the requester on the
 * pull-decision protocol, one answer frame.
 */

export type DecidePull = (request: PullRequest, peer: RemotePeer) => Promise<PullAnswer>

export function createPullHandler (decide: DecidePull, init: FramedStreamInit = {}): (stream: Stream, peer: RemotePeer) => Promise<void> {
  return async (stream, peer) => {
    const framed = createFramedStream(stream, init)
    const request = await framed.readControl(PullRequest, 'pull request')
    await framed.writeControl(await decide(request, peer))
    await framed.close()
  }
}

export async function pullOverStream (stream: Stream, request: PullRequest, { signal, ...init }: FramedStreamInit & { signal?: AbortSignal } = {}): Promise<PullAnswer> {
  const framed = createFramedStream(stream, init)
  try {
    await framed.writeControl(request, signal)
    const answer = await framed.readControl(PullAnswer, 'pull answer', signal)
    await framed.close(signal).catch(() => {})
    return answer
  } catch (err) {
    framed.abort(err as Error)
    throw adoptRemoteCode(err)
  }
}

export type PullDecided = (answer: PullAnswer, peer: RemotePeer) => Promise<void>

export function createPullDecisionHandler (decided: PullDecided, init: FramedStreamInit = {}): (stream: Stream, peer: RemotePeer) => Promise<void> {
  return async (stream, peer) => {
    const framed = createFramedStream(stream, init)
    const answer = await framed.readControl(PullAnswer, 'pull decision')
    await decided(answer, peer)
    await framed.close()
  }
}

export async function sendPullDecision (stream: Stream, answer: PullAnswer, { signal, ...init }: FramedStreamInit & { signal?: AbortSignal } = {}): Promise<void> {
  const framed = createFramedStream(stream, init)
  try {
    await framed.writeControl(answer, signal)
    await framed.close(signal)
  } catch (err) {
    framed.abort(err as Error)
    throw adoptRemoteCode(err)
  }
}
