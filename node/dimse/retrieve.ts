import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { requests, responses } from 'dcmjs-dimse'
import { StoredFileCorruptError } from '../errors.ts'
import type { DimseDestination } from '../config/config.ts'
import { QueryKeyError } from '../dicomweb/errors.ts'
import type { InstanceRecord } from '../store/records.ts'
import type { StudyStore } from '../store/study-store.ts'
import { dimse, DimseStatus } from './dimse-library.ts'
import type { Identifier } from './find.ts'
import { storeInstances, type OutgoingInstance } from './store-scu.ts'
import { readHeader } from '../dicom/dataset-reader.ts'
import { TransferSyntax } from '../dicom/tags.ts'
import type { CoercedHeader } from '../reconcile/coerce.ts'

type CStoreRequest = requests.CStoreRequest
type CStoreResponse = responses.CStoreResponse

/*
 * C-MOVE and C-GET (PS3.4 C.4.2, C.4.3): the instances an identifier names go out as C-STORE
 * sub-operations, to a configured destination (MOVE, a new association, streamed by our own SCU)
 * or back on the caller's own association (GET). Each instance is checked against its hash as it
 * is read: nothing damaged leaves the node.
 *
 * Limit: C-GET answers on the association dcmjs-dimse holds, and that library sends a dataset from
 * one buffer, so an instance is held in memory whole while a C-GET sends it (a 1 GB multi-frame
 * instance needs about three times that). C-MOVE and the export to the PACS stream.
 */

export interface RetrieveProgress {
  remaining: number
  completed: number
  failed: number
}

export interface RetrieveDone extends RetrieveProgress {
  /** why sub-operations failed, in words */
  reasons: string[]
}

/** Sends C-STORE requests over an established association (the SCP serving a C-GET). */
export interface SubOperationSender {
  sendRequests (requests: CStoreRequest[]): void
  once (event: 'done', listener: () => void): unknown
}

export type RetrieveHow =
  | { kind: 'move', destination: DimseDestination, callingAeTitle: string }
  | { kind: 'get', scp: SubOperationSender }

const uidList = (value: unknown): string[] => (Array.isArray(value) ? value.map(String) : String(value ?? '').split('\\')).map((s) => s.trim()).filter((s) => s !== '')

/** The stored instances an identifier names (by UIDs, or a patient's at PATIENT level). */
export async function instancesFor (store: StudyStore, identifier: Identifier): Promise<InstanceRecord[]> {
  const level = String(identifier.QueryRetrieveLevel ?? '').trim().toUpperCase()
  let studies = uidList(identifier.StudyInstanceUID)
  if (level === 'PATIENT') {
    const patientId = String(identifier.PatientID ?? '').trim()
    if (patientId === '') throw new QueryKeyError('a PATIENT level retrieve needs a PatientID')
    studies = (await store.findStudies()).filter((s) => s.patient.id === patientId).map((s) => s.studyInstanceUID)
  } else if (!['STUDY', 'SERIES', 'IMAGE'].includes(level)) {
    throw new QueryKeyError(`QueryRetrieveLevel ${JSON.stringify(level)} is not PATIENT, STUDY, SERIES or IMAGE`)
  } else if (studies.length === 0) {
    throw new QueryKeyError('a retrieve needs the StudyInstanceUID')
  }
  const series = new Set(uidList(identifier.SeriesInstanceUID))
  const sops = new Set(uidList(identifier.SOPInstanceUID))
  if (level === 'SERIES' && series.size === 0) throw new QueryKeyError('a SERIES level retrieve needs the SeriesInstanceUID')
  if (level === 'IMAGE' && sops.size === 0) throw new QueryKeyError('an IMAGE level retrieve needs the SOPInstanceUID')
  const found: InstanceRecord[] = []
  for (const uid of studies) {
    const entries = await store.index.getEntries(uid)
    for (const instance of entries?.instances ?? []) {
      if ((level === 'SERIES' || level === 'IMAGE') && !series.has(instance.seriesInstanceUID) && series.size > 0) continue
      if (level === 'IMAGE' && !sops.has(instance.sopInstanceUID)) continue
      found.push(instance)
    }
  }
  // Reports first, as everywhere in Beeldnet: the person waiting can read while images arrive.
  return found.sort((a, b) => Number(b.isReport) - Number(a.isReport))
}

/** Offset of the dataset in a stored file: after the preamble, 'DICM' and group 0002, if it has them. */
function datasetOffset (file: Buffer): number {
  if (file.length < 144 || file.toString('latin1', 128, 132) !== 'DICM') return 0
  // (0002,0000) File Meta Information Group Length comes first: UL at byte 140.
  return 144 + file.readUInt32LE(140)
}

/*
 * A deflate stream may have odd length (dcmconv writes files so), but a dataset on the wire is sent in
 * fragments of even length (dcmtk refuses "Odd Fragment Length"): one NUL byte after the stream's end,
 * which inflaters ignore, makes it even.
 */
const EVEN_PAD = Buffer.alloc(1)
const isDeflated = (instance: InstanceRecord): boolean => instance.transferSyntaxUID === TransferSyntax.DeflatedExplicitVRLittleEndian

/** Rewrites a stored file's header on its way out (reconciliation): the rest goes as stored. */
export type HeaderTransform = (path: string) => CoercedHeader

/** A C-STORE request (dcmjs-dimse, for C-GET) whose dataset is the stored file's bytes, read and verified only when sent. */
function storeRequest (store: StudyStore, instance: InstanceRecord): CStoreRequest {
  const { Dataset } = dimse()
  const { CStoreRequest } = dimse().requests
  class StoredDataset extends Dataset {
    // dcmjs-dimse transcodes from these when the peer accepted another transfer syntax: that would
    // send a dataset of two UIDs. Refused instead; the sub-operation fails, nothing wrong is sent.
    override getElements (): Record<string, unknown> {
      throw new Error(`the destination did not accept ${instance.transferSyntaxUID}; Beeldnet sends instances as stored, it does not transcode`)
    }

    override getDenaturalizedDataset (): Buffer {
      const path = store.blobs.pathOf(instance.sha256)
      const file = readFileSync(path)
      if (createHash('sha256').update(file).digest('hex') !== instance.sha256) throw new StoredFileCorruptError(instance.sha256)
      const dataset = file.subarray(datasetOffset(file))
      return dataset.length % 2 === 1 && isDeflated(instance) ? Buffer.concat([dataset, EVEN_PAD]) : dataset
    }
  }
  const dataset = new StoredDataset({ SOPClassUID: instance.sopClassUID, SOPInstanceUID: instance.sopInstanceUID }, instance.transferSyntaxUID)
  return new CStoreRequest(dataset)
}

export async function retrieve (store: StudyStore, identifier: Identifier, how: RetrieveHow, onProgress: (p: RetrieveProgress) => void,
  beforeSending?: (instances: InstanceRecord[]) => Promise<void>): Promise<RetrieveDone> {
  const instances = await instancesFor(store, identifier)
  await beforeSending?.(instances)
  if (how.kind === 'get') return sendOnAssociation(store, instances, how.scp, onProgress)
  return sendToDestination(store, instances, how.destination, how.callingAeTitle, onProgress)
}

function storeRequests (store: StudyStore, instances: InstanceRecord[], done: RetrieveDone, onProgress: (p: RetrieveProgress) => void): CStoreRequest[] {
  return instances.map((instance) => {
    const request = storeRequest(store, instance)
    request.on('response', (response: CStoreResponse) => {
      const status = response.getStatus()
      done.remaining--
      if (status === DimseStatus.success || (status & 0xF000) === 0xB000) {
        done.completed++
      } else {
        done.failed++
        done.reasons.push(`${instance.sopInstanceUID}: status 0x${status.toString(16).padStart(4, '0')} ${response.getErrorComment() ?? ''}`.trim())
      }
      onProgress({ remaining: done.remaining, completed: done.completed, failed: done.failed })
    })
    return request
  })
}

/** C-GET: C-STORE sub-operations back on the caller's association. */
async function sendOnAssociation (store: StudyStore, instances: InstanceRecord[], scp: SubOperationSender, onProgress: (p: RetrieveProgress) => void): Promise<RetrieveDone> {
  const done: RetrieveDone = { remaining: instances.length, completed: 0, failed: 0, reasons: [] }
  if (instances.length === 0) return done
  const requests = storeRequests(store, instances, done, onProgress)
  // The association's request queue says 'done' once the last sub-operation is answered (or skipped).
  await new Promise<void>((resolve) => {
    scp.once('done', resolve)
    scp.sendRequests(requests)
  })
  if (done.remaining > 0) done.reasons.push(`${done.remaining} instance(s) had no storage presentation context accepted by the caller`)
  done.failed += done.remaining
  done.remaining = 0
  return done
}

/** The dataset of a stored instance as it goes out: verified as read, its header rewritten if asked. */
async function * datasetBytes (store: StudyStore, instance: InstanceRecord, transform?: HeaderTransform): AsyncGenerator<Uint8Array> {
  const path = store.blobs.pathOf(instance.sha256)
  let skip: number
  if (transform === undefined) {
    skip = readHeader(path).datasetOffset
  } else {
    const coerced = transform(path)
    yield coerced.header.subarray(coerced.datasetOffset)
    skip = coerced.headerEnd
  }
  let position = 0
  for await (const chunk of store.openInstance(instance, { chunkBytes: 256 * 1024 })) {
    const end = position + chunk.byteLength
    if (end > skip) yield position >= skip ? chunk : chunk.subarray(skip - position)
    position = end
  }
  if ((position - skip) % 2 === 1 && isDeflated(instance)) yield EVEN_PAD
}

/**
 * C-STORE of the instances to a DICOM destination on an association of their own (C-MOVE, export
 * to the PACS), streamed from the store by our own SCU: memory stays flat however large they are.
 */
export async function sendToDestination (store: StudyStore, instances: InstanceRecord[], destination: DimseDestination, callingAeTitle: string,
  onProgress: (p: RetrieveProgress) => void, transform?: HeaderTransform): Promise<RetrieveDone> {
  const done: RetrieveDone = { remaining: instances.length, completed: 0, failed: 0, reasons: [] }
  if (instances.length === 0) return done
  const outgoing: OutgoingInstance[] = instances.map((instance) => ({
    sopClassUID: instance.sopClassUID,
    sopInstanceUID: instance.sopInstanceUID,
    transferSyntaxUID: instance.transferSyntaxUID,
    dataset: () => datasetBytes(store, instance, transform)
  }))
  const { reasons } = await storeInstances(destination, callingAeTitle, outgoing, (result) => {
    done.remaining--
    if (result.status === DimseStatus.success || (result.status & 0xF000) === 0xB000) {
      done.completed++
    } else {
      done.failed++
      done.reasons.push(`${result.sopInstanceUID}: status 0x${result.status.toString(16).padStart(4, '0')} ${result.comment}`.trim())
    }
    onProgress({ remaining: done.remaining, completed: done.completed, failed: done.failed })
  })
  done.reasons.unshift(...reasons)
  return done
}
