import { RegistryRefusedError, RegistryResponseError, RegistryUnreachableError } from '../errors.ts'

/*
 * HTTP transport to a registry or a mirror: both serve the same paths (/v1/root, /v1/directory,
 * /v1/directories/:v, /v1/timestamp), so one client serves both. It trusts nothing it receives:
 * every document is verified by the caller. It only bounds what it reads and turns failures into codes.
 */

export interface RegistryClientInit {
  /** base URL, e.g. https://registry.beeldnet.nl (a trailing slash is ignored) */
  url: string
  /** per-request timeout (default 10 s) */
  timeoutMs?: number
  /** largest response read; a hostile mirror cannot make the node buffer more (default 64 MiB) */
  maxResponseBytes?: number
}

export interface RegistryClient {
  readonly url: string
  get (path: string, signal?: AbortSignal): Promise<unknown>
  post (path: string, body: unknown, signal?: AbortSignal): Promise<unknown>
}

class HttpRegistryClient implements RegistryClient {
  readonly url: string
  private readonly timeoutMs: number
  private readonly maxResponseBytes: number

  constructor (init: RegistryClientInit) {
    this.url = init.url.replace(/\/+$/, '')
    this.timeoutMs = init.timeoutMs ?? 10_000
    this.maxResponseBytes = init.maxResponseBytes ?? 64 * 1024 * 1024
  }

  async get (path: string, signal?: AbortSignal): Promise<unknown> {
    return this.request('GET', path, undefined, signal)
  }

  async post (path: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
    return this.request('POST', path, body, signal)
  }

  private async request (method: string, path: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
    const url = `${this.url}${path}`
    const timeout = AbortSignal.timeout(this.timeoutMs)
    let response: Response
    let text: string
    try {
      response = await fetch(url, {
        method,
        headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
        redirect: 'error'
      })
      text = await this.readBounded(response, url)
    } catch (err) {
      if (signal?.aborted === true) throw signal.reason
      if (err instanceof RegistryResponseError) throw err
      throw new RegistryUnreachableError(url, err)
    }
    let json: unknown
    try {
      json = text === '' ? undefined : JSON.parse(text)
    } catch {
      throw new RegistryResponseError(`${url} answered ${response.status} with something that is not JSON`)
    }
    if (!response.ok) {
      const err = json as { code?: unknown, message?: unknown } | undefined
      const message = typeof err?.message === 'string' ? err.message.slice(0, 512) : `answered ${response.status}`
      throw new RegistryRefusedError(err?.code, `${url}: ${message}`)
    }
    return json
  }

  private async readBounded (response: Response, url: string): Promise<string> {
    const declared = Number(response.headers.get('content-length') ?? 0)
    if (declared > this.maxResponseBytes) throw new RegistryResponseError(`${url} sends ${declared} bytes; at most ${this.maxResponseBytes} are read`)
    if (response.body === null) return ''
    const chunks: Uint8Array[] = []
    let size = 0
    for await (const chunk of response.body) {
      size += chunk.byteLength
      if (size > this.maxResponseBytes) throw new RegistryResponseError(`${url} sends more than ${this.maxResponseBytes} bytes`)
      chunks.push(chunk)
    }
    return Buffer.concat(chunks).toString('utf8')
  }
}

export function createRegistryClient (init: RegistryClientInit): RegistryClient {
  return new HttpRegistryClient(init)
}
