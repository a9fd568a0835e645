import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import type { Readable, Writable } from 'node:stream'
import { MultipartError } from './errors.ts'

/*
 * multipart/related (RFC 2387) both ways, streaming: WADO-RS answers are written part by part from
 * the store, STOW-RS bodies are read part by part into it. Never a whole body in memory.
 */

export interface MediaType {
  /** lower-case type/subtype */
  type: string
  /** parameter names lower-case, values unquoted */
  params: Record<string, string>
}

/** Splits on a separator outside double quotes. */
function splitOutsideQuotes (value: string, separator: string): string[] {
  const parts: string[] = []
  let current = ''
  let quoted = false
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!
    if (c === '"' && value[i - 1] !== '\\') quoted = !quoted
    if (c === separator && !quoted) {
      parts.push(current)
      current = ''
    } else {
      current += c
    }
  }
  parts.push(current)
  return parts
}

export function parseMediaType (value: string): MediaType {
  const [type = '', ...rest] = splitOutsideQuotes(value, ';')
  const params: Record<string, string> = {}
  for (const param of rest) {
    const eq = param.indexOf('=')
    if (eq < 0) continue
    const name = param.slice(0, eq).trim().toLowerCase()
    let v = param.slice(eq + 1).trim()
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1).replace(/\\(.)/g, '$1')
    params[name] = v
  }
  return { type: type.trim().toLowerCase(), params }
}

/** An Accept header as media ranges, most preferred first (q=0 ranges dropped). */
export function parseAccept (header: string | undefined): MediaType[] {
  if (header === undefined || header.trim() === '') return [{ type: '*/*', params: {} }]
  return splitOutsideQuotes(header, ',')
    .map((range) => parseMediaType(range))
    .map((m) => ({ m, q: m.params.q === undefined ? 1 : Number(m.params.q) }))
    .filter(({ m, q }) => m.type !== '' && q > 0)
    .sort((a, b) => b.q - a.q)
    .map(({ m }) => m)
}

export function newBoundary (): string {
  return `beeldnet-${randomUUID()}`
}

export interface OutgoingPart {
  contentType: string
  /** when known in advance: lets a client allocate or show progress */
  contentLength?: number
  contentLocation?: string
  body: AsyncIterable<Uint8Array>
}

/** A multipart/related body, part after part as the consumer reads it. */
export async function * multipartBody (parts: AsyncIterable<OutgoingPart>, boundary: string): AsyncGenerator<Uint8Array> {
  for await (const part of parts) {
    let head = `--${boundary}\r\nContent-Type: ${part.contentType}\r\n`
    if (part.contentLength !== undefined) head += `Content-Length: ${part.contentLength}\r\n`
    if (part.contentLocation !== undefined) head += `Content-Location: ${part.contentLocation}\r\n`
    yield Buffer.from(`${head}\r\n`, 'latin1')
    yield * part.body
    yield Buffer.from('\r\n', 'latin1')
  }
  yield Buffer.from(`--${boundary}--\r\n`, 'latin1')
}

export interface IncomingPart {
  /** header names lower-case, the first value of each */
  headers: Record<string, string>
  body: Readable
}

/** dicer's parser: a Writable that emits 'part' with each part's stream (which emits 'header' first). */
type DicerInstance = Writable
type DicerConstructor = new (config: { boundary: string, maxHeaderPairs?: number, partHwm?: number }) => DicerInstance

// The multipart parser busboy is built on, as @fastify/busboy maintains it (the original dicer is unmaintained).
const Dicer = createRequire(import.meta.url)('@fastify/busboy/deps/dicer/lib/Dicer.js') as DicerConstructor

const MAX_BOUNDARY_LENGTH = 256

/**
 * The parts of a multipart body, one at a time: the next part is yielded only when the consumer
 * asks, and the parser waits while a part's body is not read (backpressure to the socket). The
 * consumer must read or discard each part's body before asking for the next.
 */
export async function * readMultipart (body: Readable, boundary: string, limits: { maxParts: number }): AsyncGenerator<IncomingPart> {
  // RFC 2046 caps a boundary at 70 characters, but real senders exceed it (Orthanc's STOW-RS client
  // uses 73): be liberal, with a bound that still keeps a hostile header from costing anything.
  if (boundary === '' || boundary.length > MAX_BOUNDARY_LENGTH) throw new MultipartError('the Content-Type has no valid boundary parameter')
  const parser = new Dicer({ boundary, maxHeaderPairs: 64, partHwm: 256 * 1024 })
  const ready: IncomingPart[] = []
  let failure: Error | undefined
  let finished = false
  let wake: (() => void) | undefined
  const poke = (): void => { const w = wake; wake = undefined; w?.() }

  parser.on('part', (part: Readable) => {
    part.on('header', (header: unknown) => {
      const headers: Record<string, string> = {}
      for (const [name, values] of Object.entries(header as Record<string, string[]>)) headers[name.toLowerCase()] = values[0] ?? ''
      ready.push({ headers, body: part })
      poke()
    })
    part.on('error', (err: unknown) => { failure ??= new MultipartError(`a part ends early: ${(err as Error).message}`); poke() })
  })
  parser.on('error', (err: unknown) => { failure ??= new MultipartError(`the body is not valid multipart: ${(err as Error).message}`); poke() })
  parser.on('finish', () => { finished = true; poke() })
  body.on('error', (err: Error) => { failure ??= new MultipartError(`the upload broke off: ${err.message}`); poke() })
  body.on('aborted', () => { failure ??= new MultipartError('the upload broke off'); poke() })
  body.pipe(parser)

  let count = 0
  try {
    for (;;) {
      const part = ready.shift()
      if (part !== undefined) {
        if (++count > limits.maxParts) throw new MultipartError(`more than ${limits.maxParts} parts in one request`)
        yield part
        continue
      }
      if (failure !== undefined) throw failure
      if (finished) {
        if (count === 0) throw new MultipartError('the body holds no parts (is the boundary right?)')
        return
      }
      await new Promise<void>((resolve) => { wake = resolve })
    }
  } finally {
    body.unpipe(parser)
    parser.destroy()
  }
}
