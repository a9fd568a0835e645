import { createReadStream } from 'node:fs'
import { open, mkdir, readFile, stat, type FileHandle } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { dirname } from 'node:path'
import { lock, type LockOptions } from 'proper-lockfile'
import { canonicalBytes, sha256Hex } from '../../protocol/canonical.ts'
import { replaceFile } from '../directory/atomic-file.ts'

/*
 * The NEN 7513 audit trail of a node: one JSON line per access to patient data (event, time,
 * patient, user, responsible user, institution), appended and fsynced before the action it records
 * completes. Each record carries the hash of the one before it and its own hash over its canonical
 * JSON, so a changed, removed or reordered record shows (verify.ts says where). The node appends
 * most records, but the CLI appends too (account changes made while the node runs): each append
 * holds a lock file and picks up the chain from the file when another process wrote since.
 */

export const GENESIS = '0'.repeat(64)

/** Waits up to a few seconds for the other writer; a lock left by a crashed process goes stale after 10 s. */
const LOCK_OPTIONS: LockOptions = { realpath: false, stale: 10_000, retries: { retries: 100, minTimeout: 5, maxTimeout: 100 } }

export interface AuditPerson {
  name?: string
  /** UZI number of a clinician */
  uzi?: string
  /** role code (UZI role) or node role (clinician, it-admin, auditor) */
  role?: string
  /** who or what acted when no person did: the node itself, an integration, an HTTP client */
  system?: string
}

export interface AuditPatient {
  bsn?: string
  id?: string
  issuer?: string
  name?: string
}

export interface AuditEvent {
  /** what happened: send, receive, query, pull-request, pull-decision, view, export-to-pacs, reconciliation, audit-read, ... */
  event: string
  /** how it ended: the decision, a result count, a status */
  outcome: string
  patient?: AuditPatient
  /** who acted */
  user: AuditPerson
  /** who answers for it (the requesting clinician when a node acted on their behalf) */
  responsible?: AuditPerson
  /** the other institution, when there is one */
  institution?: { ura: string, name?: string }
  studyInstanceUID?: string
  details?: Record<string, string | number | boolean>
}

export interface AuditRecord extends AuditEvent {
  seq: number
  time: string
  prev: string
  hash: string
}

export function recordHash (record: Omit<AuditRecord, 'hash'>): string {
  return sha256Hex(canonicalBytes(record))
}

/** Anything that can take an audit record: the log, or a test's list. */
export interface AuditSink {
  record (event: AuditEvent): Promise<AuditRecord>
  /** several at once, durable together (default: one by one) */
  recordAll?: (events: AuditEvent[]) => Promise<AuditRecord[]>
}

export class AuditLog implements AuditSink {
  readonly path: string
  private handle: FileHandle | undefined
  private last: { seq: number, hash: string } = { seq: 0, hash: GENESIS }
  /** the file's size after this process's last append: a different size means another process appended */
  private size = 0
  private chain: Promise<unknown> = Promise.resolve()
  private readonly now: () => Date
  private readonly listeners: Array<(record: AuditRecord) => void> = []

  constructor (path: string, options: { now?: () => Date } = {}) {
    this.path = path
    this.now = options.now ?? (() => new Date())
  }

  async start (): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 })
    const handle = await open(this.path, 'a', 0o600)
    try {
      this.last = await lastRecordOf(this.path)
      this.size = (await handle.stat()).size
    } catch (err) {
      // A trail that did not start keeps no file open.
      await handle.close().catch((closeErr: unknown) => { process.emitWarning(`the audit trail did not close after a failed start: ${String(closeErr)}`) })
      throw err
    }
    this.handle = handle
  }

  async stop (): Promise<void> {
    await this.chain.catch(() => {})
    await this.handle?.close()
    this.handle = undefined
  }

  /** Called after each record is durable (the syslog export). */
  onRecord (listener: (record: AuditRecord) => void): void {
    this.listeners.push(listener)
  }

  /** Appends one record and makes it durable; resolves only then. Appends are serialised: one chain. */
  async record (event: AuditEvent): Promise<AuditRecord> {
    return (await this.recordAll([event]))[0]!
  }

  /** Appends several records with one write and one fsync (a list showing many patients). */
  async recordAll (events: AuditEvent[]): Promise<AuditRecord[]> {
    const append = this.chain.then(async () => {
      const handle = this.handle
      if (handle === undefined) throw new Error('the audit trail is not open')
      if (events.length === 0) return []
      const release = await lock(this.path, LOCK_OPTIONS)
      const records: AuditRecord[] = []
      try {
        const size = (await handle.stat()).size
        if (size !== this.size) this.last = await lastRecordOf(this.path)
        let last = this.last
        const time = this.now().toISOString()
        for (const event of events) {
          const base = { ...event, seq: last.seq + 1, time, prev: last.hash }
          const record: AuditRecord = { ...base, hash: recordHash(base) }
          records.push(record)
          last = { seq: record.seq, hash: record.hash }
        }
        const lines = Buffer.from(records.map((r) => `${JSON.stringify(r)}\n`).join(''))
        await handle.appendFile(lines)
        await handle.sync()
        this.size = size + lines.length
        this.last = last
        await writeHead(this.path, last)
      } finally {
        await release()
      }
      for (const record of records) for (const listener of this.listeners) listener(record)
      return records
    })
    this.chain = append.catch(() => {})
    return append
  }
}

/**
 * The trail's head beside it (`<trail>.head`): the last record's seq and hash, rewritten after
 * each append. Records cut from the end of the trail then show: the head names a record the trail
 * no longer has. Written after the records are durable and not synced itself, so after a crash it
 * can only lag behind the trail, never run ahead.
 */
export function headPath (trailPath: string): string {
  return `${trailPath}.head`
}

async function writeHead (trailPath: string, head: { seq: number, hash: string }): Promise<void> {
  await replaceFile(headPath(trailPath), `${JSON.stringify(head)}\n`)
}

/** The head as written, or undefined when there is none (a trail from before heads, or a copy without one). */
export async function readHead (trailPath: string): Promise<{ seq: number, hash: string } | undefined> {
  const text = await readFile(headPath(trailPath), 'utf8').catch(() => undefined)
  if (text === undefined) return undefined
  try {
    const head = JSON.parse(text) as { seq: unknown, hash: unknown }
    return typeof head.seq === 'number' && typeof head.hash === 'string' ? { seq: head.seq, hash: head.hash } : undefined
  } catch {
    return undefined
  }
}

/** The last record's seq and hash (genesis for an empty trail), from the file's tail. */
async function lastRecordOf (path: string): Promise<{ seq: number, hash: string }> {
  const size = await stat(path).then((s) => s.size, () => 0)
  if (size === 0) return { seq: 0, hash: GENESIS }
  // Records are short; the last one lies in the tail. A whole-file read only for a tiny trail.
  const text = size <= 1024 * 1024 ? await readFile(path, 'utf8') : await readTail(path, size, 1024 * 1024)
  const lines = text.split('\n').filter((l) => l.trim() !== '')
  const last = JSON.parse(lines.at(-1)!) as AuditRecord
  return { seq: last.seq, hash: last.hash }
}

async function readTail (path: string, size: number, bytes: number): Promise<string> {
  const handle = await open(path, 'r')
  try {
    const buffer = Buffer.alloc(bytes)
    const { bytesRead } = await handle.read(buffer, 0, bytes, size - bytes)
    return buffer.subarray(0, bytesRead).toString('utf8')
  } finally {
    await handle.close()
  }
}

/** A trail's non-blank lines in order with their 1-based line numbers, read as a stream (memory stays flat). */
export async function * trailLines (path: string): AsyncGenerator<{ line: number, text: string }> {
  const input = createReadStream(path, 'utf8')
  const lines = createInterface({ input, crlfDelay: Infinity })
  let line = 0
  try {
    for await (const text of lines) {
      line++
      if (text.trim() !== '') yield { line, text }
    }
  } finally {
    // A reader that stops early must not leave the file open: closing the lines does not close it.
    lines.close()
    input.destroy()
  }
}

/** A trail's records in order. */
export async function * trailRecords (path: string): AsyncGenerator<AuditRecord> {
  for await (const { text } of trailLines(path)) yield JSON.parse(text) as AuditRecord
}
