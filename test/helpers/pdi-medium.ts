import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { importFiles, type ImportSummary } from '../../node/dicom/file-import.ts'
import { StudyStore } from '../../node/store/study-store.ts'
import { dcmtk } from './dcmtk.ts'

/*
 * Reading an IHE PDI medium back as a receiving hospital would: dcmtk's view of its DICOMDIR (the
 * record tree, followed by its offsets), dcmtk's dcmmkdir updating it (it must find every record
 * already there), and the node's own DICOMDIR import into a fresh store.
 */

export interface MediumRecord { type: string, fileId?: string, children: MediumRecord[] }

export interface DumpedDicomdir {
  /** the tree as the offsets link it: root's first record, each next sibling, each lower level */
  tree: MediumRecord[]
  /** how many Directory Records the sequence holds (each must be in the tree once) */
  records: number
  /** dcmdump's text (+U8: names shown as UTF-8) */
  text: string
}

/** The DICOMDIR by `dcmdump`, its records linked by the offsets it gives. Throws when an offset points at no record or a record is linked twice. */
export async function dumpDicomdir (path: string): Promise<DumpedDicomdir> {
  const dumped = await dcmtk('dcmdump', ['+U8', path])
  if (dumped.code !== 0) throw new Error(`dcmdump failed: ${dumped.stderr}`)
  const text = dumped.stdout
  const root = (t: string): number => Number(new RegExp(`^\\(0004,${t}\\) up (\\d+)`, 'm').exec(text)?.[1])
  const byOffset = new Map<number, { type: string, fileId?: string, next: number, lower: number }>()
  let current: { type: string, fileId?: string, next: number, lower: number } | undefined
  for (const line of text.split('\n')) {
    const item = /"Directory Record" (.+?) #=/.exec(line)
    if (item !== null) { current = { type: item[1]!, next: 0, lower: 0 }; continue }
    const at = /# {2}offset=\$(\d+)(?: {2}refFileID="([^"]*)")?/.exec(line)
    if (at !== null && current !== undefined) {
      byOffset.set(Number(at[1]), current)
      if (at[2] !== undefined) current.fileId = at[2]
      continue
    }
    const link = /^ {4}\(0004,(1400|1420)\) up (\d+)/.exec(line)
    if (link !== null && current !== undefined) current[link[1] === '1400' ? 'next' : 'lower'] = Number(link[2])
  }
  const seen = new Set<number>()
  const chain = (offset: number): MediumRecord[] => {
    const out: MediumRecord[] = []
    for (let at = offset; at !== 0;) {
      const record = byOffset.get(at)
      if (record === undefined) throw new Error(`an offset points at no record: ${at}`)
      if (seen.has(at)) throw new Error(`a record is linked twice: ${at}`)
      seen.add(at)
      out.push({ type: record.type, ...(record.fileId === undefined ? {} : { fileId: record.fileId }), children: chain(record.lower) })
      at = record.next
    }
    return out
  }
  const tree = chain(root('1200'))
  const last = byOffset.get(root('1202'))
  if (tree.length > 0 && last?.next !== 0) throw new Error('the last root record is not the last of the root chain')
  return { tree, records: byOffset.size, text }
}

/** Leaves of the tree as 'PATIENT/STUDY/SERIES/TYPE fileId'. */
export function leaves (tree: MediumRecord[], path: string[] = []): string[] {
  return tree.flatMap((r) => r.children.length === 0 && r.fileId !== undefined
    ? [`${[...path, r.type].join('/')} ${r.fileId}`]
    : leaves(r.children, [...path, r.type]))
}

/**
 * dcmmkdir updating a copy of the medium's DICOMDIR with the medium's own files: it reads the
 * DICOMDIR by its offsets and matches every file to its record, so it adds nothing and says nothing
 * when the DICOMDIR is right. Non-standard transfer syntaxes for STD-GEN-CD are let through (-Nxc):
 * files are copied as stored. Returns dcmmkdir's complaints and the records before and after.
 */
export async function dcmmkdirUpdate (medium: string): Promise<{ complaints: string[], before: number, after: number }> {
  const copy = await mkdtemp(join(tmpdir(), 'pdi-dcmmkdir-'))
  try {
    await cp(medium, copy, { recursive: true })
    const before = (await dumpDicomdir(join(copy, 'DICOMDIR'))).records
    const run = await dcmtk('dcmmkdir', ['+U', '-nb', '-Nxc', '+id', copy, '+D', join(copy, 'DICOMDIR'), '+r', 'DICOM'])
    const complaints = `${run.stdout}\n${run.stderr}`.split('\n').filter((l) => /^[EFW]: /.test(l) && !/LittleEndianExplicit expected/.test(l))
    if (run.code !== 0) complaints.push(`exit status ${run.code}`)
    return { complaints, before, after: (await dumpDicomdir(join(copy, 'DICOMDIR'))).records }
  } finally {
    await rm(copy, { recursive: true, force: true })
  }
}

/** The node's own import of the medium's folder into a fresh store: what it stored and each instance's SHA-256 there. */
export async function importMedium (medium: string): Promise<{ summary: ImportSummary, sha256: Map<string, string> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pdi-import-'))
  const store = new StudyStore({ dir })
  await store.start()
  try {
    const summary = await importFiles([medium], { store })
    const sha256 = new Map<string, string>()
    for (const { studyInstanceUID } of summary.studies) {
      for (const i of (await store.getStudy(studyInstanceUID)).instances) sha256.set(i.sopInstanceUID, i.sha256)
    }
    return { summary, sha256 }
  } finally {
    await store.stop()
    await rm(dir, { recursive: true, force: true })
  }
}
