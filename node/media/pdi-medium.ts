import { setImmediate as yieldToLoop } from 'node:timers/promises'
import type { ParsedHeader } from '../dicom/dataset-reader.ts'
import { fileMetaInformation } from '../dicom/file-meta.ts'
import { newUid } from '../reports/encapsulated-pdf.ts'
import type { InstanceRecord } from '../store/records.ts'
import { instanceRecord, patientRecord, seriesRecord, studyRecord } from './directory-records.ts'
import { encodeDicomdir, type DirectoryRecord } from './dicomdir-writer.ts'
import type { MediumInstance, MediumPlan } from './pdi-layout.ts'
import { indexHtml, readmeText, type MediumTextsInit } from './pdi-texts.ts'

/*
 * The files at the root of a PDI medium, made from the plan and each instance's header: the
 * DICOMDIR, README.TXT and INDEX.HTM. The folder export and the ZIP both build them here. Only the
 * records' keys are kept, never a header: a study of thousands of instances costs a few hundred
 * bytes per instance.
 */

export const DICOMDIR_NAME = 'DICOMDIR'
export const README_NAME = 'README.TXT'
export const INDEX_NAME = 'INDEX.HTM'

/** Header values above this are not needed for any record key (a PDF's bytes, an SR's content). */
export const RECORD_VALUE_BYTES = 4096

export interface MediumRootFiles {
  dicomdir: Buffer
  readme: Buffer
  index: Buffer
}

export interface MediumRootInit extends MediumTextsInit {
  /** File-set ID (default 'BEELDNET') */
  fileSetId?: string
  signal?: AbortSignal
}

/**
 * What goes before an instance's stored bytes on the medium: nothing for a Part 10 file; for a bare
 * dataset (as some modalities and DIMSE send), the preamble and File Meta a medium's file must have.
 */
export function mediumFilePrefix (instance: InstanceRecord): Buffer | undefined {
  return instance.part10 ? undefined : fileMetaInformation(instance)
}

/** The size of an instance's file on the medium. */
export function mediumFileSize (instance: InstanceRecord): number {
  return instance.size + (mediumFilePrefix(instance)?.length ?? 0)
}

/** Builds the root files; `headerOf` reads one instance's header (from the store, or from the copy just written). */
export async function mediumRootFiles (plan: MediumPlan, headerOf: (m: MediumInstance) => ParsedHeader, init: MediumRootInit): Promise<MediumRootFiles> {
  const roots: DirectoryRecord[] = []
  let read = 0
  for (const { studies } of plan.patients) {
    let first: ParsedHeader | undefined
    const studyRecords: DirectoryRecord[] = []
    for (const [si, { series }] of studies.entries()) {
      let firstOfStudy: ParsedHeader | undefined
      const seriesRecords: DirectoryRecord[] = []
      for (const [ri, { instances }] of series.entries()) {
        let firstOfSeries: ParsedHeader | undefined
        const leaves: DirectoryRecord[] = []
        for (const [ii, m] of instances.entries()) {
          // readHeader is synchronous: let other requests in now and then, and stop when asked to.
          if (++read % 32 === 0) await yieldToLoop()
          init.signal?.throwIfAborted()
          const header = headerOf(m)
          firstOfSeries ??= header
          leaves.push(instanceRecord(header, m.instance, m.fileId, ii + 1))
        }
        seriesRecords.push(seriesRecord(firstOfSeries!, ri + 1, leaves))
        firstOfStudy ??= firstOfSeries
      }
      if (firstOfStudy === undefined) continue
      studyRecords.push(studyRecord(firstOfStudy, si + 1, seriesRecords))
      first ??= firstOfStudy
    }
    if (first !== undefined) roots.push(patientRecord(first, studyRecords))
  }
  return {
    dicomdir: encodeDicomdir(roots, { fileSetId: init.fileSetId ?? 'BEELDNET', sopInstanceUID: newUid() }),
    readme: Buffer.from(readmeText(plan, init), 'utf8'),
    index: Buffer.from(indexHtml(plan, init), 'utf8')
  }
}
