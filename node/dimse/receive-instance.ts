import { Writable } from 'node:stream'
import type { Socket } from 'node:net'
import { isBeeldnetError } from '../../protocol/errors.ts'
import { fileMetaInformation, type FileMetaInit } from '../dicom/file-meta.ts'
import type { StudyStore } from '../store/study-store.ts'
import { DimseStatus } from './dimse-library.ts'

/*
 * One C-STORE's dataset, from the association's P-DATA to a committed instance: written behind a
 * File Meta header (DIMSE carries the bare dataset) into the store as it arrives. dcmjs-dimse
 * writes P-DATA into our stream without waiting for it (no backpressure of its own), so the
 * stream pauses the association's socket while the disk is behind: memory stays flat however
 * large the instance. The store reads the fragments as they were written, one by one: a
 * PassThrough's reader would concatenate whatever is buffered into a new buffer each time.
 */

export interface StoreOutcome {
  status: number
  /** why it failed, in words (the response's Error Comment, at most 64 characters there) */
  comment?: string
  studyInstanceUID?: string
  sopInstanceUID?: string
  stored: boolean
}

const HIGH_WATER_BYTES = 1024 * 1024
/** What the node refuses because it cannot read the dataset: C000 "cannot understand". */
const UNREADABLE = new Set(['BEELDNET_ERR_NOT_DICOM', 'BEELDNET_ERR_DICOM_TRUNCATED', 'BEELDNET_ERR_DICOM_MALFORMED', 'BEELDNET_ERR_DICOM_MISSING_UID',
  'BEELDNET_ERR_DICOM_INVALID_UID', 'BEELDNET_ERR_DICOM_UNSUPPORTED', 'BEELDNET_ERR_DICOM_HEADER_TOO_LARGE', 'BEELDNET_ERR_DICOM_CHARSET'])

export class InstanceReceiver extends Writable {
  readonly outcome: Promise<StoreOutcome>
  private readonly socket: Socket
  /** the fragment written and not yet taken by the store (a Writable hands over one at a time) */
  private slot: { chunk: Buffer, taken: () => void } | undefined
  private ended = false
  private failure: Error | undefined
  /** after the store gave up on this instance: fragments still coming are dropped */
  private discarding = false
  private wake: (() => void) | undefined

  constructor (store: StudyStore, socket: Socket, meta: FileMetaInit) {
    super({ highWaterMark: HIGH_WATER_BYTES })
    this.socket = socket
    super.write(fileMetaInformation(meta))
    this.outcome = storeOne(store, this, `DIMSE C-STORE from ${socket.remoteAddress ?? 'an unknown address'}`)
    // The library listens for no errors on our stream: a failure must not crash the process.
    this.on('error', () => {})
  }

  override write (chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
    const ok = super.write(chunk as Buffer, encoding as BufferEncoding, callback as () => void)
    if (!ok && !this.socket.isPaused()) {
      this.socket.pause()
      this.once('drain', () => { this.socket.resume() })
    }
    return ok
  }

  override _write (chunk: Buffer, _encoding: BufferEncoding, taken: (err?: Error | null) => void): void {
    if (this.discarding) {
      taken()
      return
    }
    this.slot = { chunk, taken }
    this.poke()
  }

  override _final (done: (err?: Error | null) => void): void {
    this.ended = true
    this.poke()
    done()
  }

  override _destroy (err: Error | null, done: (err?: Error | null) => void): void {
    // A Writable destroys itself once finished: only a destroy before the end loses the instance.
    if (err !== null || !this.ended) this.failure = err ?? new Error('the instance was dropped before it was complete')
    this.slot = undefined
    this.poke()
    done(err)
  }

  /** The dataset's fragments as written (File Meta first); the store's reading them is the backpressure. */
  async * fragments (): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        const slot = this.slot
        if (slot !== undefined) {
          this.slot = undefined
          // Taken before it is yielded: the next fragment may arrive while this one is written.
          slot.taken()
          yield slot.chunk
          continue
        }
        if (this.failure !== undefined) throw this.failure
        if (this.ended) return
        await new Promise<void>((resolve) => { this.wake = resolve })
      }
    } finally {
      // The store stopped reading (done, or failed): whatever else arrives is read and dropped,
      // so the association goes on to its answer.
      this.discardRest()
    }
  }

  /** Drops the rest of the dataset as it arrives (the instance was refused or failed). */
  discardRest (): void {
    this.discarding = true
    const slot = this.slot
    this.slot = undefined
    slot?.taken()
  }

  private poke (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }
}

async function storeOne (store: StudyStore, source: InstanceReceiver, origin: string): Promise<StoreOutcome> {
  const session = store.beginImport({ origin, via: 'c-store' })
  try {
    const staged = await session.add(source.fragments())
    const [result] = await session.commit()
    const uids = { studyInstanceUID: staged.header.studyInstanceUID, sopInstanceUID: staged.header.sopInstanceUID }
    const rejected = result?.rejected[0]
    // A conflict with a held instance, or another patient than the study's: this dataset is refused
    // for good, and PS3.4 B.2.3 has no "duplicate" C-STORE status (0x0111 is N-CREATE's). Of the
    // C-STORE failures, Cxxx "cannot understand" is the one that does not invite a retry (A7xx out
    // of resources does) nor claim the dataset breaks its IOD (A9xx); the Error Comment says why.
    if (rejected !== undefined) return { status: DimseStatus.cannotUnderstand, comment: `${rejected.code}: ${rejected.message}`, stored: false, ...uids }
    // New, or a copy of one held (kept or replacing it, as store.duplicates says): the node holds it.
    return { status: DimseStatus.success, stored: true, ...uids }
  } catch (err) {
    await session.abort()
    // Whatever is left of the dataset is read and dropped, so the association goes on.
    source.discardRest()
    // Not the dataset's fault (a disk, the index): "out of resources" asks the sender to try again.
    if (!isBeeldnetError(err)) return { status: DimseStatus.outOfResources, comment: `BEELDNET_ERR_INTERNAL: ${(err as Error).message}`, stored: false }
    const status = UNREADABLE.has(err.code) ? DimseStatus.cannotUnderstand : DimseStatus.outOfResources
    return { status, comment: `${err.code}: ${err.message}`, stored: false }
  }
}
