import { SESSION_TIMEOUT_MS } from './processes.ts'

/*
 * How bench:wan drives a node: its HTTP API with the CLI's token, and its transfer events (SSE)
 * so a push is timed to the event, not to a poll; bench:transfer uses them too.
 */

/** A node's HTTP API, with the token its own CLI uses (the node keeps it in its data directory). */
export interface NodeHttp { url: string, token: string }

export async function api<T> (node: NodeHttp, path: string, init?: { method: string, body: unknown }): Promise<T> {
  const url = `${node.url}${path}`
  const authorization = `Bearer ${node.token}`
  const res = await fetch(url, init === undefined ? { headers: { authorization } } : { method: init.method, headers: { authorization, 'content-type': 'application/json' }, body: JSON.stringify(init.body) })
  const text = await res.text()
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: ${res.status} ${text}`)
  return JSON.parse(text) as T
}

/** The sender's outgoing transfers as they complete or fail. */
export class TransferWatch {
  private readonly outcomes = new Map<string, string | null>()
  private readonly waiters = new Map<string, () => void>()
  private readonly controller = new AbortController()

  static async open (node: NodeHttp): Promise<TransferWatch> {
    const watch = new TransferWatch()
    const res = await fetch(`${node.url}/api/transfers/events`, { signal: watch.controller.signal, headers: { authorization: `Bearer ${node.token}` } })
    if (!res.ok || res.body === null) throw new Error(`GET /api/transfers/events: ${res.status}`)
    void watch.read(res.body).catch(() => {})
    return watch
  }

  private async read (body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder()
    let buffer = ''
    for await (const bytes of body) {
      buffer += decoder.decode(bytes, { stream: true })
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const event = /^event: (.*)$/m.exec(block)?.[1]
        const data = /^data: (.*)$/m.exec(block)?.[1]
        if (event === undefined || data === undefined) continue
        const payload = JSON.parse(data) as { direction?: string, transferId?: string, error?: { code: string, message: string } }
        if (payload.direction !== 'outgoing' || payload.transferId === undefined) continue
        if (event === 'study-complete') this.settle(payload.transferId, null)
        if (event === 'transfer-failed') this.settle(payload.transferId, `${payload.error?.code}: ${payload.error?.message}`)
      }
    }
  }

  private settle (transferId: string, error: string | null): void {
    this.outcomes.set(transferId, error)
    this.waiters.get(transferId)?.()
  }

  async done (transferId: string, timeoutMs = SESSION_TIMEOUT_MS): Promise<void> {
    if (!this.outcomes.has(transferId)) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => { reject(new Error(`transfer ${transferId} not complete after ${timeoutMs} ms`)) }, timeoutMs)
        this.waiters.set(transferId, () => { clearTimeout(timer); resolve() })
      }).finally(() => this.waiters.delete(transferId))
    }
    const error = this.outcomes.get(transferId)
    if (error !== null && error !== undefined) throw new Error(`transfer ${transferId} failed: ${error}`)
  }

  close (): void {
    this.controller.abort()
  }
}
