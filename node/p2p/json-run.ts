import type { z } from 'zod'
import { SchemaError } from '../../protocol/errors.ts'
import { parseDocument } from '../../protocol/registry/documents.ts'
import { receiveBytes, type FramedStream } from './stream-io.ts'

/*
 * A JSON document too large for one control frame (a manifest of thousands of instances) sent as a
 * run of data frames, its size announced first so the reader can refuse it before buffering.
 */

export function jsonBytes (value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value))
}

/** Writes `bytes` as data frames and an end frame. */
export async function writeRun (framed: FramedStream, bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
  await framed.writeData(bytes, signal)
  await framed.writeEnd(signal)
}

/** Reads a run of at most `maxBytes`, parses it as JSON and checks it against `schema`. */
export async function readJsonRun<T extends z.ZodType> (framed: FramedStream, maxBytes: number, schema: T, what: string, signal?: AbortSignal): Promise<z.infer<T>> {
  const bytes = await receiveBytes(framed, maxBytes, { signal })
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    const refusal = new SchemaError(what, [`not JSON: ${(err as Error).message}`])
    framed.abort(refusal)
    throw refusal
  }
  try {
    return parseDocument(schema, value, what)
  } catch (err) {
    framed.abort(err as Error)
    throw err
  }
}
