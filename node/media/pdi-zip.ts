import { Readable } from 'node:stream'
import { ZipFile } from 'yazl'
import { readHeader } from '../dicom/dataset-reader.ts'
import type { StudyRecord } from '../store/records.ts'
import type { StudyStore } from '../store/study-store.ts'
import { planMedium, type MediumPlan } from './pdi-layout.ts'
import { DICOMDIR_NAME, INDEX_NAME, README_NAME, RECORD_VALUE_BYTES, mediumFilePrefix, mediumFileSize, mediumRootFiles } from './pdi-medium.ts'

/*
 * A PDI medium as one ZIP, streamed: the DICOMDIR, README.TXT and INDEX.HTM first, then every
 * instance's stored bytes (checked against their SHA-256 as they are read) under its 8.3 File ID.
 * Entries are stored, not deflated: most pixel data is compressed already, and stored entries of
 * known sizes give the ZIP's size before its first byte (Content-Length). yazl writes one entry at
 * a time, honours the reader's backpressure and switches to ZIP64 past 4 GiB or 65,534 entries.
 */

export interface PdiZip {
  /** the ZIP's bytes; destroyed with the error when a stored file is missing or corrupt, or the signal aborts */
  stream: Readable
  /** the ZIP's size in bytes, known in advance */
  size: number
  /** the studies on the medium, in the order given (duplicates once) */
  studies: StudyRecord[]
  plan: MediumPlan
}

export interface PdiZipInit {
  /** stops the stream (destroyed with the signal's reason) and closes the file being read */
  signal?: AbortSignal
  /** the institution README.TXT and INDEX.HTM name as the medium's maker (default: none named) */
  institution?: string
  /** when the medium was made, for its texts and entries' times (default: now) */
  createdAt?: Date
}

/**
 * The studies as an IHE PDI medium in one ZIP (for a clinician's download, a patient's share link).
 * Reads every instance's header first (to write the DICOMDIR; a few hundred bytes kept per
 * instance), so a missing study throws StudyNotFoundError before anything is sent; then streams
 * with memory flat whatever the studies' size. Call it after the caller's access check and audit:
 *
 *   const zip = await streamPdiZip(store, [studyInstanceUID], { signal })
 *   reply.header('content-length', zip.size).type('application/zip').send(zip.stream)
 */
export async function streamPdiZip (store: StudyStore, studyInstanceUIDs: string[], init: PdiZipInit = {}): Promise<PdiZip> {
  const { signal } = init
  const entries = []
  for (const uid of new Set(studyInstanceUIDs)) {
    signal?.throwIfAborted()
    entries.push(await store.getStudy(uid))
  }
  const plan = planMedium(entries)
  const createdAt = init.createdAt ?? new Date()
  const root = await mediumRootFiles(plan, (m) => readHeader(store.blobs.pathOf(m.instance.sha256), { maxValueBytes: RECORD_VALUE_BYTES }), {
    createdAt, signal, ...(init.institution === undefined ? {} : { institution: init.institution })
  })

  signal?.throwIfAborted()
  const zip = new ZipFile()
  const stream = zip.outputStream
  const options = { compress: false, mtime: createdAt }
  let reading: Readable | undefined
  const fail = (err: unknown): void => { if (!stream.destroyed) stream.destroy(err as Error) }
  zip.on('error', fail)
  zip.addBuffer(root.dicomdir, DICOMDIR_NAME, options)
  zip.addBuffer(root.readme, README_NAME, options)
  zip.addBuffer(root.index, INDEX_NAME, options)
  for (const { fileId, instance } of plan.instances) {
    // Opened only when yazl reaches the entry: one stored file open at a time.
    zip.addReadStreamLazy(fileId.join('/'), { ...options, size: mediumFileSize(instance) }, (cb) => {
      const prefix = mediumFilePrefix(instance)
      const bytes = store.openInstance(instance)
      reading = Readable.from(prefix === undefined ? bytes : withPrefix(prefix, bytes), { objectMode: false })
      reading.on('error', fail)
      cb(null, reading)
    })
  }
  let size = -1
  zip.end({}, (total) => { size = total })
  if (size < 0) throw new Error('the ZIP\'s size was not known in advance')
  // A reader gone (or the signal) stops the file being read too: pipe() would leave it open.
  stream.once('close', () => { reading?.destroy() })
  const onAbort = (): void => fail(signal!.reason)
  signal?.addEventListener('abort', onAbort, { once: true })
  stream.once('close', () => signal?.removeEventListener('abort', onAbort))
  return { stream, size, studies: entries.map((e) => e.study), plan }
}

async function * withPrefix (prefix: Buffer, body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield prefix
  yield * body
}
