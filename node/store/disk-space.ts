import { EventEmitter } from 'node:events'
import { statfs as fsStatfs } from 'node:fs/promises'
import { DiskFullError } from '../errors.ts'

/*
 * Admission by disk space: before the store takes something it checks that the disk keeps
 * `minFreeBytes` free after it, and that stored bytes stay within `maxBytes` when IT set a quota.
 * Bytes promised to transfers under way (reservations) count as used until they are written (free
 * space) or committed (quota), so ten offers at once cannot each see the same free space. A refusal,
 * or an ENOSPC the file system gave anyway, is remembered until something fits again: that is what
 * /health reports as BEELDNET_ERR_DISK_FULL.
 */

/** The reserve kept free when config sets none: room for the index, logs and the transfer records to go on. */
export const DEFAULT_MIN_FREE_BYTES = 1024 ** 3

/** What statfs tells of the file system (node:fs statfs's fields used here); injectable for tests. */
export interface FsStats { bavail: number, bsize: number, blocks: number }
export type Statfs = (path: string) => Promise<FsStats>

export interface DiskSpaceInit {
  /** a path on the store's file system */
  dir: string
  /** free bytes the disk must keep after what is admitted (default DEFAULT_MIN_FREE_BYTES) */
  minFreeBytes?: number
  /** at most this many bytes stored plus promised; unset: no quota */
  maxBytes?: number
  /** default node:fs statfs */
  statfs?: Statfs
}

export interface DiskSpaceComponents {
  /** bytes of the indexed instance files (the quota counts these) */
  storedBytes: () => Promise<number>
}

/** Where something was refused: the label of the refusals counter ('write': the file system's ENOSPC, whoever was writing). */
export type AdmissionRoute = 'transfer' | 'pull' | 'stow' | 'c-store' | 'import' | 'write'

export interface DiskRefusal {
  code: 'BEELDNET_ERR_DISK_FULL'
  route: AdmissionRoute
  /** bytes that did not fit (0: an ENOSPC, or nothing fits) */
  neededBytes: number
  message: string
  at: string
}

/** Bytes promised to one transfer under way. */
export interface Reservation {
  /** promised and not yet written */
  readonly unwritten: number
  /** `bytes` of the promise are on disk now (free space shows them from here on) */
  written: (bytes: number) => void
  /** the transfer ended or committed: nothing more is promised (idempotent) */
  release: () => void
}

/** one reservation's bytes: all it promised (the quota counts them until committed) and those not yet on disk */
interface Promised { promised: number, unwritten: number }

export class DiskSpace extends EventEmitter<{ refused: [DiskRefusal] }> {
  readonly dir: string
  readonly minFreeBytes: number
  readonly maxBytes: number | undefined
  private readonly statfs: Statfs
  private readonly storedBytes: () => Promise<number>
  private readonly promises = new Set<Promised>()
  /** promises released so far (see figures()) */
  private releases = 0
  /** the last refusal, until something fits again */
  private refusing: DiskRefusal | undefined

  constructor (components: DiskSpaceComponents, init: DiskSpaceInit) {
    super()
    this.dir = init.dir
    this.minFreeBytes = init.minFreeBytes ?? DEFAULT_MIN_FREE_BYTES
    this.maxBytes = init.maxBytes
    this.statfs = init.statfs ?? fsStatfs
    this.storedBytes = components.storedBytes
  }

  /** Free and total bytes of the store's file system. */
  async disk (): Promise<{ freeBytes: number, totalBytes: number }> {
    const fs = await this.statfs(this.dir)
    return { freeBytes: fs.bavail * fs.bsize, totalBytes: fs.blocks * fs.bsize }
  }

  /** Bytes promised to transfers under way and not yet written. */
  get reservedBytes (): number {
    let n = 0
    for (const p of this.promises) n += p.unwritten
    return n
  }

  /**
   * Promises `bytes` to a transfer, or throws DiskFullError (and tells 'refused') when they do not
   * fit beside what is stored and promised already. The check and the promise are one step: no
   * other admission runs between them.
   */
  async reserve (bytes: number, what: string, route: AdmissionRoute = 'transfer'): Promise<Reservation> {
    const figures = await this.figures()
    // Synchronous from here: the figures above and the promises below are seen together.
    const problem = this.shortfall(bytes, figures)
    if (problem !== undefined) throw this.refuse(route, bytes, `${what}: ${problem}`)
    this.refusing = undefined
    const promise: Promised = { promised: bytes, unwritten: bytes }
    this.promises.add(promise)
    return {
      get unwritten () { return promise.unwritten },
      written: (n) => { promise.unwritten = Math.max(0, promise.unwritten - n) },
      release: () => { if (this.promises.delete(promise)) this.releases++ }
    }
  }

  /** Throws DiskFullError when `bytes` (0 for "anything at all") would not fit now; promises nothing. */
  async admit (bytes: number, what: string, route: AdmissionRoute): Promise<void> {
    const problem = this.shortfall(bytes, await this.figures())
    if (problem !== undefined) throw this.refuse(route, bytes, `${what}: ${problem}`)
    this.refusing = undefined
  }

  /** The file system said ENOSPC (or EDQUOT): remembered as a refusal, returned as DiskFullError. */
  noSpace (cause: unknown, route: AdmissionRoute = 'write'): DiskFullError {
    return this.refuse(route, 0, `the store's disk is full (${(cause as Error).message}): nothing more is taken until space is freed`, cause)
  }

  /** The refusal still in force: the last one, unless what it needed fits now. */
  async problem (): Promise<DiskRefusal | undefined> {
    const last = this.refusing
    if (last === undefined) return undefined
    const problem = this.shortfall(last.neededBytes, await this.figures())
    if (problem === undefined && this.refusing === last) this.refusing = undefined
    return problem === undefined ? undefined : last
  }

  /** The figures a decision needs, read before deciding (statfs, and the index when there is a quota). */
  private async figures (): Promise<{ freeBytes: number, storedBytes: number | undefined }> {
    for (let tries = 0; ; tries++) {
      const releases = this.releases
      const { freeBytes } = await this.disk()
      const storedBytes = this.maxBytes === undefined ? undefined : await this.storedBytes()
      // A transfer committed and released its promise while we read: its bytes may be in neither
      // figure. Read again (a few times at most; after that the quota errs by one commit).
      if (releases === this.releases || tries === 2) return { freeBytes, storedBytes }
    }
  }

  /** Why `bytes` do not fit, in words, given the figures read and the promises as they are now; undefined when they fit. */
  private shortfall (bytes: number, figures: { freeBytes: number, storedBytes: number | undefined }): string | undefined {
    const reserved = this.reservedBytes
    const left = figures.freeBytes - reserved - bytes
    if (left < this.minFreeBytes) {
      return `${mb(bytes)} do not fit: ${mb(figures.freeBytes)} free on the store's disk, ${mb(reserved)} promised to transfers under way, and ${mb(this.minFreeBytes)} are kept free (store.minFreeBytes)`
    }
    if (this.maxBytes !== undefined && figures.storedBytes !== undefined) {
      let promised = 0
      for (const p of this.promises) promised += p.promised
      if (figures.storedBytes + promised + bytes > this.maxBytes) {
        return `${mb(bytes)} do not fit: ${mb(figures.storedBytes)} stored and ${mb(promised)} promised to transfers under way of the ${mb(this.maxBytes)} allowed (store.maxBytes)`
      }
    }
    return undefined
  }

  private refuse (route: AdmissionRoute, neededBytes: number, detail: string, cause?: unknown): DiskFullError {
    const err = new DiskFullError(`no room in the store: ${detail}; try again later`, cause === undefined ? undefined : { cause })
    this.refusing = { code: 'BEELDNET_ERR_DISK_FULL', route, neededBytes, message: err.message, at: new Date().toISOString() }
    this.emit('refused', this.refusing)
    return err
  }
}

/** ENOSPC or EDQUOT: the file system has no room (for this user). */
export function isNoSpace (err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return code === 'ENOSPC' || code === 'EDQUOT'
}

function mb (bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`
}
