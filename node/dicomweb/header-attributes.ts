import { setImmediate as breathe } from 'node:timers/promises'
import { createTextDecoder } from '../dicom/charset.ts'
import { readHeader } from '../dicom/dataset-reader.ts'
import { TransferSyntax } from '../dicom/tags.ts'
import type { InstanceRecord } from '../store/records.ts'
import type { StudyStore } from '../store/study-store.ts'
import { datasetToJson, type DicomJson } from './dicom-json.ts'

/*
 * Attributes a search returns that the index does not keep (PatientAge, ImageType, ProtocolName...):
 * read from the header of one stored instance (the header only: the reader stops before pixel
 * data and keeps no value over 64 KiB) and kept in a small cache.
 *
 * A cache rather than more index: the set of attributes a PACS may ask for is open-ended, keeping
 * every header in the index would make each of a 2,000-image CT's index entries kilobytes larger
 * for attributes rarely asked, and one header costs about a millisecond to read. The cache is keyed
 * by the instance's content hash, so an entry only ever describes the exact bytes it was read from,
 * and it is bounded by bytes (least recently used go first). A hit is served only while the index
 * still holds that hash: the attributes of a study deleted (or replaced) since are dropped, not served.
 */

/** The value a too-large element gets instead of its bytes: it cannot be returned in a search result. */
export const TOO_LARGE = 'beeldnet:too-large'

export interface HeaderAttributesInit {
  /** most bytes (as JSON text) the cache keeps, all entries together (default 16 MiB) */
  maxBytes?: number
}

export class HeaderAttributes {
  private readonly store: StudyStore
  private readonly maxBytes: number
  private readonly entries = new Map<string, { json: DicomJson, bytes: number }>()
  private bytes = 0

  constructor (components: { store: StudyStore }, init: HeaderAttributesInit = {}) {
    this.store = components.store
    this.maxBytes = init.maxBytes ?? 16 * 1024 * 1024
  }

  /** The DICOM JSON of an instance's header, or undefined when the store no longer holds it or it cannot be read. */
  async of (instance: InstanceRecord): Promise<DicomJson | undefined> {
    const cached = this.entries.get(instance.sha256)
    if (cached !== undefined) {
      this.entries.delete(instance.sha256)
      if (await this.store.index.getBlobOwner(instance.sha256) === undefined) {
        this.bytes -= cached.bytes
        return undefined
      }
      this.entries.set(instance.sha256, cached)
      return cached.json
    }
    let json: DicomJson
    try {
      json = this.read(instance)
    } catch {
      return undefined
    }
    this.keep(instance.sha256, json)
    // Each header is read synchronously: let the event loop breathe between them.
    await breathe()
    return json
  }

  /** Entries and bytes held, for tests and metrics. */
  get usage (): { entries: number, bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes }
  }

  private read (instance: InstanceRecord): DicomJson {
    const parsed = readHeader(this.store.blobs.pathOf(instance.sha256))
    return datasetToJson(parsed.dataset, {
      decoder: createTextDecoder(instance.specificCharacterSet),
      littleEndian: parsed.transferSyntaxUID !== TransferSyntax.ExplicitVRBigEndian,
      bulkDataUri: () => TOO_LARGE
    })
  }

  private keep (sha256: string, json: DicomJson): void {
    const bytes = JSON.stringify(json).length
    // One huge header must not push out everything else.
    if (bytes > this.maxBytes / 8) return
    this.entries.set(sha256, { json, bytes })
    this.bytes += bytes
    for (const [key, entry] of this.entries) {
      if (this.bytes <= this.maxBytes) break
      this.entries.delete(key)
      this.bytes -= entry.bytes
    }
  }
}

const shared = new WeakMap<StudyStore, HeaderAttributes>()

/** One cache per store, shared by QIDO-RS and C-FIND. */
export function headerAttributesOf (store: StudyStore): HeaderAttributes {
  let cache = shared.get(store)
  if (cache === undefined) {
    cache = new HeaderAttributes({ store })
    shared.set(store, cache)
  }
  return cache
}

/*
 * The level each attribute belongs to (PS3.3's information entities, as the Study Root query model
 * groups them): patient and study attributes are study level, series and equipment attributes
 * series level, everything else instance level. A search returns an attribute only at its own
 * level and below (PS3.18 10.6.3.3).
 */
const STUDY_TAGS = new Set([
  '00080020', '00080030', '00080050', '00080051', '00080061', '00080062', '00080090', '00080096',
  '00081030', '00081032', '00081048', '00081049', '00081060', '00081062', '00081080', '00081084', '00081110',
  '0020000D', '00200010', '00201070', '00201200', '00201202', '00201204', '00201206', '00201208',
  '00321032', '00321033', '00321060', '00321064', '00380010', '00380014', '00380060', '00380062', '00380064', '00380500',
  '00401012', '00401001', '00402400', '40080042'
])
const SERIES_TAGS = new Set([
  '00080021', '00080031', '00080060', '00080070', '00080080', '00080081', '00081010', '00081040', '00081050', '00081052',
  '00081070', '00081072', '00081090', '00081111', '00081250', '0008103E', '0008103F', '00102210',
  '00180015', '00181000', '00181020', '00181030', '00185100', '0020000E', '00200011', '00200052', '00200060', '00201040', '00201209',
  '00280108', '00280109', '00400244', '00400245', '00400250', '00400251', '00400253', '00400254', '00400260', '00400275', '00400280'
])

export function levelOfTag (tag: string): 'study' | 'series' | 'instance' {
  if (SERIES_TAGS.has(tag)) return 'series'
  if (STUDY_TAGS.has(tag)) return 'study'
  const group = tag.slice(0, 4)
  // Group 0010 is the patient (and the Patient Study module: age, size, weight...).
  if (group === '0010') return 'study'
  // Clinical trial subject and time point are study level, the clinical trial series series level.
  if (group === '0012') return Number.parseInt(tag.slice(4), 16) < 0x70 ? 'study' : 'series'
  return 'instance'
}
