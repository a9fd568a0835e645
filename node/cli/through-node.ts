import { createReadStream } from 'node:fs'
import { open } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { checkOpening, OPENING_BYTES } from '../dicom/dataset-reader.ts'
import type { Output } from '../../protocol/cli/output.ts'
import { collectMedia, type ImportFileOutcome, type ImportSummary } from '../dicom/file-import.ts'
import type { InstanceRecord, SeriesRecord, StudyRecord } from '../store/records.ts'
import type { StudyEntries } from '../store/study-index.ts'
import type { DiskUsage } from '../store/study-store.ts'
import { writeStudyFiles } from '../store/study-export.ts'
import { writePdiFolder, type PdiFolderResult } from '../media/pdi-folder.ts'
import type { MediumRootInit } from '../media/pdi-medium.ts'
import { NodeUnreachableError } from './errors.ts'
import type { NodeApi } from './node-api-client.ts'

/*
 * The store's verbs while `beeldnet node start` runs (it holds the store): the same work and the
 * same output, through the running node's API. An import walks the paths here, as a stopped node's
 * import does, and sends each file's bytes as a stream; the node stages and reports them.
 */

export interface StudiesQuery { patientId?: string, issuer?: string, bsn?: string, dateFrom?: string, dateTo?: string, modality?: string, accessionNumber?: string }

export async function importThroughNode (api: NodeApi, paths: string[], out: Output): Promise<ImportSummary> {
  const media = await collectMedia(paths, (message) => { out.info(`warning: ${message}`) })
  const progress = out.progress('importing')
  progress.start(media.files.length)
  const { id } = await api.post<{ id: string }>('/api/imports', {})
  let summary: ImportSummary
  try {
    for (const [n, path] of media.files.entries()) {
      const { outcome } = await api.putStream<{ outcome: ImportFileOutcome }>(`/api/imports/${id}/files?path=${encodeURIComponent(path)}`, 'application/octet-stream', await uploadOf(path))
      progress.update(n + 1, outcome.status === 'rejected' ? `${path}: ${outcome.code ?? ''}` : undefined)
    }
    summary = await api.post<ImportSummary>(`/api/imports/${id}/commit`)
  } catch (err) {
    progress.stop()
    // What was staged is dropped now rather than when the node finds the import idle.
    await api.delete(`/api/imports/${id}`).catch(() => {})
    throw err
  }
  progress.stop()
  summary.missing.push(...media.missing)
  summary.warnings.push(...media.warnings)
  return summary
}

export async function studiesThroughNode (api: NodeApi, query: StudiesQuery, out: Output): Promise<StudyRecord[]> {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, value)
  const { studies, truncated } = await api.get<{ studies: StudyRecord[], truncated: boolean }>(`/api/studies${params.size === 0 ? '' : `?${params.toString()}`}`)
  if (truncated) out.info(`the node lists at most ${studies.length} studies at a time: narrow the search to see the rest`)
  return studies
}

export async function studyThroughNode (api: NodeApi, uid: string): Promise<StudyEntries> {
  const { series, instances, ...study } = await api.get<StudyRecord & { series: SeriesRecord[], instances: InstanceRecord[] }>(`/api/studies/${encodeURIComponent(uid)}`)
  return { study, series, instances }
}

/** The store's counts from /health (which answers 503 while the node is degraded, with the counts all the same). */
export async function diskUsageThroughNode (api: NodeApi): Promise<DiskUsage> {
  let response: Response
  try {
    response = await fetch(`${api.url}/health`)
  } catch (err) {
    throw new NodeUnreachableError(`no node answers at ${api.url}: ${(err as Error).message}`, err)
  }
  return (await response.json() as { store: DiskUsage }).store
}

/** The study's files as a stopped node's export writes them: S0001/I00001.dcm ..., byte-identical, each complete or absent. */
export async function exportThroughNode (api: NodeApi, uid: string, dir: string): Promise<string[]> {
  return writeStudyFiles(await studyThroughNode(api, uid), dir,
    async (instance) => api.getStream(`/api/studies/${encodeURIComponent(uid)}/instances/${encodeURIComponent(instance.sopInstanceUID)}/file`))
}

/** The studies as a PDI medium, as a stopped node's `export --pdi` writes it; each file's bytes come from the node's hash-checked file route. */
export async function pdiThroughNode (api: NodeApi, uids: string[], dir: string, init: MediumRootInit): Promise<PdiFolderResult> {
  const studies: StudyEntries[] = []
  for (const uid of uids) studies.push(await studyThroughNode(api, uid))
  return writePdiFolder(studies, dir,
    async (instance) => api.getStream(`/api/studies/${encodeURIComponent(instance.studyInstanceUID)}/instances/${encodeURIComponent(instance.sopInstanceUID)}/file`), init)
}

/**
 * What is sent of a file: all of it, or only its opening when that already says it is not DICOM (a
 * video on a patient's USB stick): the node refuses it on those bytes with the same code and report.
 */
export async function uploadOf (path: string): Promise<Readable> {
  const opening = await readOpening(path)
  try {
    checkOpening(opening)
  } catch {
    return Readable.from([opening])
  }
  return createReadStream(path)
}

async function readOpening (path: string): Promise<Buffer> {
  const file = await open(path, 'r')
  try {
    const buffer = Buffer.alloc(OPENING_BYTES)
    const { bytesRead } = await file.read(buffer, 0, OPENING_BYTES, 0)
    return buffer.subarray(0, bytesRead)
  } finally {
    await file.close()
  }
}
