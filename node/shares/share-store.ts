import { LevelRecords, type RecordSublevel } from '../store/level-records.ts'
import { ShareNotFoundError } from './errors.ts'

/*
 * Share links in a level database of their own (<data-dir>/shares): one small record per link,
 * found by its id or by its token's hash, written (synced) at each change, so links, their counts
 * and their locks outlive a restart. Ended links stay, for the clinician's and IT's listing.
 */

export interface ShareRecord {
  id: string
  /** SHA-256 (hex) of the URL's token: the token itself is never kept */
  tokenHash: string
  /** scrypt hash of the code (share-secrets.ts) */
  codeHash: string
  studyInstanceUID: string
  /** who made it (the clinician's name as the audit trail has it) */
  createdBy: string
  /** ISO 8601 times */
  createdAt: string
  expiresAt: string
  maxDownloads: number
  downloads: number
  /** sessions opened with the right code */
  opens: number
  /** wrong codes in all (10 lock the link for good) */
  failedAttempts: number
  /** wrong codes since the last right one or the last lock (5 lock it for a while) */
  failedInARow: number
  lockedUntil?: string
  revokedAt?: string
  revokedBy?: string
}

export interface ShareStore {
  start (): Promise<void>
  stop (): Promise<void>
  create (record: ShareRecord): Promise<void>
  get (id: string): Promise<ShareRecord | undefined>
  byTokenHash (hash: string): Promise<ShareRecord | undefined>
  list (): Promise<ShareRecord[]>
  /** Reads, changes and writes one record (synced), serialised with every other change. */
  update (id: string, change: (record: ShareRecord) => ShareRecord): Promise<ShareRecord>
}

class LevelShareStore implements ShareStore {
  private readonly level: LevelRecords
  private readonly shares: RecordSublevel<ShareRecord>
  /** token hash -> link id */
  private readonly tokens: RecordSublevel<string>

  constructor (dir: string) {
    this.level = new LevelRecords(dir)
    this.shares = this.level.sublevel('shares')
    this.tokens = this.level.sublevel('tokens')
  }

  async start (): Promise<void> { await this.level.start() }

  async stop (): Promise<void> { await this.level.stop() }

  async create (record: ShareRecord): Promise<void> {
    await this.level.serialised(async () => {
      await this.level.db.batch()
        .put(record.id, record, { sublevel: this.shares })
        .put(record.tokenHash, record.id, { sublevel: this.tokens })
        .write({ sync: true })
    })
  }

  async get (id: string): Promise<ShareRecord | undefined> {
    return this.shares.get(id)
  }

  async byTokenHash (hash: string): Promise<ShareRecord | undefined> {
    const id = await this.tokens.get(hash)
    return id === undefined ? undefined : this.shares.get(id)
  }

  async list (): Promise<ShareRecord[]> {
    return this.shares.values().all()
  }

  async update (id: string, change: (record: ShareRecord) => ShareRecord): Promise<ShareRecord> {
    return this.level.update(this.shares, id, change, () => new ShareNotFoundError(id))
  }
}

/** `dir`: where the level database lives, e.g. `<data-dir>/shares`. */
export function createShareStore (dir: string): ShareStore {
  return new LevelShareStore(dir)
}
