import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { abortPdu, associateRq, cStoreRq, parseAssociateAc, parseCommand, pDataHeader, PduReader, PduType, pdvsOf, releaseRq, sendDataset, type ProposedContext } from './ul/pdu.ts'
import { writeOrWait } from '../net/socket-write.ts'

/*
 * A C-STORE SCU that streams: each instance goes from the disk to the destination in P-DATA
 * fragments, waiting for the socket to drain, so memory stays flat however large the instance.
 * The last fragment is held back until the stored bytes have verified against their hash: a
 * damaged file ends in an A-ABORT, and the destination never gets a complete instance of it.
 * Each instance is proposed in its stored transfer syntax and, when it has them, in the native
 * syntaxes it can be decoded to (each pair its own presentation context): it goes as stored when
 * the destination takes that, else decoded to the first other syntax the destination accepted.
 *
 * The caller's AbortSignal ends the association at once, not after the instance being sent: a PACS
 * that is slow, or a 1 GB instance, would keep a cancel or a node's stop waiting for minutes. An
 * A-ABORT goes out when the bytes queued so far end on a PDU boundary; mid-PDU it could not be
 * framed, and the connection is closed instead (the destination's A-P-ABORT, PS3.8 9.1.7). Either
 * way the destination discards the instance it was receiving, if it had not stored it yet.
 */

export interface OutgoingInstance {
  sopClassUID: string
  sopInstanceUID: string
  transferSyntaxUID: string
  /** the dataset's bytes (no File Meta); the iteration throws at its end if they did not verify */
  dataset (): AsyncIterable<Uint8Array>
  /** other syntaxes it can be sent in (decoded), in order of preference; opened only when chosen, and a refusal fails this instance alone */
  decoded?: {
    transferSyntaxUIDs: string[]
    open (transferSyntaxUID: string): Promise<AsyncIterable<Uint8Array>>
  }
}

export interface StoreResult {
  sopInstanceUID: string
  /**
   * answered: `status` is the destination's answer; not-sent: the node did not send it (no accepted
   * presentation context, or decoding refused), 0x0122 stands for it; lost: the association failed
   * before its answer, 0xA700 stands for it; aborted: the caller's signal ended the association
   * before its answer, 0xFE00 (Cancel) stands for it
   */
  outcome: 'answered' | 'not-sent' | 'lost' | 'aborted'
  /** DIMSE status of the destination's answer (0: success), or the one that stands for it */
  status: number
  comment: string
  /** the Beeldnet error code of a refusal of the node's own (a decoder's), when it has one */
  code?: string
}

export interface Destination { aeTitle: string, host: string, port: number }

/** Refused when the destination does not take the SOP class in the stored transfer syntax. */
const SOP_CLASS_NOT_SUPPORTED = 0x0122
/** Stands for an instance the association was lost before it was answered (out of resources). */
const LOST = 0xA700
/** Stands for an instance whose sending the caller aborted (PS3.7 C.4: Cancel). */
const CANCELLED = 0xFE00
const MAX_FRAGMENT = 1024 * 1024
const DEFAULT_TIMEOUT_MS = 120_000

class Association {
  private readonly socket: Socket
  private readonly reader = new PduReader()
  private readonly inbox: Array<{ type: number, body: Buffer }> = []
  private failure: Error | undefined
  private wake: (() => void) | undefined
  private readonly timeoutMs: number
  /** bytes of the PDU being written still to come: 0 when what is queued ends on a PDU boundary */
  private pduLeft = 0
  private ended = false
  /** settles when the association is aborted: a write waiting for a destination that does not read ends then */
  private readonly aborted = Promise.withResolvers<void>()

  constructor (socket: Socket, timeoutMs: number) {
    this.socket = socket
    this.timeoutMs = timeoutMs
    socket.on('data', (chunk: Buffer) => {
      try { this.inbox.push(...this.reader.push(chunk)) } catch (err) { this.failure ??= err as Error }
      this.poke()
    })
    socket.on('error', (err) => { this.failure ??= err; this.poke() })
    socket.on('close', () => { this.failure ??= new Error('the destination closed the connection'); this.poke() })
  }

  private poke (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  async next (): Promise<{ type: number, body: Buffer }> {
    const deadline = Date.now() + this.timeoutMs
    for (;;) {
      const pdu = this.inbox.shift()
      if (pdu !== undefined) {
        if (pdu.type === PduType.abort) throw new Error('the destination aborted the association')
        return pdu
      }
      if (this.failure !== undefined) throw this.failure
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no answer from the destination within ${this.timeoutMs / 1000} s`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.wake = () => { clearTimeout(timer); resolve() }
      })
    }
  }

  async write (bytes: Uint8Array): Promise<void> {
    if (this.failure !== undefined) throw this.failure
    this.frame(bytes)
    await Promise.race([writeOrWait(this.socket, bytes), this.aborted.promise])
    // Ended while the write waited for the socket: the next step must not begin.
    if (this.failure !== undefined) throw this.failure
  }

  /** Follows the PDUs being written (every PDU starts with its type, a reserved byte and its length). */
  private frame (bytes: Uint8Array): void {
    let at = 0
    while (at < bytes.byteLength) {
      if (this.pduLeft === 0) {
        // Our own writes always start a PDU with its whole 6-byte header.
        this.pduLeft = 6 + Buffer.from(bytes.buffer, bytes.byteOffset + at, 6).readUInt32BE(2)
      }
      const take = Math.min(this.pduLeft, bytes.byteLength - at)
      this.pduLeft -= take
      at += take
    }
  }

  /** Ends the association with `reason` for whatever waits on it: an A-ABORT when it can be framed, else the connection closed. */
  abort (reason: Error = new Error('the association was aborted')): void {
    this.failure ??= reason
    this.poke()
    this.aborted.resolve()
    if (this.ended) return
    this.ended = true
    // Not connected yet, there is no association to abort: the connection attempt ends.
    if (this.pduLeft === 0 && !this.socket.destroyed && !this.socket.connecting) {
      this.socket.end(abortPdu())
      // The destination closes on an A-ABORT; one that does not read is not waited for long.
      setTimeout(() => { this.socket.destroy() }, 1000).unref()
    } else {
      this.socket.destroy()
    }
  }

  close (): void {
    this.ended = true
    this.socket.destroy()
  }
}

/** Why a sending was aborted, in words: the signal's reason. */
function abortReason (signal: AbortSignal): Error {
  const reason: unknown = signal.reason
  return reason instanceof Error ? reason : new Error(String(reason ?? 'the sending was aborted'))
}

/**
 * Sends `instances` to `destination` on one association; each answer (or failure) goes to `onResult`.
 * `signal` aborts it: the instance being sent and those after it are 'aborted'.
 */
export async function storeInstances (destination: Destination, callingAeTitle: string, instances: OutgoingInstance[],
  onResult: (result: StoreResult) => void, options: { timeoutMs?: number, signal?: AbortSignal } = {}): Promise<{ reasons: string[] }> {
  const { signal } = options
  // A function, not a narrowed property: the signal aborts while this runs.
  const aborted = (): boolean => signal?.aborted === true
  const reasons: string[] = []
  const contextIds = new Map<string, number>()
  const contexts: ProposedContext[] = []
  for (const i of instances) {
    for (const syntax of [i.transferSyntaxUID, ...(i.decoded?.transferSyntaxUIDs ?? [])]) {
      const key = `${i.sopClassUID}|${syntax}`
      if (contextIds.has(key)) continue
      // Context ids are odd, 1 to 255: at most 128 kinds of instance on one association.
      if (contexts.length === 128) throw new Error('more than 128 SOP class and transfer syntax pairs for one association')
      const id = contexts.length * 2 + 1
      contextIds.set(key, id)
      contexts.push({ id, abstractSyntax: i.sopClassUID, transferSyntax: syntax })
    }
  }
  if (aborted()) {
    for (const instance of instances) onResult({ sopInstanceUID: instance.sopInstanceUID, outcome: 'aborted', status: CANCELLED, comment: abortReason(signal!).message.slice(0, 64) })
    return { reasons: [`${destination.aeTitle}: not sent: ${abortReason(signal!).message}`] }
  }
  const socket = connect({ host: destination.host, port: destination.port })
  socket.setNoDelay(true)
  const association = new Association(socket, options.timeoutMs ?? DEFAULT_TIMEOUT_MS)
  const onAbort = (): void => { association.abort(abortReason(signal!)) }
  signal?.addEventListener('abort', onAbort, { once: true })
  let done = 0
  try {
    // Aborted while connecting, the socket closes without an 'error': the signal ends this wait.
    await once(socket, 'connect', signal === undefined ? {} : { signal })
    await association.write(associateRq(destination.aeTitle, callingAeTitle, contexts))
    const answer = await association.next()
    if (answer.type === PduType.associateRj) {
      throw new Error(`${destination.aeTitle} refused the association (result ${answer.body.readUInt8(1)}, source ${answer.body.readUInt8(2)}, reason ${answer.body.readUInt8(3)})`)
    }
    if (answer.type !== PduType.associateAc) throw new Error(`${destination.aeTitle} answered the association request with PDU type ${answer.type}`)
    const { accepted, maxPduLength } = parseAssociateAc(answer.body)
    const fragment = Math.min(maxPduLength === 0 ? MAX_FRAGMENT : maxPduLength - 6, MAX_FRAGMENT)
    let messageId = 0
    for (const instance of instances) {
      const contextOf = (syntax: string): number | undefined => {
        const id = contextIds.get(`${instance.sopClassUID}|${syntax}`)
        return id !== undefined && accepted.get(id) === true ? id : undefined
      }
      let contextId = contextOf(instance.transferSyntaxUID)
      let dataset: AsyncIterable<Uint8Array> | undefined
      if (contextId === undefined) {
        const other = instance.decoded?.transferSyntaxUIDs.find((syntax) => contextOf(syntax) !== undefined)
        if (other === undefined) {
          onResult({ sopInstanceUID: instance.sopInstanceUID, outcome: 'not-sent', status: SOP_CLASS_NOT_SUPPORTED, comment: `${destination.aeTitle} does not accept ${instance.sopClassUID} in ${instance.transferSyntaxUID}` })
          done++
          continue
        }
        try {
          dataset = await instance.decoded!.open(other)
        } catch (err) {
          // Decoding refused before anything was sent: this instance fails, the association goes on.
          const code = (err as { code?: string }).code
          if (aborted()) throw err
          onResult({ sopInstanceUID: instance.sopInstanceUID, outcome: 'not-sent', status: SOP_CLASS_NOT_SUPPORTED, comment: `${code === undefined ? '' : `${code}: `}${(err as Error).message}`, ...(code === undefined ? {} : { code }) })
          done++
          continue
        }
        contextId = contextOf(other)!
      }
      messageId = (messageId + 1) & 0xFFFF
      const command = cStoreRq(messageId, instance.sopClassUID, instance.sopInstanceUID)
      await association.write(pDataHeader(contextId, true, true, command))
      await association.write(command)
      await sendDataset(async (bytes) => association.write(bytes), contextId, fragment, dataset ?? instance.dataset())
      const result = await answerTo(association, messageId)
      onResult({ sopInstanceUID: instance.sopInstanceUID, outcome: 'answered', status: result.status, comment: result.errorComment })
      done++
    }
    await association.write(releaseRq())
    const released = await association.next().catch(() => undefined)
    if (released !== undefined && released.type !== PduType.releaseRp) reasons.push(`${destination.aeTitle} answered the release with PDU type ${released.type}`)
    association.close()
  } catch (err) {
    const byCaller = aborted()
    const failure = byCaller ? abortReason(signal!) : err as Error
    association.abort(failure)
    reasons.push(`${destination.aeTitle} at ${destination.host}:${destination.port}: ${byCaller ? `aborted: ${failure.message}` : failure.message}`)
    for (const instance of instances.slice(done)) {
      onResult({ sopInstanceUID: instance.sopInstanceUID, outcome: byCaller ? 'aborted' : 'lost', status: byCaller ? CANCELLED : LOST, comment: failure.message.slice(0, 64) })
    }
  } finally {
    signal?.removeEventListener('abort', onAbort)
  }
  return { reasons }
}

async function answerTo (association: Association, messageId: number): Promise<ReturnType<typeof parseCommand>> {
  let command = Buffer.alloc(0)
  for (;;) {
    const pdu = await association.next()
    if (pdu.type !== PduType.pData) throw new Error(`expected a C-STORE answer, got PDU type ${pdu.type}`)
    for (const pdv of pdvsOf(pdu.body)) {
      if (!pdv.command) continue
      command = Buffer.concat([command, pdv.data])
      if (!pdv.last) continue
      const answer = parseCommand(command)
      command = Buffer.alloc(0)
      if (answer.commandField === 0x8001 && answer.messageIdBeingRespondedTo === messageId) return answer
    }
  }
}
