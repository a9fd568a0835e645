import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, readdir, rename, rm, unlink, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { DiskFullError, StoredFileCorruptError, StoredFileMissingError } from '../errors.ts'
import { isNoSpace } from './disk-space.ts'
import { fsyncPath, pathExists } from './durable-fs.ts'

/*
 * Instance files named by the SHA-256 of their bytes: the same file stored twice is one file,
 * and no UID (sender-controlled text) ever becomes part of a path. A file is written under tmp/,
 * fsynced, then renamed into place, so a path under blobs/ always holds complete bytes.
 */

export interface BlobStoreInit {
  /** the store's root directory; blobs/, tmp/ and quarantine/ live under it */
  dir: string
  /** what an ENOSPC or EDQUOT while staging becomes (the store's DiskSpace records it); default a DiskFullError */
  noSpace?: (err: unknown) => Error
  /**
   * Test seam: called before each write of staged bytes with their count. Throwing fails that write
   * as the file system would (an ENOSPC, say); the staging then cleans up as after a real one.
   */
  beforeWrite?: (bytes: number) => void
}

export interface StagedBlob {
  tmpPath: string
  sha256: string
  size: number
  /** staged without an fsync: syncStaged() must make it durable before it is placed */
  unsynced?: true
}

const SHA256_HEX = /^[0-9a-f]{64}$/

/**
 * Buffers a reader may take its chunks from instead of allocating each: the consumer gives a chunk
 * back once nothing refers to its bytes any more (written out, say). A chunk never given back is
 * simply garbage, as a freshly allocated one would be.
 */
export interface ReadBuffers {
  acquire: (bytes: number) => Buffer
  release: (chunk: Uint8Array) => void
}

export class BlobStore {
  readonly dir: string
  private readonly blobsDir: string
  private readonly tmpDir: string
  private readonly quarantineDir: string
  /** files commit() made a fan-out directory for, whose parents the next syncDirectoriesOf must sync */
  private readonly madeDirsFor = new Set<string>()
  /** directory fsyncs done to make renames durable (a group commit does one per directory it touched), and staged files fsynced at commit */
  readonly stats = { directorySyncs: 0, stagedSyncs: 0 }
  private readonly noSpace: (err: unknown) => Error
  private readonly beforeWrite: ((bytes: number) => void) | undefined

  constructor (init: BlobStoreInit) {
    this.dir = init.dir
    this.noSpace = init.noSpace ?? ((err) => new DiskFullError(`the store's disk is full: ${(err as Error).message}`, { cause: err }))
    this.beforeWrite = init.beforeWrite
    this.blobsDir = join(init.dir, 'blobs')
    this.tmpDir = join(init.dir, 'tmp')
    this.quarantineDir = join(init.dir, 'quarantine')
  }

  async start (): Promise<void> {
    await mkdir(this.blobsDir, { recursive: true })
    await mkdir(this.quarantineDir, { recursive: true })
    // Whatever is in tmp/ was being written when a process died: it was never visible, drop it.
    await rm(this.tmpDir, { recursive: true, force: true })
    await mkdir(this.tmpDir, { recursive: true })
  }

  pathOf (sha256: string): string {
    if (!SHA256_HEX.test(sha256)) throw new TypeError(`not a SHA-256 hex digest: ${sha256}`)
    return join(this.blobsDir, sha256.slice(0, 2), sha256.slice(2, 4), sha256)
  }

  /**
   * Copies a file into a temp file through one reused buffer, hashing as it goes. A stream pipeline
   * allocates a buffer per chunk and leaves tens of MB to the garbage collector on a large instance.
   */
  async stageFile (path: string, signal?: AbortSignal): Promise<StagedBlob> {
    const tmpPath = join(this.tmpDir, randomBytes(12).toString('hex'))
    const hash = createHash('sha256')
    const buffer = Buffer.allocUnsafe(COPY_BUFFER_BYTES)
    let size = 0
    const source = await open(path, 'r')
    try {
      const target = await open(tmpPath, 'wx')
      try {
        for (;;) {
          signal?.throwIfAborted()
          const { bytesRead } = await source.read(buffer, 0, buffer.length, null)
          if (bytesRead === 0) break
          const chunk = buffer.subarray(0, bytesRead)
          hash.update(chunk)
          this.beforeWrite?.(chunk.byteLength)
          await writeAll(target, chunk)
          size += bytesRead
        }
        await target.sync()
      } finally {
        await target.close()
      }
    } catch (err) {
      await rm(tmpPath, { force: true })
      throw this.failure(err)
    } finally {
      await source.close()
    }
    return { tmpPath, sha256: hash.digest('hex'), size }
  }

  /**
   * Writes `source` into a temp file, hashing as it goes; the bytes are durable when this resolves
   * (with `sync: false`, once syncStaged() has been given the result).
   * A plain loop of file writes: stream pipes cost a buffer and several callbacks per chunk, which
   * a receiving node pays on every chunk of every instance. A chunk may still be on its way to
   * the disk when the next is asked for: the source must not reuse its buffers. An abort fails it
   * at once with the abort's reason, even while the source is waiting for bytes that may never come.
   */
  async stage (source: AsyncIterable<Uint8Array>, signal?: AbortSignal, options: { sync?: boolean } = {}): Promise<StagedBlob> {
    const sync = options.sync ?? true
    signal?.throwIfAborted()
    const tmpPath = join(this.tmpDir, randomBytes(12).toString('hex'))
    const hash = createHash('sha256')
    let size = 0
    try {
      const target = await open(tmpPath, 'wx')
      const writes = new PositionedWrites(target, this.beforeWrite)
      try {
        for await (const chunk of signal === undefined ? source : untilAborted(source, signal)) {
          hash.update(chunk)
          await writes.write(chunk, size)
          size += chunk.byteLength
        }
        await writes.settle()
        signal?.throwIfAborted()
        if (sync) await target.sync()
      } finally {
        await writes.settle().catch(() => {})
        await target.close()
      }
    } catch (err) {
      destroyIfStream(source)
      // The partial file goes whatever the failure: after an ENOSPC it is the space wanted most.
      await rm(tmpPath, { force: true })
      throw this.failure(err)
    }
    return { tmpPath, sha256: hash.digest('hex'), size, ...(sync ? {} : { unsynced: true as const }) }
  }

  /**
   * Makes staged files that were staged without an fsync durable, all at once: a group commit's
   * instances share the file system's journal commits instead of each waiting for its own.
   */
  async syncStaged (staged: StagedBlob[]): Promise<void> {
    await Promise.all(staged.filter((b) => b.unsynced === true).map(async (b) => {
      await fsyncPath(b.tmpPath).catch((err: unknown) => { throw this.failure(err) })
      delete b.unsynced
      this.stats.stagedSyncs++
    }))
  }

  /**
   * Moves a staged file to its content address. Returns false when that content was already there
   * (the staged copy is dropped and the stored one is left untouched).
   */
  async commit (staged: StagedBlob): Promise<boolean> {
    const target = this.pathOf(staged.sha256)
    // A file already at the address is kept only if its bytes are right (an orphan from a crash is
    // complete, but a damaged one is replaced by the good copy in hand).
    if (await pathExists(target) && await this.check(staged.sha256) === 'ok') {
      await rm(staged.tmpPath, { force: true })
      return false
    }
    if (await mkdir(join(target, '..'), { recursive: true }) !== undefined) this.madeDirsFor.add(staged.sha256)
    await rename(staged.tmpPath, target)
    return true
  }

  /**
   * Moves a staged file to its content address, over any file there: for a caller that knows no
   * index entry points at that address (an earlier file there is an orphan, perhaps damaged). One
   * rename where the fan-out directory exists, which is what a group commit pays per instance.
   */
  async place (staged: StagedBlob): Promise<void> {
    const target = this.pathOf(staged.sha256)
    try {
      await rename(staged.tmpPath, target)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      if (await mkdir(join(target, '..'), { recursive: true }) !== undefined) this.madeDirsFor.add(staged.sha256)
      await rename(staged.tmpPath, target)
    }
  }

  async discard (staged: StagedBlob): Promise<void> {
    await rm(staged.tmpPath, { force: true })
  }

  /** An ENOSPC or EDQUOT is said as BEELDNET_ERR_DISK_FULL; other errors pass. */
  private failure (err: unknown): unknown {
    return isNoSpace(err) ? this.noSpace(err) : err
  }

  /** Makes renames into these blobs' directories durable before the index points at them. */
  async syncDirectoriesOf (sha256s: Iterable<string>): Promise<void> {
    // The leaf, and its parents when commit() made a fan-out directory for it (that must survive a
    // crash too). Each directory once, however many files went into it; all at once, not in turn.
    const dirs = new Set<string>()
    for (const sha of sha256s) {
      const leaf = join(this.pathOf(sha), '..')
      dirs.add(leaf)
      if (this.madeDirsFor.delete(sha)) dirs.add(join(leaf, '..')).add(this.blobsDir)
    }
    this.stats.directorySyncs += dirs.size
    await Promise.all([...dirs].map(fsyncPath))
  }

  async has (sha256: string): Promise<boolean> {
    return pathExists(this.pathOf(sha256))
  }

  /**
   * The stored bytes in chunks of `chunkBytes` (a sender sizes them to its frames), each a buffer of
   * its own. The next chunk is read while the consumer has this one: a sender never waits for the
   * disk between frames. The file is verified as it is read: after the last chunk comes
   * StoredFileCorruptError if the bytes no longer hash right; StoredFileMissingError if it is gone.
   */
  async * readVerified (sha256: string, chunkBytes = 64 * 1024, buffers?: ReadBuffers): AsyncGenerator<Uint8Array> {
    const handle = await open(this.pathOf(sha256), 'r').catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'ENOENT' ? new StoredFileMissingError(sha256) : err
    })
    const hash = createHash('sha256')
    const read = (): Promise<Buffer> => {
      const buffer = buffers?.acquire(chunkBytes) ?? Buffer.allocUnsafe(chunkBytes)
      const reading = handle.read(buffer, 0, chunkBytes, null).then(({ bytesRead }) => buffer.subarray(0, bytesRead))
      // Marked handled: a read ahead may fail while we wait at a yield; the loop still sees the error.
      reading.catch(() => {})
      return reading
    }
    let reading = read()
    try {
      for (;;) {
        const chunk = await reading
        if (chunk.byteLength === 0) break
        reading = read()
        hash.update(chunk)
        yield chunk
      }
      if (hash.digest('hex') !== sha256) throw new StoredFileCorruptError(sha256)
    } finally {
      // The chunk read ahead was never given out: its buffer goes back at once.
      const ahead = await reading.catch(() => undefined)
      if (ahead !== undefined) buffers?.release(ahead)
      await handle.close()
    }
  }

  /** 'ok', 'missing' or 'corrupt', by re-hashing the stored bytes. */
  async check (sha256: string): Promise<'ok' | 'missing' | 'corrupt'> {
    try {
      const hash = createHash('sha256')
      await pipeline(createReadStream(this.pathOf(sha256)), hash)
      return hash.digest('hex') === sha256 ? 'ok' : 'corrupt'
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing'
      throw err
    }
  }

  /** Moves a damaged file aside for inspection instead of deleting evidence. */
  async quarantine (sha256: string): Promise<string> {
    const target = join(this.quarantineDir, `${sha256}.${Date.now()}`)
    await rename(this.pathOf(sha256), target)
    return target
  }

  async remove (sha256: string): Promise<void> {
    await unlink(this.pathOf(sha256)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err
    })
  }

  /** Every content address present on disk (for finding files the index does not know). */
  async * list (): AsyncGenerator<string> {
    for (const a of await readdirSafe(this.blobsDir)) {
      for (const b of await readdirSafe(join(this.blobsDir, a))) {
        for (const name of await readdirSafe(join(this.blobsDir, a, b))) {
          if (SHA256_HEX.test(name)) yield name
        }
      }
    }
  }
}

const COPY_BUFFER_BYTES = 1024 * 1024

async function writeAll (handle: FileHandle, chunk: Uint8Array, position: number | null = null): Promise<void> {
  let offset = 0
  while (offset < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset, position === null ? null : position + offset)
    offset += bytesWritten
  }
}

/** Writes of received chunks allowed to be on their way to the disk at once. */
const WRITES_IN_FLIGHT = 2
/**
 * Received chunks are gathered up to this many bytes into one vectored write: DIMSE senders use
 * 16 KiB PDUs (dcmtk's default), and a write call per fragment costs more than the bytes it moves.
 */
const WRITE_BATCH_BYTES = 256 * 1024

/**
 * Writes at explicit offsets, a few at once: the next chunk is read (and hashed) while earlier ones
 * are still being written, instead of the source waiting on every write. Small chunks go out
 * together in one writev, without being copied. Chunks must not be reused by their producer
 * (received frames are not).
 */
class PositionedWrites {
  private readonly handle: FileHandle
  private readonly beforeWrite: ((bytes: number) => void) | undefined
  private readonly pending: Array<Promise<void>> = []
  private batch: Uint8Array[] = []
  private batchBytes = 0
  private batchAt = 0

  constructor (handle: FileHandle, beforeWrite?: (bytes: number) => void) {
    this.handle = handle
    this.beforeWrite = beforeWrite
  }

  /** Queues a chunk for `position` (right after the previous one); waits only when too many writes are on their way. */
  async write (chunk: Uint8Array, position: number): Promise<void> {
    if (this.batch.length === 0) this.batchAt = position
    this.batch.push(chunk)
    this.batchBytes += chunk.byteLength
    if (this.batchBytes < WRITE_BATCH_BYTES) return
    await this.flush()
  }

  /** Starts the write of the gathered chunks; waits only when too many are on their way. */
  private async flush (): Promise<void> {
    if (this.batch.length === 0) return
    const [batch, at, bytes] = [this.batch, this.batchAt, this.batchBytes]
    const written = (async () => {
      this.beforeWrite?.(bytes)
      await (batch.length === 1 ? writeAll(this.handle, batch[0]!, at) : writevAll(this.handle, batch, at))
    })()
    this.batch = []
    this.batchBytes = 0
    written.catch(() => {})
    this.pending.push(written)
    if (this.pending.length >= WRITES_IN_FLIGHT) await this.pending.shift()
  }

  /** Every write started so far is done (the first failure is thrown). */
  async settle (): Promise<void> {
    await this.flush()
    while (this.pending.length > 0) await this.pending.shift()
  }
}

/** Writes every byte of `chunks` from `position` on, in as few writev calls as the kernel allows. */
async function writevAll (handle: FileHandle, chunks: Uint8Array[], position: number): Promise<void> {
  let rest = chunks
  let at = position
  while (rest.length > 0) {
    let { bytesWritten } = await handle.writev(rest, at)
    at += bytesWritten
    // A short write (rare): drop what went out and go on with the remainder.
    let i = 0
    while (i < rest.length && bytesWritten >= rest[i]!.byteLength) bytesWritten -= rest[i++]!.byteLength
    rest = rest.slice(i)
    if (bytesWritten > 0) rest[0] = rest[0]!.subarray(bytesWritten)
  }
}

/**
 * The source's chunks until `signal` aborts: then the read waiting for a chunk fails at once with
 * the abort's reason (a peer stalled in the middle of an instance must not hold up a node's stop),
 * and a stream source is destroyed.
 */
async function * untilAborted<T> (source: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]()
  const destroy = (): void => { destroyIfStream(source) }
  signal.addEventListener('abort', destroy, { once: true })
  try {
    for (;;) {
      const item = await nextOrAbort(iterator, signal)
      if (item.done === true) return
      yield item.value
    }
  } finally {
    signal.removeEventListener('abort', destroy)
    // Not awaited: after an abort the source may still be waiting for a chunk that never comes.
    iterator.return?.().catch(() => {})
  }
}

/**
 * The iterator's next item, or the abort's reason. Not Promise.race with one long-lived abort
 * promise: each race leaves a reaction on it that holds its result, and so every chunk read.
 */
async function nextOrAbort<T> (iterator: AsyncIterator<T>, signal: AbortSignal): Promise<IteratorResult<T>> {
  signal.throwIfAborted()
  return new Promise((resolve, reject) => {
    const onAbort = (): void => { reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
    iterator.next().then(resolve, reject).finally(() => { signal.removeEventListener('abort', onAbort) })
  })
}

/** Ends a source that is a stream. Without an error: one nobody listens for would crash the process. */
export function destroyIfStream (source: unknown): void {
  const stream = source as { destroy?: () => void, destroyed?: boolean }
  if (typeof stream.destroy === 'function' && stream.destroyed !== true) stream.destroy()
}

async function readdirSafe (dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}
