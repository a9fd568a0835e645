import { cp, readFile } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import { describe, expect, it } from 'vitest'
import { samplePatients, writeMediaLayout, type StudySpec } from '../../../simulations/generator/index.ts'
import { dcmdump, dcmtk, listFiles, readWithDcmjs, useTempDirs } from './helpers.ts'

const tempDir = useTempDirs()

interface DirRecord { offset: number; type: string; next: number; lower: number; fileId?: string; sop?: string }

/** Directory records as dcmdump shows them (it prints each record's file offset). */
function parseRecords (dump: string): DirRecord[] {
  const records: DirRecord[] = []
  for (const block of dump.split(/\n\s*\(fffe,e000\) na "Directory Record" /).slice(1)) {
    const num = (tag: string): number => Number(new RegExp(`\\(0004,${tag}\\) up (\\d+)`).exec(block)?.[1])
    records.push({
      type: /^(.*?) #=/.exec(block)?.[1] ?? '',
      offset: Number(/offset=\$(\d+)/.exec(block)?.[1]),
      next: num('1400'),
      lower: num('1420'),
      fileId: /\(0004,1500\) CS \[([^\]]+)\]/.exec(block)?.[1],
      sop: /\(0004,1511\) UI \[([^\]]+)\]/.exec(block)?.[1]
    })
  }
  return records
}

const STUDIES: StudySpec[] = [
  { seed: 1, patient: samplePatients()[1], series: [{ modality: 'CT', instances: 3, rows: 32, columns: 32 }], reports: { sr: true, pdf: true } },
  { seed: 2, patient: samplePatients()[1], series: [{ modality: 'MR', instances: 2, rows: 32, columns: 32, transferSyntax: 'rle' }] },
  { seed: 3, patient: samplePatients()[4], series: [{ modality: 'US', instances: 1, rows: 32, columns: 32 }, { modality: 'CR', instances: 1, rows: 32, columns: 32 }] }
]

describe('writeMediaLayout', () => {
  it('writes a DICOMDIR that lists every file, with resolvable ReferencedFileIDs and linked offsets', async () => {
    const root = await tempDir()
    const { dicomdirPath, studies } = await writeMediaLayout(root, STUDIES)
    expect(dicomdirPath).toBe(join(root, 'DICOMDIR'))
    const files = (await listFiles(root)).map((f) => relative(root, f).split(sep)).filter((p) => p[0] !== 'DICOMDIR')
    const instances = studies.flatMap((s) => s.instances)
    expect(files).toHaveLength(instances.length)
    for (const parts of files) {
      expect(parts).toHaveLength(5)
      for (const c of parts) expect(c).toMatch(/^[A-Z0-9_]{1,8}$/)
    }
    // Two studies of one patient share the PAT folder.
    expect(new Set(files.map((p) => p[1])).size).toBe(2)

    const dump = await dcmdump(dicomdirPath)
    expect(dump).toContain('=MediaStorageDirectoryStorage')
    const records = parseRecords(dump)
    const leaves = records.filter((r) => r.fileId !== undefined)
    expect(leaves.map((r) => r.fileId!.split('\\').join('/')).sort()).toEqual(files.map((p) => p.join('/')).sort())
    expect(leaves.map((r) => r.sop).sort()).toEqual(instances.map((i) => i.sopInstanceUID).sort())
    expect(records.filter((r) => r.type === 'SR DOCUMENT')).toHaveLength(1)
    expect(records.filter((r) => r.type === 'ENCAP DOC')).toHaveLength(1)

    // Walking the offsets from (0004,1200) reaches every record exactly once, in the right hierarchy.
    const byOffset = new Map(records.map((r) => [r.offset, r]))
    const first = Number(/\(0004,1200\) up (\d+)/.exec(dump)?.[1])
    const last = Number(/\(0004,1202\) up (\d+)/.exec(dump)?.[1])
    const levels = ['PATIENT', 'STUDY', 'SERIES']
    const seen: DirRecord[] = []
    const walk = (offset: number, depth: number): number => {
      let prev = 0
      for (let at = offset; at !== 0;) {
        const r = byOffset.get(at)
        expect(r, `record at ${at}`).toBeDefined()
        if (depth < 3) expect(r!.type).toBe(levels[depth])
        seen.push(r!)
        if (r!.lower !== 0) walk(r!.lower, depth + 1)
        prev = at
        at = r!.next
      }
      return prev
    }
    expect(walk(first, 0)).toBe(last)
    expect(seen).toHaveLength(records.length)

    // dcmjs reads it too (no ISO 2022 charset in these records).
    const ds = readWithDcmjs(await readFile(dicomdirPath))
    expect((ds.DirectoryRecordSequence as unknown[]).length).toBe(records.length)
  })

  it('passes dcmtk dcmmkdir: appending finds a record for every file already (-Nxc: RLE is not in the uncompressed STD-GEN-CD profile)', async () => {
    const root = await tempDir()
    await writeMediaLayout(root, STUDIES)
    const copy = await tempDir()
    await cp(root, copy, { recursive: true })
    const { stderr } = await dcmtk('dcmmkdir', ['+A', '-Nxc', '+id', copy, '+D', join(copy, 'DICOMDIR'), '+r', 'DICOM'])
    expect(stderr).not.toMatch(/^E: /m)
    const files = (await listFiles(root)).length - 1
    expect(stderr.match(/directory record for this SOP instance already exists/g)).toHaveLength(files)
  })

  it('handles ISO 2022 (Japanese) records and refuses bare datasets', async () => {
    const root = await tempDir()
    const { dicomdirPath, studies } = await writeMediaLayout(root, [
      { seed: 4, patient: samplePatients()[5], series: [{ modality: 'CT', instances: 1, rows: 16, columns: 16 }] }
    ])
    const bytes = await readFile(dicomdirPath)
    expect(bytes.includes(Buffer.from('1b24423b3345441b2842', 'hex'))).toBe(true) // 山田 in JIS X 0208
    expect(await dcmdump(dicomdirPath)).toContain('[\\ISO 2022 IR 87]')
    expect(studies[0]!.patient.name).toBe('Yamada^Tarou=山田^太郎=やまだ^たろう')
    await expect(writeMediaLayout(await tempDir(), [{ series: [{ modality: 'CT', instances: 1, part10: false }] }]))
      .rejects.toMatchObject({ code: 'BEELDNET_ERR_INVALID_GENERATOR_SPEC' })
  })
})
