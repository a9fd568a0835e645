import { GENESIS, readHead, recordHash, trailLines, type AuditRecord } from './audit-log.ts'

/*
 * Checks an audit trail (the node's or a copy): every record's hash over its own content, its link
 * to the record before, and the sequence numbers. The first problem is named with its line: a
 * changed record, a removed one, records out of order, or a line that is not a record.
 */

export type TrailProblemKind = 'changed' | 'removed' | 'reordered' | 'malformed'

export interface TrailProblem {
  kind: TrailProblemKind
  /** 1-based line of the file where it shows */
  line: number
  message: string
}

export interface TrailVerification {
  ok: boolean
  records: number
  problem?: TrailProblem
}

/**
 * Reads the trail line by line (memory stays flat however long it is), and holds it against its
 * head (audit-log.ts), if there is one beside it: records cut from the end show there.
 */
export async function verifyTrail (path: string): Promise<TrailVerification> {
  const head = await readHead(path)
  let headSeen = false
  let expectedSeq = 1
  let prevHash = GENESIS
  let line = 0
  let records = 0
  // Records skipped over: missing (removed), unless they turn up later (reordered).
  let gap: { from: number, to: number, line: number } | undefined
  const fail = (kind: TrailProblemKind, message: string): TrailVerification => ({ ok: false, records, problem: { kind, line, message } })
  for await (const next of trailLines(path)) {
    line = next.line
    let record: AuditRecord
    try {
      record = JSON.parse(next.text) as AuditRecord
    } catch {
      return fail('malformed', `line ${line} is not a JSON record`)
    }
    if (typeof record.seq !== 'number' || typeof record.hash !== 'string' || typeof record.prev !== 'string') return fail('malformed', `line ${line} lacks seq, prev or hash`)
    const { hash, ...content } = record
    if (recordHash(content) !== hash) return fail('changed', `record ${record.seq} (line ${line}) was changed: its hash does not match its content`)
    if (record.seq < expectedSeq) return fail('reordered', `record ${record.seq} (line ${line}) comes after record ${expectedSeq - 1}: records are out of order`)
    if (record.seq > expectedSeq) {
      gap ??= { from: expectedSeq, to: record.seq - 1, line }
    } else if (record.prev !== prevHash) {
      return fail('changed', `record ${record.seq - 1} (before line ${line}) was changed and re-hashed: record ${record.seq} does not link to it`)
    }
    if (head !== undefined && record.seq === head.seq) {
      if (hash !== head.hash) return fail('changed', `record ${record.seq} (line ${line}) is not the one the trail's head remembers: the trail was rewritten from there`)
      headSeen = true
    }
    expectedSeq = record.seq + 1
    prevHash = hash
    records++
  }
  if (gap !== undefined) {
    line = gap.line
    const many = gap.to > gap.from
    return fail('removed', `record${many ? 's' : ''} ${gap.from}${many ? `-${gap.to}` : ''} before line ${gap.line} ${many ? 'are' : 'is'} missing`)
  }
  if (head !== undefined && !headSeen && head.seq >= expectedSeq) {
    return fail('removed', `record${head.seq > expectedSeq ? `s ${expectedSeq}-${head.seq}` : ` ${head.seq}`} ${head.seq > expectedSeq ? 'are' : 'is'} missing from the end: the trail's head says record ${head.seq} was written`)
  }
  return { ok: true, records }
}
