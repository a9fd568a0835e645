import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { NodeRefusedError, NodeUnreachableError } from './errors.ts'

/*
 * How the CLI talks to a running node: its HTTP API (the node holds the store, so verbs that need
 * the network go through it). A refusal keeps the node's code, so scripts see the same codes as
 * the API gives.
 */

export interface NodeApi {
  readonly url: string
  get<T> (path: string, signal?: AbortSignal): Promise<T>
  post<T> (path: string, body?: unknown, signal?: AbortSignal): Promise<T>
  delete<T> (path: string, signal?: AbortSignal): Promise<T>
  /** a raw body of the given media type (a PDF report) */
  postBytes<T> (path: string, contentType: string, bytes: Uint8Array): Promise<T>
  /** a body streamed from `source` as it is read (a file of any size, never held whole) */
  putStream<T> (path: string, contentType: string, source: Readable, signal?: AbortSignal): Promise<T>
  /** an answer's body as a stream (a stored file) */
  getStream (path: string, signal?: AbortSignal): Promise<Readable>
  /** server-sent events from `path`, as {event, data} until the signal aborts or the node closes */
  events (path: string, signal: AbortSignal): AsyncGenerator<{ event: string, data: unknown }>
}

/** `token`: an API token (Authorization: Bearer), which every route but /health needs. */
export function createNodeApi (url: string, token?: string): NodeApi {
  const base = url.replace(/\/+$/, '')
  const auth: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` }
  const send = async (method: string, path: string, body: unknown, signal?: AbortSignal, raw?: { contentType: string, bytes: Uint8Array }): Promise<Response> => {
    let response: Response
    try {
      response = await fetch(`${base}${path}`, raw !== undefined
        ? { method, signal, headers: { ...auth, 'content-type': raw.contentType }, body: raw.bytes }
        : { method, signal, headers: body === undefined ? auth : { ...auth, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
    } catch (err) {
      throw new NodeUnreachableError(`no node answers at ${base} (is \`beeldnet node start\` running? --node sets the address): ${(err as Error).message}`, err)
    }
    if (!response.ok) {
      const answer = await response.json().catch(() => undefined) as { code?: unknown, message?: string } | undefined
      throw new NodeRefusedError(answer?.code, answer?.message ?? `the node answered ${response.status}`)
    }
    return response
  }
  const request = async <T>(method: string, path: string, body: unknown, signal?: AbortSignal, raw?: { contentType: string, bytes: Uint8Array }): Promise<T> => {
    const response = await send(method, path, body, signal, raw)
    return await response.json().catch(() => undefined) as T
  }
  return {
    url: base,
    get: async (path, signal) => request('GET', path, undefined, signal),
    post: async (path, body, signal) => request('POST', path, body ?? {}, signal),
    postBytes: async (path, contentType, bytes) => request('POST', path, undefined, undefined, { contentType, bytes }),
    delete: async (path, signal) => request('DELETE', path, undefined, signal),
    putStream: async (path, contentType, source, signal) => upload(`${base}${path}`, { ...auth, 'content-type': contentType }, source, signal),
    getStream: async (path, signal) => {
      const response = await send('GET', path, undefined, signal)
      if (response.body === null) return Readable.from([])
      return Readable.fromWeb(response.body as import('node:stream/web').ReadableStream)
    },
    events: async function * (path, signal) {
      let response: Response
      try {
        response = await fetch(`${base}${path}`, { signal, headers: { ...auth, accept: 'text/event-stream' } })
      } catch (err) {
        if (signal.aborted) return
        throw new NodeUnreachableError(`no node answers at ${base}: ${(err as Error).message}`, err)
      }
      if (!response.ok) {
        const answer = await response.json().catch(() => undefined) as { code?: unknown, message?: string } | undefined
        throw new NodeRefusedError(answer?.code, answer?.message ?? `the node answered ${response.status}`)
      }
      if (response.body === null) return
      const decoder = new TextDecoder()
      let buffer = ''
      try {
        for await (const chunk of response.body) {
          buffer += decoder.decode(chunk, { stream: true })
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, end)
            buffer = buffer.slice(end + 2)
            let event = 'message'
            const data: string[] = []
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7)
              else if (line.startsWith('data: ')) data.push(line.slice(6))
            }
            if (data.length > 0) yield { event, data: JSON.parse(data.join('\n')) as unknown }
          }
        }
      } catch (err) {
        if (!signal.aborted) throw err
      }
    }
  }
}

/**
 * PUT of a stream with node:http, which writes as the socket drains: fetch (undici) reads a
 * streamed body ahead of the socket, so a 1 GB file would sit in the CLI's memory.
 */
async function upload<T> (url: string, headers: Record<string, string>, source: Readable, signal?: AbortSignal): Promise<T> {
  const target = new URL(url)
  const req = (target.protocol === 'https:' ? httpsRequest : httpRequest)(target, { method: 'PUT', headers, signal })
  const answered = new Promise<IncomingMessage>((resolve, reject) => { req.once('response', resolve); req.once('error', reject) })
  answered.catch(() => {})
  try {
    await pipeline(source, req)
  } catch (err) {
    // A file that cannot be read is the file's trouble; a refused connection is the node's.
    if (source.errored !== null) throw source.errored
    const early = await Promise.race([answered, new Promise<undefined>((resolve) => { setImmediate(() => { resolve(undefined) }) })]).catch(() => undefined)
    if (early === undefined) throw new NodeUnreachableError(`no node answers at ${target.origin}: ${(err as Error).message}`, err)
  }
  let response: IncomingMessage
  try {
    response = await answered
  } catch (err) {
    throw new NodeUnreachableError(`no node answers at ${target.origin}: ${(err as Error).message}`, err)
  }
  const chunks: Buffer[] = []
  for await (const chunk of response) chunks.push(chunk as Buffer)
  let answer: { code?: unknown, message?: string } | undefined
  try { answer = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof answer } catch { answer = undefined }
  const status = response.statusCode ?? 0
  if (status < 200 || status >= 300) throw new NodeRefusedError(answer?.code, answer?.message ?? `the node answered ${status}`)
  return answer as T
}
