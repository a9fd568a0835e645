import { PassThrough } from 'node:stream'
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
 * large the instance.
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

export class InstanceReceiver extends PassThrough {
  readonly outcome: Promise<StoreOutcome>
  private readonly socket: Socket

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
}

async function storeOne (store: StudyStore, source: InstanceReceiver, origin: string): Promise<StoreOutcome> {
  const session = store.beginImport({ origin })
  try {
    const staged = await session.add(source)
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
    source.resume()
    // Not the dataset's fault (a disk, the index): "out of resources" asks the sender to try again.
    if (!isBeeldnetError(err)) return { status: DimseStatus.outOfResources, comment: `BEELDNET_ERR_INTERNAL: ${(err as Error).message}`, stored: false }
    const status = UNREADABLE.has(err.code) ? DimseStatus.cannotUnderstand : DimseStatus.outOfResources
    return { status, comment: `${err.code}: ${err.message}`, stored: false }
  }
}
