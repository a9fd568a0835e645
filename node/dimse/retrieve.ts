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
import { storeInstances, type OutgoingInstance, type StoreResult } from './store-scu.ts'
import { readHeader } from '../dicom/dataset-reader.ts'
import { TransferSyntax } from '../dicom/tags.ts'
import type { CoercedHeader } from '../reconcile/coerce.ts'
import { isBeeldnetError } from '../../protocol/errors.ts'
import { NATIVE_TARGETS, openNativeDataset } from '../transcode/native-dataset.ts'
import { canProduce, chooseSyntax } from '../transcode/target-syntax.ts'
import { sendStreamedDatasets, streamDataset } from './streamed-sub-operation.ts'
import type { Socket } from 'node:net'

type CStoreRequest = requests.CStoreRequest
type CStoreResponse = responses.CStoreResponse

/*
 * C-MOVE and C-GET (PS3.4 C.4.2, C.4.3): the instances an identifier names go out as C-STORE
 * sub-operations, to a configured destination (MOVE, a new association, streamed by our own SCU)
 * or back on the caller's own association (GET). Each instance is checked against its hash as it
 * is read: nothing damaged leaves the node.
 *
 * An instance goes as stored when the requester accepted its transfer syntax, else decoded to
 * Explicit (or Implicit) VR Little Endian when the requester accepted that (node/transcode); when
 * neither will do, that sub-operation fails with the reason and its SOP Instance UID is listed.
 *
 * Every route streams, transcoded or not, one frame at a time: C-MOVE and the export to the PACS
 * by our own SCU, C-GET by taking over how dcmjs-dimse sends a sub-operation's dataset
 * (streamed-sub-operation.ts), so memory stays flat whatever an instance's size.
 */

export interface RetrieveProgress {
  remaining: number
  completed: number
  failed: number
}

export interface RetrieveDone extends RetrieveProgress {
  /** why sub-operations failed, in words (for the log) */
  reasons: string[]
  /** the SOP Instance UIDs of the failed sub-operations (the Failed SOP Instance UID List), when known */
  failedSopInstanceUIDs?: string[]
  /** what became of each instance, in the order they ended (sendToDestination) */
  instances?: InstanceSent[]
}

/**
 * One instance of a sending to a destination. stored: answered with success or a warning (0xBxxx);
 * failed: answered with a failure status; not-sent: the node did not send it (no presentation context
 * the destination accepted, or decoding refused), `status` 0x0122 stands for it; lost: the association
 * failed before its answer, 0xA700 stands for it; cancelled: the caller's signal ended the sending
 * before its answer (0xFE00), and whether the destination kept it is not known.
 */
export interface InstanceSent {
  sopInstanceUID: string
  outcome: 'stored' | 'failed' | 'not-sent' | 'lost' | 'cancelled'
  /** DIMSE status: the destination's answer, or the one that stands for it */
  status: number
  /** the destination's Error Comment, or why in words */
  reason: string
  /** the Beeldnet error code of a refusal of the node's own, when it has one */
  code?: string
}

/** A C-STORE status that means the instance is stored: success or a warning (PS3.4 B.2.3). */
export const isStoredStatus = (status: number): boolean => status === DimseStatus.success || (status & 0xF000) === 0xB000

export interface SendOptions {
  /** rewrites each header on the way (reconciliation) */
  transform?: HeaderTransform
  /** ends the association at once; instances not yet answered are 'cancelled' and stay `remaining` */
  signal?: AbortSignal
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

/**
 * A C-STORE request (dcmjs-dimse, for C-GET) for an instance sent in `transferSyntaxUID`: its dataset
 * streams (streamDataset); read whole from the file only if the library asked for it as a buffer.
 */
function storeRequest (store: StudyStore, instance: InstanceRecord, transferSyntaxUID: string): CStoreRequest {
  const { Dataset } = dimse()
  const { CStoreRequest } = dimse().requests
  class StoredDataset extends Dataset {
    // dcmjs-dimse transcodes from these when the caller accepted another transfer syntax than the
    // dataset's: that would send a dataset of two UIDs. The syntax is chosen before (chooseSyntax),
    // so this never happens; if it did, the sub-operation fails and nothing wrong is sent.
    override getElements (): Record<string, unknown> {
      throw new Error(`the caller did not accept ${this.getTransferSyntaxUid()} for this instance`)
    }

    override getDenaturalizedDataset (): Buffer {
      if (transferSyntaxUID !== instance.transferSyntaxUID) throw new Error('a decoded dataset is only sent as it streams')
      const path = store.blobs.pathOf(instance.sha256)
      const file = readFileSync(path)
      if (createHash('sha256').update(file).digest('hex') !== instance.sha256) throw new StoredFileCorruptError(instance.sha256)
      const dataset = file.subarray(datasetOffset(file))
      return dataset.length % 2 === 1 && isDeflated(instance) ? Buffer.concat([dataset, EVEN_PAD]) : dataset
    }
  }
  const dataset = new StoredDataset({ SOPClassUID: instance.sopClassUID, SOPInstanceUID: instance.sopInstanceUID }, transferSyntaxUID)
  return new CStoreRequest(dataset)
}

interface AcceptedContext { getAbstractSyntaxUid (): string, getAcceptedTransferSyntaxUid (): string | undefined, getResult (): number }
interface AssociationView { getPresentationContexts (): Array<{ id: number }>, getPresentationContext (id: number): AcceptedContext }

/** The transfer syntaxes the caller accepted for a SOP class on the C-GET's association; undefined when that cannot be read. */
function acceptedSyntaxes (scp: SubOperationSender, sopClassUID: string): string[] | undefined {
  const association = (scp as unknown as { association?: AssociationView }).association
  if (association === undefined) return undefined
  const accepted: string[] = []
  for (const { id } of association.getPresentationContexts()) {
    const context = association.getPresentationContext(id)
    const syntax = context.getAcceptedTransferSyntaxUid()
    if (context.getAbstractSyntaxUid() === sopClassUID && context.getResult() === 0 && syntax !== undefined) accepted.push(syntax)
  }
  return accepted
}

/** Other syntaxes an instance can be sent in, decoded: Explicit, then Implicit VR Little Endian. */
function decodedSyntaxes (stored: string): string[] {
  return [...NATIVE_TARGETS].filter((target) => target !== stored && canProduce(stored, target))
}

const reasonOf = (err: unknown): string => isBeeldnetError(err) ? `${err.code}: ${err.message}` : (err as Error).message

export async function retrieve (store: StudyStore, identifier: Identifier, how: RetrieveHow, onProgress: (p: RetrieveProgress) => void,
  beforeSending?: (instances: InstanceRecord[]) => Promise<void>): Promise<RetrieveDone> {
  const instances = await instancesFor(store, identifier)
  await beforeSending?.(instances)
  if (how.kind === 'get') return sendOnAssociation(store, instances, how.scp, onProgress)
  return sendToDestination(store, instances, how.destination, how.callingAeTitle, onProgress)
}

/**
 * C-GET: C-STORE sub-operations back on the caller's association, one at a time, each in a syntax
 * the caller accepted for its SOP class (decoded when that is not the stored one), each dataset
 * streamed from the store as it is sent (streamed-sub-operation.ts).
 */
async function sendOnAssociation (store: StudyStore, instances: InstanceRecord[], scp: SubOperationSender, onProgress: (p: RetrieveProgress) => void): Promise<RetrieveDone> {
  const done: RetrieveDone = { remaining: instances.length, completed: 0, failed: 0, reasons: [], failedSopInstanceUIDs: [] }
  const fail = (instance: InstanceRecord, reason: string): void => {
    done.remaining--
    done.failed++
    done.reasons.push(`${instance.sopInstanceUID}: ${reason}`)
    done.failedSopInstanceUIDs!.push(instance.sopInstanceUID)
    onProgress({ remaining: done.remaining, completed: done.completed, failed: done.failed })
  }
  let streamFailure: Error | undefined
  sendStreamedDatasets(scp, (err) => { streamFailure = err })
  const socket = (scp as unknown as { socket?: Socket }).socket
  for (const instance of instances) {
    if (socket?.destroyed === true) {
      fail(instance, `status 0xa700 the association ended${streamFailure === undefined ? '' : ` (${reasonOf(streamFailure)})`}`)
      continue
    }
    const accepted = acceptedSyntaxes(scp, instance.sopClassUID)
    const syntax = accepted === undefined ? instance.transferSyntaxUID : chooseSyntax(instance.transferSyntaxUID, accepted)
    if (accepted !== undefined && accepted.length === 0) {
      fail(instance, `status 0x0122 the caller accepted no storage presentation context for ${instance.sopClassUID}`)
      continue
    }
    if (syntax === undefined) {
      fail(instance, `status 0x0122 BEELDNET_ERR_TRANSCODE_UNSUPPORTED: the caller accepts ${accepted!.join(', ')}, and ${instance.transferSyntaxUID} cannot be given in any of them`)
      continue
    }
    let chunks: () => AsyncIterable<Uint8Array> = () => datasetBytes(store, instance)
    if (syntax !== instance.transferSyntaxUID) {
      try {
        // Opened (frame 1 decoded) before the sub-operation starts: a refusal fails this instance alone.
        const decoded = await decodedStream(store, instance, syntax)
        chunks = () => decoded
      } catch (err) {
        fail(instance, `status 0x0122 ${reasonOf(err)}`)
        continue
      }
    }
    const request = storeRequest(store, instance, syntax)
    streamDataset(request, chunks)
    let answered = false
    request.on('response', (response: CStoreResponse) => {
      answered = true
      const status = response.getStatus()
      done.remaining--
      if (isStoredStatus(status)) {
        done.completed++
      } else {
        done.failed++
        done.reasons.push(`${instance.sopInstanceUID}: status 0x${status.toString(16).padStart(4, '0')} ${response.getErrorComment() ?? ''}`.trim())
        done.failedSopInstanceUIDs!.push(instance.sopInstanceUID)
      }
      onProgress({ remaining: done.remaining, completed: done.completed, failed: done.failed })
    })
    // The association's request queue says 'done' once this sub-operation is answered (or skipped);
    // a dataset that fails as it streams ends the association instead.
    let ended: (() => void) | undefined
    await new Promise<void>((resolve) => {
      ended = resolve
      scp.once('done', resolve)
      socket?.once('close', resolve)
      scp.sendRequests([request])
    })
    if (ended !== undefined) socket?.off('close', ended)
    if (!answered) {
      fail(instance, streamFailure !== undefined
        ? `status 0xa700 ${reasonOf(streamFailure)}`
        : `no storage presentation context accepted by the caller for ${instance.sopClassUID} in ${syntax}`)
    }
  }
  return done
}

/** The instance decoded to `transferSyntaxUID` as it is sent, frame by frame; refused (before any byte) when it cannot be. */
async function decodedStream (store: StudyStore, instance: InstanceRecord, transferSyntaxUID: string, transform?: HeaderTransform): Promise<AsyncIterable<Uint8Array>> {
  const path = store.blobs.pathOf(instance.sha256)
  const coerced = transform?.(path)
  const header = coerced?.header.subarray(coerced.datasetOffset, coerced.header.length)
  const native = await openNativeDataset(path, { transferSyntaxUID, sha256: instance.sha256, ...(header === undefined ? {} : { header }) })
  return native.stream()
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
 * Each instance's end is in `instances`; the reasons in words stay for the log.
 */
export async function sendToDestination (store: StudyStore, instances: InstanceRecord[], destination: DimseDestination, callingAeTitle: string,
  onProgress: (p: RetrieveProgress) => void, options: SendOptions = {}): Promise<RetrieveDone> {
  const { transform, signal } = options
  const done: RetrieveDone & { instances: InstanceSent[] } = { remaining: instances.length, completed: 0, failed: 0, reasons: [], failedSopInstanceUIDs: [], instances: [] }
  if (instances.length === 0) return done
  const outgoing: OutgoingInstance[] = instances.map((instance) => ({
    sopClassUID: instance.sopClassUID,
    sopInstanceUID: instance.sopInstanceUID,
    transferSyntaxUID: instance.transferSyntaxUID,
    dataset: () => datasetBytes(store, instance, transform),
    // Decoded with the reconciled header when there is one.
    ...(decodedSyntaxes(instance.transferSyntaxUID).length > 0
      ? { decoded: { transferSyntaxUIDs: decodedSyntaxes(instance.transferSyntaxUID), open: async (syntax: string) => decodedStream(store, instance, syntax, transform) } }
      : {})
  }))
  const { reasons } = await storeInstances(destination, callingAeTitle, outgoing, (result) => {
    const outcome = instanceOutcome(result)
    done.instances.push({ sopInstanceUID: result.sopInstanceUID, outcome, status: result.status, reason: result.comment, ...(result.code === undefined ? {} : { code: result.code }) })
    // Not sent because the caller aborted: neither completed nor failed, still to do.
    if (outcome === 'cancelled') return
    done.remaining--
    if (outcome === 'stored') {
      done.completed++
    } else {
      done.failed++
      done.reasons.push(`${result.sopInstanceUID}: status 0x${result.status.toString(16).padStart(4, '0')} ${result.comment}`.trim())
      done.failedSopInstanceUIDs!.push(result.sopInstanceUID)
    }
    onProgress({ remaining: done.remaining, completed: done.completed, failed: done.failed })
  }, signal === undefined ? {} : { signal })
  done.reasons.unshift(...reasons)
  return done
}

function instanceOutcome (result: StoreResult): InstanceSent['outcome'] {
  switch (result.outcome) {
    case 'answered': return isStoredStatus(result.status) ? 'stored' : 'failed'
    case 'aborted': return 'cancelled'
    default: return result.outcome
  }
}
