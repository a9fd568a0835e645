import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { signDocument } from '../../../protocol/keys.ts'
import type { DirectoryHeader, Root, SignedDirectory, Timestamp } from '../../../protocol/registry/documents.ts'
import { directoryHash } from '../../../protocol/registry/verify.ts'
import type { TestGovernance } from '../../helpers/registry-fixtures.ts'

/*
 * A stand-in for the registry (or a mirror): serves whatever JSON files a test puts at a path, the
 * way a static file server would, and records enrolments. It can serve anything at all, which is
 * the point: the node must refuse what does not verify, whoever serves it.
 */

export interface StaticRegistry {
  url: string
  files: Map<string, unknown>
  /** every GET path asked for, in order */
  requests: string[]
  enrolments: unknown[]
  stop: () => Promise<void>
}

export async function startStaticRegistry (): Promise<StaticRegistry> {
  const files = new Map<string, unknown>()
  const requests: string[] = []
  const enrolments: unknown[] = []
  const server: Server = createServer((req, res) => {
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    }
    const path = req.url ?? '/'
    if (req.method === 'POST' && path === '/v1/enrolments') {
      void readBody(req).then((body) => {
        enrolments.push(JSON.parse(body))
        send(201, { id: `enr-${enrolments.length}` })
      })
      return
    }
    requests.push(path)
    if (!files.has(path)) { send(404, { code: 'BEELDNET_ERR_NOT_FOUND', message: `no ${path}` }); return }
    send(200, files.get(path))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    files,
    requests,
    enrolments,
    stop: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

async function readBody (req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

type Envelope<T> = { signed: T, signatures: Array<{ keyid: string, sig: string }> }

/** A timestamp from the registry's online key naming `dir`. */
export function signTimestamp (gov: TestGovernance, dir: DirectoryHeader, rootVersion = dir.rootVersion): Envelope<Timestamp> {
  const signed: Timestamp = {
    type: 'beeldnet/timestamp',
    network: gov.root.network,
    issued: new Date().toISOString(),
    expires: new Date(Date.now() + 3_600_000).toISOString(),
    rootVersion,
    directory: { version: dir.version, hash: directoryHash(dir) }
  }
  return { signed, signatures: [signDocument(signed, gov.timestampKey)] }
}

/** Serves `envelope` as the newest directory (and under its version), with a timestamp naming it. */
export function publishDirectory (registry: StaticRegistry, gov: TestGovernance, envelope: SignedDirectory, options: { timestamp?: boolean, rootVersion?: number } = {}): void {
  registry.files.set('/v1/directory', envelope)
  registry.files.set(`/v1/directories/${envelope.signed.version}`, envelope)
  if (options.timestamp ?? true) registry.files.set('/v1/timestamp', signTimestamp(gov, envelope.signed, options.rootVersion))
}

export function publishRoot (registry: StaticRegistry, envelope: Envelope<Root>): void {
  registry.files.set('/v1/root', envelope)
  registry.files.set(`/v1/roots/${envelope.signed.version}`, envelope)
}
