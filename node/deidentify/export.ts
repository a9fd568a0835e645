import { isBeeldnetError } from '../../protocol/errors.ts'
import type { AuditPerson, AuditSink } from '../audit/audit-log.ts'
import { auditPatient } from '../audit/events.ts'
import type { StudyEntries } from '../store/study-index.ts'
import type { InstanceRecord } from '../store/records.ts'
import { writeStudyFiles } from '../store/study-export.ts'
import { createDeidentificationMap, type DeidentificationMap } from './deidentification-map.ts'
import { deidentifyInstance, type ActionCounts, type InstanceDeidentificationRecord, type PrivateTag } from './deidentify-instance.ts'
import { describeProfile, methodCodes, type DeidentifyProfile, type MethodCode } from './options.ts'
import { PROFILE_TABLE_EDITION } from './profile-table.ts'
import type { Resolved } from './rules.ts'

/*
 * `beeldnet node export <uid> <dir> --deidentify ...`: a study written to a folder de-identified, one
 * file per instance as the plain export lays them out (S0001/I00001.dcm: no name says anything), with
 * one map for the whole study so its UIDs and references stay consistent. Every instance is checked
 * first (burned-in text, encoding): a refusal writes nothing. The trail gets one 'export' record for
 * the original study naming the profile, the refusal included.
 */

/** Where the study's instances come from: the store, or a running node's API. */
export interface StudySource {
  getStudy: (studyInstanceUID: string) => Promise<StudyEntries>
  openInstance: (instance: InstanceRecord) => AsyncIterable<Uint8Array> | Promise<AsyncIterable<Uint8Array>>
}

export interface ExportDeidentifiedOptions {
  profile: DeidentifyProfile
  /** the run's replacements (default: a fresh one with a random key); returned either way */
  map?: DeidentificationMap
  allowPrivate?: readonly PrivateTag[]
  confirmBurnedIn?: { by: string }
  /** where the export is recorded, and as whom */
  audit?: { sink: AuditSink, user: AuditPerson, details?: Record<string, string> }
  signal?: AbortSignal
}

/** The whole study's record: to keep with the original's audit record, never with the copy. */
export interface StudyDeidentificationRecord {
  profile: string
  table: string
  methodCodes: MethodCode[]
  original: { studyInstanceUID: string }
  studyInstanceUID: string
  instances: number
  counts: ActionCounts
  attributes: Record<Resolved, string[]>
  privateRemoved: number
  privateKept: string[]
  trailingBytesRemoved: number
  /** instances exported with burned-in text a person confirmed (original and new SOP Instance UID) */
  burnedInAnnotation: Array<{ original: string, sopInstanceUID: string, reason: string, confirmedBy: string }>
}

export interface DeidentifiedExport {
  files: string[]
  record: StudyDeidentificationRecord
  instances: InstanceDeidentificationRecord[]
  /** the UID map and pseudonyms: the caller keeps it (or drops it for an irreversible copy) */
  map: DeidentificationMap
}

export async function exportDeidentified (source: StudySource, studyInstanceUID: string, dir: string, options: ExportDeidentifiedOptions): Promise<DeidentifiedExport> {
  const entries = await source.getStudy(studyInstanceUID)
  const map = options.map ?? createDeidentificationMap()
  const init = {
    profile: options.profile,
    map,
    ...(options.allowPrivate === undefined ? {} : { allowPrivate: options.allowPrivate }),
    ...(options.confirmBurnedIn === undefined ? {} : { confirmBurnedIn: options.confirmBurnedIn })
  }
  const profile = describeProfile(options.profile)
  const audit = async (outcome: string, details: Record<string, string | number> = {}): Promise<void> => {
    if (options.audit === undefined) return
    await options.audit.sink.record({
      event: 'export',
      outcome,
      patient: auditPatient(entries.study.patient),
      user: options.audit.user,
      studyInstanceUID,
      details: { ...options.audit.details, deidentification: `PS3.15 Annex E ${profile}`, table: PROFILE_TABLE_EDITION, ...details }
    })
  }
  const instances: InstanceDeidentificationRecord[] = []
  let files: string[]
  try {
    // Every header first: nothing is written when one instance would be refused.
    for (const instance of entries.instances) {
      options.signal?.throwIfAborted()
      await (await deidentifyInstance(await source.openInstance(instance), init)).close()
    }
    files = await writeStudyFiles(entries, dir, async (instance) => {
      const result = await deidentifyInstance(await source.openInstance(instance), init)
      instances.push(result.record)
      return result.bytes
    }, options.signal)
  } catch (err) {
    await audit(`refused: ${isBeeldnetError(err) ? err.code : 'failed'}`)
    throw err
  }
  const record = summarise(options.profile, studyInstanceUID, map.uid(studyInstanceUID), instances)
  await audit(`de-identified: ${files.length} instance(s)`, { deidentifiedStudyInstanceUID: record.studyInstanceUID, to: dir })
  return { files, record, instances, map }
}

function summarise (profile: DeidentifyProfile, original: string, studyInstanceUID: string, instances: InstanceDeidentificationRecord[]): StudyDeidentificationRecord {
  const counts: ActionCounts = { D: 0, Z: 0, X: 0, K: 0, C: 0, U: 0 }
  const attributes = { D: new Set<string>(), Z: new Set<string>(), X: new Set<string>(), K: new Set<string>(), C: new Set<string>(), U: new Set<string>() }
  const privateKept = new Set<string>()
  for (const i of instances) {
    for (const action of Object.keys(counts) as Resolved[]) {
      counts[action] += i.counts[action]
      for (const t of i.attributes[action]) attributes[action].add(t)
    }
    for (const t of i.privateKept) privateKept.add(t)
  }
  return {
    profile: describeProfile(profile),
    table: PROFILE_TABLE_EDITION,
    methodCodes: methodCodes(profile),
    original: { studyInstanceUID: original },
    studyInstanceUID,
    instances: instances.length,
    counts,
    attributes: Object.fromEntries(Object.entries(attributes).map(([a, tags]) => [a, [...tags].sort()])) as Record<Resolved, string[]>,
    privateRemoved: instances.reduce((n, i) => n + i.privateRemoved, 0),
    privateKept: [...privateKept].sort(),
    trailingBytesRemoved: instances.reduce((n, i) => n + i.trailingBytesRemoved, 0),
    burnedInAnnotation: instances.flatMap((i) => i.burnedInAnnotation === undefined
      ? []
      : [{ original: i.original.sopInstanceUID, sopInstanceUID: i.sopInstanceUID, reason: i.burnedInAnnotation.reason, confirmedBy: i.burnedInAnnotation.confirmedBy }])
  }
}
