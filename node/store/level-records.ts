import { Level } from 'level'
import type { AbstractSublevel } from 'abstract-level'
import { LEVEL_MEMORY_OPTIONS, openLevel } from './level-open.ts'

/*
 * A level database of small JSON records changed by read-modify-write, as a persistent queue keeps
 * them: every such write goes through one queue, so no update is lost to a concurrent one, and
 * stop() waits for the last. The transfer store and the export store to the PACS are built on it.
 */

export type RecordDb = Level<string, unknown>
export type RecordSublevel<V> = AbstractSublevel<RecordDb, string | Buffer | Uint8Array, string, V>

export class LevelRecords {
  readonly db: RecordDb
  private writes: Promise<unknown> = Promise.resolve()

  /** `dir`: where the level database lives. */
  constructor (dir: string) {
    this.db = new Level<string, unknown>(dir, { valueEncoding: 'json', ...LEVEL_MEMORY_OPTIONS })
  }

  sublevel<V> (name: string): RecordSublevel<V> {
    return this.db.sublevel<string, V>(name, { valueEncoding: 'json' })
  }

  async start (): Promise<void> {
    await openLevel(this.db)
  }

  async stop (): Promise<void> {
    await this.writes
    await this.db.close()
  }

  /** Runs `work` after every write queued before it. */
  async serialised<T> (work: () => Promise<T>): Promise<T> {
    const run = this.writes.then(work)
    this.writes = run.catch(() => {})
    return run
  }

  /**
   * Reads, changes and writes the record `key` of `records`, serialised; `missing` makes the error
   * when there is none. A change that returns the record itself writes nothing.
   */
  async update<V> (records: RecordSublevel<V>, key: string, change: (record: V) => V, missing: () => Error, sync = true): Promise<V> {
    return this.serialised(async () => {
      const current = await records.get(key)
      if (current === undefined) throw missing()
      const next = change(current)
      if (next !== current) await this.db.batch().put(key, next, { sublevel: records }).write({ sync })
      return next
    })
  }
}
