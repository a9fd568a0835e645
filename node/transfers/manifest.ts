import { newTransferId } from '../../protocol/exchange/common.ts'
import { reportsFirst, signManifest, type Manifest, type ManifestInstance, type ManifestStudy, type SignedManifest } from '../../protocol/exchange/manifest.ts'
import type { NodeSigner } from '../../protocol/exchange/node-signature.ts'
import { isReportSopClass } from '../dicom/tags.ts'
import type { InstanceRecord, SeriesRecord, StudyRecord } from '../store/records.ts'
import type { StudyStore } from '../store/study-store.ts'

/*
 * The offer for one stored study: every instance as the store holds it (size and SHA-256 of the
 * file's bytes), reports first, then images by series and instance number, and the study block
 * the receiving hospital shows.
 */

export interface BuildManifestComponents {
  store: Pick<StudyStore, 'getStudy'>
}

export interface BuildManifestInit {
  /** the sending institution and this node's peer id */
  sender: { ura: string, peerId: string }
  destination: { ura: string, department: string }
  /** why the study is sent */
  reason: string
  /** to the receiving department (default '') */
  note?: string
  /** the pull request this push answers, if any (default none) */
  requestId?: string
  /** default: 128 random bits */
  transferId?: string
  /** default: now */
  created?: Date
}

/** Throws BEELDNET_ERR_STUDY_NOT_FOUND when the store has no such study. */
export async function buildManifest (components: BuildManifestComponents, studyInstanceUID: string, init: BuildManifestInit, { signal }: { signal?: AbortSignal } = {}): Promise<Manifest> {
  const entries = await components.store.getStudy(studyInstanceUID)
  signal?.throwIfAborted()
  const { study } = entries
  const seriesNumber = new Map(entries.series.map((s: SeriesRecord) => [s.seriesInstanceUID, s.number]))
  const ordered = [...entries.instances].sort((a, b) => compareInstances(a, b, seriesNumber))
  const instances: ManifestInstance[] = reportsFirst(ordered.map((i) => ({
    sopClassUID: i.sopClassUID,
    sopInstanceUID: i.sopInstanceUID,
    seriesInstanceUID: i.seriesInstanceUID,
    size: i.size,
    sha256: i.sha256,
    report: isReportSopClass(i.sopClassUID)
  })))
  return {
    type: 'beeldnet/push-manifest',
    transferId: init.transferId ?? newTransferId(),
    created: (init.created ?? new Date()).toISOString(),
    sender: { ura: init.sender.ura, peerId: init.sender.peerId },
    destination: { ura: init.destination.ura, department: init.destination.department },
    note: init.note ?? '',
    reason: init.reason,
    ...(init.requestId === undefined ? {} : { requestId: init.requestId }),
    study: manifestStudy(study),
    instances
  }
}

/** Builds the manifest and signs it with this node's key; schema problems throw BEELDNET_ERR_SCHEMA. */
export async function buildSignedManifest (components: BuildManifestComponents & { signer: NodeSigner }, studyInstanceUID: string, init: BuildManifestInit, options: { signal?: AbortSignal } = {}): Promise<SignedManifest> {
  return signManifest(await buildManifest(components, studyInstanceUID, init, options), components.signer)
}

function clip (value: string, max: number): string {
  return value.length <= max ? value : value.slice(0, max)
}

function compareInstances (a: InstanceRecord, b: InstanceRecord, seriesNumber: Map<string, number | undefined>): number {
  const sa = seriesNumber.get(a.seriesInstanceUID) ?? Number.MAX_SAFE_INTEGER
  const sb = seriesNumber.get(b.seriesInstanceUID) ?? Number.MAX_SAFE_INTEGER
  if (sa !== sb) return sa - sb
  if (a.seriesInstanceUID !== b.seriesInstanceUID) return a.seriesInstanceUID < b.seriesInstanceUID ? -1 : 1
  const ia = a.number ?? Number.MAX_SAFE_INTEGER
  const ib = b.number ?? Number.MAX_SAFE_INTEGER
  if (ia !== ib) return ia - ib
  return a.sopInstanceUID < b.sopInstanceUID ? -1 : a.sopInstanceUID > b.sopInstanceUID ? 1 : 0
}

/** The study block of a manifest (and of a query answer): what the receiving hospital shows and files. */
export function manifestStudy (study: StudyRecord): ManifestStudy {
  const p = study.patient
  return {
    studyInstanceUID: study.studyInstanceUID,
    // Header text is clipped to the manifest's bounds; a DICOM file within its own VR limits always fits.
    patient: {
      name: clip(p.name, 1024),
      id: clip(p.id, 256),
      issuer: clip(p.issuer, 256),
      ...(p.bsn === undefined ? {} : { bsn: p.bsn }),
      birthDate: clip(p.birthDate, 32),
      sex: clip(p.sex, 16)
    },
    date: clip(study.date, 32),
    time: clip(study.time, 32),
    accessionNumber: clip(study.accessionNumber, 256),
    description: clip(study.description, 1024),
    referringPhysician: clip(study.referringPhysician, 1024),
    studyId: clip(study.studyId, 256),
    modalities: study.modalities.slice(0, 64).map((m) => clip(m, 16))
  }
}
