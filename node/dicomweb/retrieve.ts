import { createReadStream } from 'node:fs'
import { createTextDecoder } from '../dicom/charset.ts'
import { readHeader, type ParsedHeader } from '../dicom/dataset-reader.ts'
import { inflatedRange } from '../dicom/inflated-source.ts'
import { fileMetaInformation } from '../dicom/file-meta.ts'
import { Tags, TransferSyntax } from '../dicom/tags.ts'
import type { InstanceRecord } from '../store/records.ts'
import type { StudyStore } from '../store/study-store.ts'
import { datasetToJson, tagKey, type DicomJson } from './dicom-json.ts'
import { NotFoundError } from '../../protocol/errors.ts'
import { NotAcceptableError } from './errors.ts'
import type { MediaType, OutgoingPart } from './multipart.ts'
import { TranscodeUnsupportedError } from '../transcode/errors.ts'
import { NATIVE_TARGETS, openNativeDataset } from '../transcode/native-dataset.ts'
import { canProduce } from '../transcode/target-syntax.ts'
import { canDecode, decodeFrame, loadDecoders } from '../transcode/codecs.ts'
import { nativeFrameRange, openFrames } from '../transcode/frame-reader.ts'

/*
 * WADO-RS (PS3.18 10.4): instances as stored (Part 10, byte for byte, verified against their hash
 * as they stream), metadata as DICOM JSON read from the headers only, and bulk data and frames
 * as byte ranges of the stored file. A compressed instance asked for in Explicit or Implicit VR
 * Little Endian is decoded frame by frame as it streams; any other syntax than the stored one is
 * refused with 406, never approximated.
 */

export interface Target {
  studyInstanceUID: string
  seriesInstanceUID?: string
  sopInstanceUID?: string
}

/** The stored instances a WADO-RS path names, in series and instance order; 404 when there are none. */
export async function instancesOf (store: StudyStore, target: Target): Promise<InstanceRecord[]> {
  const entries = await store.index.getEntries(target.studyInstanceUID)
  if (entries === undefined) throw new NotFoundError(`no study ${target.studyInstanceUID} on this node`)
  const seriesOrder = new Map(entries.series.map((s) => [s.seriesInstanceUID, s.number ?? Infinity]))
  const found = entries.instances
    .filter((i) => (target.seriesInstanceUID === undefined || i.seriesInstanceUID === target.seriesInstanceUID) &&
      (target.sopInstanceUID === undefined || i.sopInstanceUID === target.sopInstanceUID))
    .sort((a, b) => (seriesOrder.get(a.seriesInstanceUID)! - seriesOrder.get(b.seriesInstanceUID)!) ||
      a.seriesInstanceUID.localeCompare(b.seriesInstanceUID) || (a.number ?? Infinity) - (b.number ?? Infinity) ||
      a.sopInstanceUID.localeCompare(b.sopInstanceUID))
  if (found.length === 0) {
    const what = target.sopInstanceUID !== undefined ? `instance ${target.sopInstanceUID}` : `series ${target.seriesInstanceUID}`
    throw new NotFoundError(`no ${what} in study ${target.studyInstanceUID}`)
  }
  return found
}

/**
 * Checks the Accept header against multipart/related of application/dicom and says the transfer
 * syntax to send in: undefined for each instance as stored (`*`), Explicit VR Little Endian when
 * none is named (PS3.18's default), else the one asked for, when every instance is stored in it or
 * can be decoded to it (Explicit or Implicit VR Little Endian). Ranges are tried in the client's
 * order of preference.
 */
export function checkInstanceAccept (accept: MediaType[], instances: InstanceRecord[]): string | undefined {
  const stored = new Set(instances.map((i) => i.transferSyntaxUID))
  let cannot: string | undefined
  for (const m of accept) {
    // PS3.18 (since 2016c): without a transfer-syntax the default is Explicit VR Little Endian; `*` is as stored.
    if (m.type === '*/*' || m.type === 'multipart/*') return TransferSyntax.ExplicitVRLittleEndian
    if (m.type !== 'multipart/related') continue
    const type = m.params.type?.toLowerCase() ?? 'application/dicom'
    if (type !== 'application/dicom') continue
    const syntax = m.params['transfer-syntax']
    if (syntax === undefined) return TransferSyntax.ExplicitVRLittleEndian
    if (syntax === '*') return undefined
    if (instances.every((i) => canProduce(i.transferSyntaxUID, syntax))) return syntax
    // A native syntax that some stored one cannot be decoded to is its own refusal; compressing is never done.
    if (NATIVE_TARGETS.has(syntax)) cannot ??= syntax
  }
  if (cannot !== undefined) {
    const refused = instances.find((i) => !canProduce(i.transferSyntaxUID, cannot!))!
    throw new TranscodeUnsupportedError(refused.sopInstanceUID, refused.transferSyntaxUID,
      `it cannot be given in ${cannot} (this node sends instances as stored, or decoded to Explicit or Implicit VR Little Endian)`)
  }
  throw new NotAcceptableError(`this node sends instances as multipart/related; type="application/dicom" (stored in ${[...stored].join(', ')}; transfer-syntax=* for as stored, or ${TransferSyntax.ExplicitVRLittleEndian} decoded)`)
}

export function checkJsonAccept (accept: MediaType[]): void {
  if (!accept.some((m) => ['*/*', 'application/*', 'application/dicom+json', 'application/json'].includes(m.type))) {
    throw new NotAcceptableError('metadata is sent as application/dicom+json')
  }
}

/**
 * One part per instance: its Part 10 bytes (File Meta added to an instance stored without one), or,
 * when `transferSyntax` is given and differs from the stored one, the instance decoded to it frame
 * by frame (node/transcode), with File Meta naming the new syntax.
 */
export async function * instanceParts (store: StudyStore, instances: InstanceRecord[], location: (i: InstanceRecord) => string, transferSyntax?: string): AsyncGenerator<OutgoingPart> {
  for (const instance of instances) {
    // A transfer-syntax asked for by name was checked for every instance; the default is given where it
    // can be, and what no decoder reads (video, say) goes as stored, its part saying in which syntax.
    if (transferSyntax !== undefined && transferSyntax !== instance.transferSyntaxUID && canProduce(instance.transferSyntaxUID, transferSyntax)) {
      const native = await openNativeDataset(store.blobs.pathOf(instance.sha256), { transferSyntaxUID: transferSyntax, sha256: instance.sha256 })
      const meta = fileMetaInformation({ ...instance, transferSyntaxUID: transferSyntax })
      try {
        yield {
          contentType: `application/dicom; transfer-syntax=${transferSyntax}`,
          contentLength: meta.length + native.length,
          contentLocation: location(instance),
          body: withPrefix(meta, native.stream())
        }
      } finally {
        // The body is read before the next part is asked for; a client gone before that leaves the file open otherwise.
        native.close()
      }
      continue
    }
    const prefix = instance.part10 ? undefined : fileMetaInformation(instance)
    yield {
      contentType: `application/dicom; transfer-syntax=${instance.transferSyntaxUID}`,
      contentLength: instance.size + (prefix?.length ?? 0),
      contentLocation: location(instance),
      body: withPrefix(prefix, store.openInstance(instance))
    }
  }
}

async function * withPrefix (prefix: Buffer | undefined, body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  if (prefix !== undefined) yield prefix
  yield * body
}

function headerOf (store: StudyStore, instance: InstanceRecord): ParsedHeader {
  return readHeader(store.blobs.pathOf(instance.sha256))
}

/** DICOM JSON of each instance's header, one at a time; large values and pixel data as bulk data URIs. */
export async function * metadataOf (store: StudyStore, instances: InstanceRecord[], bulkBase: (i: InstanceRecord) => string): AsyncGenerator<DicomJson> {
  for (const instance of instances) {
    const parsed = headerOf(store, instance)
    const json = datasetToJson(parsed.dataset, {
      decoder: createTextDecoder(instance.specificCharacterSet),
      littleEndian: parsed.transferSyntaxUID !== TransferSyntax.ExplicitVRBigEndian,
      bulkDataUri: (t) => `${bulkBase(instance)}/bulkdata/${tagKey(t)}`
    })
    if (parsed.pixelDataOffset !== undefined) {
      // Native pixel data is a byte range of the file; encapsulated pixel data is served by frame.
      json['7FE00010'] = parsed.pixelDataLength !== undefined
        ? { vr: bitsAllocated(parsed) > 8 ? 'OW' : 'OB', BulkDataURI: `${bulkBase(instance)}/bulkdata/7FE00010` }
        : { vr: 'OB', BulkDataURI: `${bulkBase(instance)}/frames/1` }
    }
    yield json
    // Let the event loop breathe between headers: each one is read synchronously.
    await new Promise((resolve) => setImmediate(resolve))
  }
}

function bitsAllocated (parsed: ParsedHeader): number {
  const value = parsed.dataset.get(Tags.BitsAllocated)?.value
  if (value === undefined || value.length < 2) return 16
  return parsed.transferSyntaxUID === TransferSyntax.ExplicitVRBigEndian ? value.readUInt16BE(0) : value.readUInt16LE(0)
}

/** A top-level value kept out of the metadata (pixel data or another large element), as a byte range of the file. */
export function bulkDataPart (store: StudyStore, instance: InstanceRecord, tagHex: string): OutgoingPart {
  const parsed = headerOf(store, instance)
  const t = Number.parseInt(tagHex, 16) >>> 0
  let range: { offset: number, length: number } | undefined
  if (t === Tags.PixelData && parsed.pixelDataOffset !== undefined && parsed.pixelDataLength !== undefined) {
    range = { offset: parsed.pixelDataOffset, length: parsed.pixelDataLength }
  } else {
    const element = parsed.dataset.get(t)
    if (element?.offset !== undefined && element.length !== undefined) range = { offset: element.offset, length: element.length }
  }
  if (range === undefined || !/^[0-9A-F]{8}$/.test(tagHex)) throw new NotFoundError(`instance ${instance.sopInstanceUID} has no bulk data ${tagHex}`)
  return { contentType: 'application/octet-stream', contentLength: range.length, body: fileRange(store, instance, parsed, range) }
}

/**
 * Frames, each a part; frame numbers start at 1. Native pixel data as byte ranges of the file;
 * compressed pixel data decoded to native pixels (Explicit VR Little Endian, the default for
 * application/octet-stream in PS3.18), or its bitstream as stored when `asStored` (Accept's
 * transfer-syntax=*). A frame is read, and decoded, only when its part is sent.
 */
export function* frameParts (store: StudyStore, instance: InstanceRecord, frames: number[], asStored = false): Generator<OutgoingPart> {
  const parsed = headerOf(store, instance)
  if (parsed.pixelDataOffset === undefined) throw new NotFoundError(`instance ${instance.sopInstanceUID} has no pixel data`)
  for (const n of frames) {
    if (n < 1 || n > instance.frames) throw new NotFoundError(`instance ${instance.sopInstanceUID} has frames 1 to ${instance.frames}, not ${n}`)
  }
  if (parsed.pixelDataLength === undefined) {
    if (!asStored && !canDecode(instance.transferSyntaxUID)) {
      throw new TranscodeUnsupportedError(instance.sopInstanceUID, instance.transferSyntaxUID, 'its frames cannot be decoded here; ask for transfer-syntax=* to get them as stored')
    }
    const path = store.blobs.pathOf(instance.sha256)
    for (const n of frames) {
      yield asStored
        ? { contentType: `application/octet-stream; transfer-syntax=${instance.transferSyntaxUID}`, body: encapsulatedFrame(path, parsed, n, false) }
        : { contentType: `application/octet-stream; transfer-syntax=${TransferSyntax.ExplicitVRLittleEndian}`, body: encapsulatedFrame(path, parsed, n, true) }
    }
    return
  }
  // A deflated dataset's pixel data is native once inflated: its frames are explicit VR little endian.
  const frameSyntax = parsed.deflated ? TransferSyntax.ExplicitVRLittleEndian : instance.transferSyntaxUID
  for (const n of frames) {
    // Where the frame reader finds it, streamed in pieces: a native frame can be large.
    const range = nativeFrameRange(parsed, n)!
    yield { contentType: `application/octet-stream; transfer-syntax=${frameSyntax}`, contentLength: range.length, body: fileRange(store, instance, parsed, range) }
  }
}

/** Frame `n` of encapsulated pixel data: its bitstream, or decoded to native pixels. */
async function * encapsulatedFrame (path: string, parsed: ParsedHeader, n: number, decode: boolean): AsyncGenerator<Uint8Array> {
  if (decode) await loadDecoders()
  const source = await openFrames(path, { header: parsed })
  try {
    yield decode ? (await decodeFrame(source, n)).pixels : await source.frame(n)
  } finally {
    await source.close()
  }
}

/**
 * A byte range of a stored file (of its inflated dataset, for a deflated one: inflated as it streams).
 * Not hash-checked (only whole files are); fsck finds a damaged file.
 */
function fileRange (store: StudyStore, instance: InstanceRecord, parsed: ParsedHeader, range: { offset: number, length: number }): AsyncIterable<Uint8Array> {
  if (range.length === 0) return (async function * () {})()
  const path = store.blobs.pathOf(instance.sha256)
  if (parsed.deflated) return inflatedRange(path, parsed.datasetOffset, range)
  return createReadStream(path, { start: range.offset, end: range.offset + range.length - 1, highWaterMark: 256 * 1024 })
}
