import { pino, type Logger } from 'pino'
import { Writable } from 'node:stream'
import { afterEach } from 'vitest'
import { generateKeyPair, signDocument, type KeyPair } from '../../protocol/keys.ts'
import type { Change, Root, SignedProposal } from '../../protocol/registry/documents.ts'
import { initRegistry, type RegistryInitResult } from '../../registry/init.ts'
import { createRegistry, type Registry, type RegistryInit } from '../../registry/registry.ts'
import { useTempDirs } from '../helpers/temp-dir.ts'

export const NETWORK = 'beeldnet-test'

/** A logger whose lines the test can read. */
export function captureLogger (): { logger: Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  return { logger: pino({ level: 'debug' }, stream), lines }
}

export interface Http {
  status: number
  headers: Headers
  body: any // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function client (url: string): {
  get: (path: string, headers?: Record<string, string>) => Promise<Http>
  post: (path: string, body: unknown) => Promise<Http>
  raw: (path: string, init: RequestInit) => Promise<Http>
} {
  const raw = async (path: string, init: RequestInit): Promise<Http> => {
    const response = await fetch(`${url}${path}`, init)
    const text = await response.text()
    return { status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) }
  }
  return {
    raw,
    get: async (path, headers = {}) => raw(path, { headers }),
    post: async (path, body) => raw(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  }
}

export interface TestRegistry {
  dir: string
  registry: Registry
  init: RegistryInitResult
  keys: KeyPair[]
  http: ReturnType<typeof client>
  lines: Array<Record<string, unknown>>
  /** restarts on the same data directory (with other settings) */
  restart: (init?: Partial<RegistryInit>) => Promise<void>
}

/** Registries started by a test, stopped after it; their temp dirs removed. */
export function useRegistries (): (options?: { k?: number, n?: number, init?: Partial<RegistryInit>, clock?: () => Date }) => Promise<TestRegistry> {
  const tempDir = useTempDirs()
  const started: Registry[] = []
  afterEach(async () => {
    for (const r of started.splice(0)) await r.stop()
  })
  return async (options = {}) => {
    const dir = await tempDir('registry')
    const keys = Array.from({ length: options.n ?? 5 }, () => generateKeyPair())
    const init = await initRegistry(dir, {
      network: NETWORK,
      threshold: options.k ?? 3,
      governanceKeys: keys.map((k, i) => ({ publicKey: k.publicKey, name: `member ${i + 1}` })),
      port: 0
    })
    const { logger, lines } = captureLogger()
    const t: TestRegistry = {
      dir,
      init,
      keys,
      lines,
      registry: createRegistry({ logger, clock: options.clock }, { dir, env: {}, rateLimitPerMinute: 0, ...options.init }),
      http: client(''),
      restart: async (more = {}) => {
        await t.registry.stop()
        t.registry = createRegistry({ logger, clock: options.clock }, { dir, env: {}, rateLimitPerMinute: 0, ...options.init, ...more })
        started.push(t.registry)
        await t.registry.start()
        t.http = client(t.registry.url)
      }
    }
    started.push(t.registry)
    await t.registry.start()
    t.http = client(t.registry.url)
    return t
  }
}

/** Every key in `signers` signs the current candidate over HTTP; returns the last answer. */
export async function signCandidate (t: TestRegistry, signers: KeyPair[]): Promise<Http> {
  const candidate = await t.http.get('/v1/candidate')
  if (candidate.status !== 200) throw new Error(`no candidate: ${JSON.stringify(candidate.body)}`)
  let last: Http | undefined
  for (const key of signers) {
    last = await t.http.post('/v1/candidate/signatures', { hash: candidate.body.hash, signature: signDocument(candidate.body.signed, key) })
    if (last.status !== 200) throw new Error(`signature refused: ${JSON.stringify(last.body)}`)
  }
  return last!
}

export function propose (change: Change, key: KeyPair, network = NETWORK): SignedProposal {
  const signed = { type: 'beeldnet/proposal' as const, network, proposed: new Date().toISOString(), change }
  return { signed, signatures: [signDocument(signed, key)] }
}

/** Root v1 signed by the first k members: the registry is then ready for proposals. */
export async function publishRootV1 (t: TestRegistry): Promise<Root> {
  const answer = await signCandidate(t, t.keys.slice(0, t.init.root.threshold))
  if (answer.body.published !== true) throw new Error('root v1 was not published')
  return t.init.root
}
