import type { requests, responses } from 'dcmjs-dimse'
import type { DimseDestination } from '../config/config.ts'
import { dimse } from '../dimse/dimse-library.ts'

/*
 * C-ECHO to a configured DICOM destination: IT's "is the PACS there?" button. Every way it can go
 * wrong ends in one sentence a person can act on; nothing waits longer than the timeout.
 */

export type EchoOutcome = { aeTitle: string, ok: true, ms: number } | { aeTitle: string, ok: false, reason: string }

export interface EchoInit {
  /** how long the whole echo may take, connect to answer (default 5000 ms) */
  timeoutMs?: number
}

// PS3.8 table 9-21: A-ASSOCIATE-RJ source and reason, in words.
const REJECT_REASONS: Record<number, Record<number, string>> = {
  1: { 1: 'no reason given', 2: 'the application context is not supported', 3: 'the calling AE title is not recognised', 7: 'the called AE title is not recognised' },
  2: { 1: 'no reason given (by its DICOM stack)', 2: 'the protocol version is not supported' },
  3: { 1: 'temporary congestion', 2: 'a local limit was exceeded' }
}

function rejection (destination: DimseDestination, callingAeTitle: string, r: { result: number, source: number, reason: number }): string {
  let why = REJECT_REASONS[r.source]?.[r.reason] ?? `source ${r.source}, reason ${r.reason}`
  if (r.source === 1 && r.reason === 3) why = `the calling AE title ${callingAeTitle} is not recognised (add it to its known AE titles)`
  if (r.source === 1 && r.reason === 7) why = `the called AE title ${destination.aeTitle} is not recognised (check the AE title in dimse.destinations)`
  return `${destination.aeTitle} rejected the association${r.result === 2 ? ' for now' : ''}: ${why}`
}

/** dcmjs-dimse passes socket errors on as text ("... -> Connection error: connect ECONNREFUSED ..."). */
function networkFailure (destination: DimseDestination, err: Error, timeoutMs: number): string {
  const where = `${destination.host}:${destination.port}`
  const message = err.message
  if (/ECONNREFUSED/.test(message)) return `connection refused: nothing accepts connections at ${where}`
  if (/ENOTFOUND|EAI_AGAIN/.test(message)) return `host not found: ${destination.host} does not resolve`
  if (/EHOSTUNREACH|ENETUNREACH/.test(message)) return `${where} is unreachable from this node (routing or firewall)`
  if (/ECONNRESET|EPIPE/.test(message)) return `${where} closed the connection abruptly`
  if (/timeout/i.test(message)) return `timeout: no answer from ${destination.aeTitle} at ${where} within ${timeoutMs / 1000} s`
  return `network error talking to ${where}: ${message.replace(/^.*-> /, '')}`
}

export async function echo (destination: DimseDestination, callingAeTitle: string, init: EchoInit = {}): Promise<EchoOutcome> {
  const timeoutMs = init.timeoutMs ?? 5000
  const { Client, constants, requests: { CEchoRequest } } = dimse()
  const { aeTitle } = destination
  const started = performance.now()
  return new Promise<EchoOutcome>((resolve) => {
    const client = new Client()
    let timer: NodeJS.Timeout | undefined
    const settle = (outcome: EchoOutcome): void => {
      if (timer === undefined) return
      clearTimeout(timer)
      timer = undefined
      resolve(outcome)
    }
    const fail = (reason: string): void => { settle({ aeTitle, ok: false, reason }) }
    timer = setTimeout(() => {
      fail(`timeout: no answer from ${aeTitle} at ${destination.host}:${destination.port} within ${timeoutMs / 1000} s`)
      try { client.abort() } catch { /* not associated yet: the library's own timeouts close the socket */ }
    }, timeoutMs)

    const request: requests.CEchoRequest = new CEchoRequest()
    request.on('response', (response: responses.CEchoResponse) => {
      const status = response.getStatus()
      if (status === constants.Status.Success) settle({ aeTitle, ok: true, ms: Math.round(performance.now() - started) })
      else fail(`${aeTitle} answered the C-ECHO with status 0x${status.toString(16).padStart(4, '0')}`)
    })
    client.addRequest(request)
    client.on('associationRejected', (r: { result: number, source: number, reason: number }) => { fail(rejection(destination, callingAeTitle, r)) })
    client.on('networkError', (err: Error) => { fail(networkFailure(destination, err, timeoutMs)) })
    // Aborted, or closed without a word: after a settled echo this changes nothing.
    client.on('closed', () => { fail(`${aeTitle} closed the connection without answering the C-ECHO`) })
    try {
      client.send(destination.host, destination.port, callingAeTitle, aeTitle, { connectTimeout: timeoutMs, associationTimeout: timeoutMs, pduTimeout: timeoutMs })
    } catch (err) {
      fail(`cannot start the C-ECHO: ${(err as Error).message}`)
    }
  })
}
