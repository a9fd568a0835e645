import { promisify } from 'node:util'
import { gzip as gzipCallback } from 'node:zlib'
import type { SignedDirectory } from '../protocol/registry/documents.ts'

const gzip = promisify(gzipCallback)

/*
 * The latest directory as bytes, serialised and gzipped once per version: serving it is then a
 * buffer write, whatever its size (a national directory runs to megabytes) and however many nodes poll.
 */

export interface DirectoryBytes {
  version: number
  hash: string
  /** a strong ETag: the hash of the signed part names the version exactly */
  etag: string
  json: Buffer
  gzip: Buffer
}

export async function directoryBytes (envelope: SignedDirectory, hash: string): Promise<DirectoryBytes> {
  const json = Buffer.from(JSON.stringify(envelope), 'utf8')
  // zlib's async API runs in the thread pool, so a large directory does not stall requests.
  return { version: envelope.signed.version, hash, etag: `"${hash}"`, json, gzip: await gzip(json, { level: 6 }) }
}

/** Does an Accept-Encoding header take gzip (and not with q=0)? */
export function acceptsGzip (header: string | undefined): boolean {
  if (header === undefined) return false
  for (const part of header.split(',')) {
    const [coding, ...params] = part.trim().toLowerCase().split(';')
    if (coding !== 'gzip' && coding !== '*') continue
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='))
    return q === undefined || Number(q.slice(2)) > 0
  }
  return false
}
