// DVD/USB media layout (PS3.10, PS3.11 General Purpose CD-R/USB): <root>/DICOMDIR plus
// DICOM/PAT00001/STU00001/SER00001/IMG00001 files, and a DICOMDIR whose directory records are linked by
// byte offsets (0004,1400 / 1420, and 1200 / 1202 for the root entity).
import { join } from 'node:path'
import { writeFile } from 'node:fs/promises'
import { CHARSETS } from './charsets.ts'
import { EXPLICIT_LE, el, encodeDataset, encodeFilePreamble, type Element, type Item } from './dataset-writer.ts'
import { InvalidSpecError } from './errors.ts'
import { createPrng } from './prng.ts'
import { REPORT_TITLE, codeItem } from './reports.ts'
import { generateStudyFiles, toPublic, type InstanceDetail, type StudyDetail } from './studies.ts'
import type { GeneratedStudy, StudySpec } from './types.ts'
import { uidFrom } from './uids.ts'

export const MEDIA_STORAGE_DIRECTORY = '1.2.840.10008.1.3.10'

const NEXT = 0x00041400
const LOWER = 0x00041420

const seq = (prefix: string, n: number): string => prefix + String(n).padStart(8 - prefix.length, '0')

interface RecordNode { item: Item; children: RecordNode[] }

function record (type: string, keys: Item, children: RecordNode[] = []): RecordNode {
  return {
    item: [
      el(NEXT, 'UL', 0),
      el(0x00041410, 'US', 0xFFFF),
      el(LOWER, 'UL', 0),
      el(0x00041430, 'CS', type),
      ...keys
    ],
    children
  }
}

function instanceRecord (d: InstanceDetail, fileId: string[]): RecordNode {
  const refs: Item = [
    el(0x00041500, 'CS', fileId),
    el(0x00041510, 'UI', d.sopClassUID),
    el(0x00041511, 'UI', d.sopInstanceUID),
    el(0x00041512, 'UI', d.transferSyntaxUID),
    el(0x00200013, 'IS', String(d.instanceNumber))
  ]
  if (d.kind === 'sr') {
    return record('SR DOCUMENT', [...refs,
      el(0x00080023, 'DA', d.contentDate), el(0x00080033, 'TM', d.contentTime),
      el(0x0040A043, 'SQ', [codeItem(REPORT_TITLE)]),
      el(0x0040A491, 'CS', 'COMPLETE'), el(0x0040A493, 'CS', 'VERIFIED'),
      el(0x0040A030, 'DT', d.contentDate + d.contentTime)])
  }
  if (d.kind === 'pdf') {
    return record('ENCAP DOC', [...refs,
      el(0x00080023, 'DA', d.contentDate), el(0x00080033, 'TM', d.contentTime),
      el(0x00420010, 'ST', d.documentTitle ?? ''), el(0x00420012, 'LO', 'application/pdf')])
  }
  return record('IMAGE', [...refs, el(0x00280010, 'US', d.rows ?? 0), el(0x00280011, 'US', d.columns ?? 0)])
}

// Depth-first order, as dcmtk writes it: each record is followed by its lower-level records.
function flatten (nodes: RecordNode[], out: Item[] = []): Item[] {
  for (const n of nodes) { out.push(n.item); flatten(n.children, out) }
  return out
}

function setUL (item: Item, tag: number, value: number): void {
  const e = item.find((x) => x.tag === tag) as Element
  e.value = value
}

/** The DICOMDIR file bytes for the given patient/study/series/instance tree. */
export function encodeDicomdir (roots: RecordNode[], sopInstanceUID: string): Uint8Array {
  const preamble = encodeFilePreamble({
    sopClassUID: MEDIA_STORAGE_DIRECTORY, sopInstanceUID, transferSyntaxUID: '1.2.840.10008.1.2.1'
  })
  const records = flatten(roots)
  const dataset = (): Item => [
    el(0x00041130, 'CS', 'BEELDNET'),
    el(0x00041200, 'UL', first),
    el(0x00041202, 'UL', last),
    el(0x00041212, 'US', 0),
    el(0x00041220, 'SQ', records)
  ]
  // Pass 1 finds each record's offset from the start of the file (offset fields are fixed-size ULs, so
  // filling them in pass 2 moves nothing).
  const offsets = new Map<Item, number>()
  let first = 0
  let last = 0
  encodeDataset(dataset(), EXPLICIT_LE, { baseOffset: preamble.length, onItem: (item, at) => offsets.set(item, at) })
  const at = (n: RecordNode): number => offsets.get(n.item) as number
  const link = (nodes: RecordNode[]): void => {
    nodes.forEach((n, i) => {
      const next = nodes[i + 1]
      setUL(n.item, NEXT, next === undefined ? 0 : at(next))
      const child = n.children[0]
      setUL(n.item, LOWER, child === undefined ? 0 : at(child))
      link(n.children)
    })
  }
  link(roots)
  first = roots[0] === undefined ? 0 : at(roots[0])
  last = roots.length === 0 ? 0 : at(roots[roots.length - 1] as RecordNode)
  const body = encodeDataset(dataset(), EXPLICIT_LE)
  const out = new Uint8Array(preamble.length + body.length)
  out.set(preamble)
  out.set(body, preamble.length)
  return out
}

function studyRecords (study: StudyDetail, fileIds: Map<InstanceDetail, string[]>): RecordNode {
  const cs = CHARSETS[study.charset]
  const charsetEl: Item = cs.terms.length > 0 ? [el(0x00080005, 'CS', cs.terms)] : []
  const seriesNodes: RecordNode[] = []
  for (const uid of new Set(study.instances.map((d) => d.seriesInstanceUID))) {
    const members = study.instances.filter((d) => d.seriesInstanceUID === uid)
    const d = members[0] as InstanceDetail
    seriesNodes.push(record('SERIES', [...charsetEl,
      el(0x00080060, 'CS', d.modality),
      el(0x0008103E, 'LO', d.seriesDescription),
      el(0x0020000E, 'UI', uid),
      el(0x00200011, 'IS', String(d.seriesNumber))
    ], members.map((m) => instanceRecord(m, fileIds.get(m) as string[]))))
  }
  return record('STUDY', [...charsetEl,
    el(0x00080020, 'DA', study.studyDate),
    el(0x00080030, 'TM', study.studyTime),
    el(0x00080050, 'SH', study.accession),
    el(0x00081030, 'LO', study.description),
    el(0x0020000D, 'UI', study.studyInstanceUID),
    el(0x00200010, 'SH', study.studyID)
  ], seriesNodes)
}

/**
 * Generates the studies into a media layout under rootDir and writes rootDir/DICOMDIR. Studies of the same
 * patient (same ID and issuer) share a PATnnnnn folder and PATIENT record.
 */
export async function writeMediaLayout (rootDir: string, studies: StudySpec[]):
Promise<{ dicomdirPath: string; studies: GeneratedStudy[] }> {
  const patients: Array<{ key: string; dir: number; studies: number; node?: RecordNode }> = []
  const details: StudyDetail[] = []
  const fileIds = new Map<InstanceDetail, string[]>()
  const roots: RecordNode[] = []
  for (const spec of studies) {
    if (spec.series.some((s) => s.part10 === false)) {
      throw new InvalidSpecError('media files must be Part 10 files: part10: false is not allowed in a media layout')
    }
    const ids: Array<string[]> = []
    // Patient folder known only once the patient is resolved: generate into a path computed lazily.
    let pat: (typeof patients)[number] | undefined
    const detail = await generateStudyFiles(spec, (si, ii, kind) => {
      if (pat === undefined) throw new Error('unreachable')
      const id = ['DICOM', seq('PAT', pat.dir), seq('STU', pat.studies), seq('SER', si + 1),
        seq(kind === 'image' ? 'IMG' : 'DOC', ii + 1)]
      ids.push(id)
      return join(rootDir, ...id)
    }, undefined, (p) => {
      const key = `${p.issuer}\u0000${p.id}`
      pat = patients.find((x) => x.key === key)
      if (pat === undefined) {
        pat = { key, dir: patients.length + 1, studies: 0 }
        patients.push(pat)
      }
      pat.studies++
    })
    detail.instances.forEach((d, i) => fileIds.set(d, ids[i] as string[]))
    details.push(detail)
    const p = pat as (typeof patients)[number]
    if (p.node === undefined) {
      const cs = CHARSETS[detail.charset]
      p.node = record('PATIENT', [
        ...(cs.terms.length > 0 ? [el(0x00080005, 'CS', cs.terms)] : []),
        el(0x00100010, 'PN', detail.patient.name),
        el(0x00100020, 'LO', detail.patient.id),
        el(0x00100021, 'LO', detail.patient.issuer),
        el(0x00100030, 'DA', detail.patient.birthDate),
        el(0x00100040, 'CS', detail.patient.sex)
      ])
      roots.push(p.node)
    }
    p.node.children.push(studyRecords(detail, fileIds))
  }
  const dicomdirPath = join(rootDir, 'DICOMDIR')
  const seed = studies.reduce((s, x) => (Math.imul(s, 31) + (x.seed ?? 1)) >>> 0, 17)
  await writeFile(dicomdirPath, encodeDicomdir(roots, uidFrom(createPrng(seed))))
  return {
    dicomdirPath,
    studies: details.map(toPublic)
  }
}
