import { signDocument, type KeyPair } from '../protocol/keys.ts'
import type { SignedTimestamp, Timestamp } from '../protocol/registry/documents.ts'

/*
 * Timestamps: short-lived statements by the registry's online key naming the newest directory, so
 * a node notices when someone keeps serving it an old (still unexpired) directory.
 */

export interface TimestampSubject {
  network: string
  rootVersion: number
  directory: { version: number, hash: string }
}

export function signTimestamp (key: KeyPair, subject: TimestampSubject, issued: Date, validityMinutes: number): SignedTimestamp {
  const signed: Timestamp = {
    type: 'beeldnet/timestamp',
    network: subject.network,
    issued: issued.toISOString(),
    expires: new Date(issued.getTime() + validityMinutes * 60_000).toISOString(),
    rootVersion: subject.rootVersion,
    directory: subject.directory
  }
  return { signed, signatures: [signDocument(signed, key)] }
}

/** Fresh enough to hand out: names the current state and has more than half its validity left. */
export function isFresh (ts: SignedTimestamp | undefined, subject: TimestampSubject, now: Date, validityMinutes: number): ts is SignedTimestamp {
  if (ts === undefined) return false
  const s = ts.signed
  if (s.rootVersion !== subject.rootVersion || s.directory.version !== subject.directory.version || s.directory.hash !== subject.directory.hash) return false
  return Date.parse(s.issued) + validityMinutes * 30_000 > now.getTime() && Date.parse(s.issued) <= now.getTime()
}
