import { trailRecords, type AuditRecord } from '../audit/audit-log.ts'

/*
 * One page of the audit trail, newest first, for IT's pages. The trail is read as a stream, oldest
 * first, keeping only the last `limit` records before `before` in a ring: memory is bounded by the
 * page, not by the trail, however long the node has run.
 */

export interface TrailPage {
  /** newest first */
  records: AuditRecord[]
  /** `before` for the next (older) page; null when this page reaches the trail's start */
  next: number | null
}

export async function trailPage (path: string, query: { before?: number, limit: number }): Promise<TrailPage> {
  const { limit } = query
  const before = query.before ?? Infinity
  const ring: AuditRecord[] = new Array<AuditRecord>(limit)
  let seen = 0
  for await (const record of trailRecords(path)) {
    // Read to the end rather than stop at `before`: leaving trailRecords early leaves its file open.
    if (record.seq >= before) continue
    ring[seen % limit] = record
    seen++
  }
  const records: AuditRecord[] = []
  for (let i = seen - 1; i >= Math.max(0, seen - limit); i--) records.push(ring[i % limit]!)
  return { records, next: seen > limit ? records.at(-1)!.seq : null }
}
