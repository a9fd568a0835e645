import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { importFiles } from '../../../node/dicom/file-import.ts'
import { writePdiFolder } from '../../../node/media/pdi-folder.ts'
import { fileIdComponent, isFileIdComponent } from '../../../node/media/pdi-layout.ts'
import { streamPdiZip } from '../../../node/media/pdi-zip.ts'
import type { InstanceRecord } from '../../../node/store/records.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { generateStudy, type GeneratedStudy, type StudySpec } from '../../../simulations/generator/index.ts'
import { dcmtk } from '../../helpers/dcmtk.ts'
import { dcmmkdirUpdate, dumpDicomdir, importMedium, leaves } from '../../helpers/pdi-medium.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

/*
 * IHE PDI export of stored studies into a real store's files: a folder and a streamed ZIP, each
 * read back by dcmtk (dcmdump's records by their offsets, dcmmkdir finding every record already
 * there) and by the node's own DICOMDIR import into a fresh store (every instance byte-identical).
 */

const tempDir = useTempDirs()
let root: string
let store: StudyStore
let ct: GeneratedStudy
let prior: GeneratedStudy

const patient = { id: 'PDI-0001', issuer: 'BEELDNET', name: 'Müller^Jörg', charset: 'latin1' as const }
const ctSpec: StudySpec = {
  seed: 301,
  patient,
  series: [
    { modality: 'CT', instances: 3, rows: 16, columns: 16 },
    { modality: 'MR', instances: 2, rows: 16, columns: 16, transferSyntax: 'implicit-le' }
  ],
  reports: { sr: true, pdf: true }
}

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

async function filesUnder (dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...await filesUnder(join(dir, e.name), `${prefix}${e.name}/`))
    else out.push(`${prefix}${e.name}`)
  }
  return out.sort()
}

/** What every exported medium of the CT study must be, whichever way it was made. */
async function expectCtMedium (medium: string): Promise<void> {
  const names = await filesUnder(medium)
  expect(names.filter((n) => !n.startsWith('DICOM/'))).toEqual(['DICOMDIR', 'INDEX.HTM', 'README.TXT'])
  const dicomFiles = names.filter((n) => n.startsWith('DICOM/'))
  expect(dicomFiles).toHaveLength(7)
  for (const n of dicomFiles) expect(n.split('/').every(isFileIdComponent), n).toBe(true)

  const dumped = await dumpDicomdir(join(medium, 'DICOMDIR'))
  expect(dumped.records).toBe(1 + 1 + 4 + 7)
  expect(dumped.tree.map((r) => r.type)).toEqual(['PATIENT'])
  expect(leaves(dumped.tree)).toEqual([
    'PATIENT/STUDY/SERIES/IMAGE DICOM\\PAT00001\\STU00001\\SER00001\\IMG00001',
    'PATIENT/STUDY/SERIES/IMAGE DICOM\\PAT00001\\STU00001\\SER00001\\IMG00002',
    'PATIENT/STUDY/SERIES/IMAGE DICOM\\PAT00001\\STU00001\\SER00001\\IMG00003',
    'PATIENT/STUDY/SERIES/IMAGE DICOM\\PAT00001\\STU00001\\SER00002\\IMG00001',
    'PATIENT/STUDY/SERIES/IMAGE DICOM\\PAT00001\\STU00001\\SER00002\\IMG00002',
    'PATIENT/STUDY/SERIES/SR DOCUMENT DICOM\\PAT00001\\STU00001\\SER00003\\DOC00001',
    'PATIENT/STUDY/SERIES/ENCAP DOC DICOM\\PAT00001\\STU00001\\SER00004\\DOC00001'
  ])
  // Keys copied in the instance's repertoire, with its Specific Character Set.
  expect(dumped.text).toMatch(/^ {4}\(0008,0005\) CS \[ISO_IR 192\]/m)
  expect(dumped.text).toContain('(0010,0010) PN [Müller^Jörg]')
  expect(dumped.text).toContain('(0010,0020) LO [PDI-0001]')
  expect(dumped.text).toMatch(/\(0004,1130\) CS \[BEELDNET\]/)
  expect(dumped.text).toMatch(/\(0040,a491\) CS \[COMPLETE\]/)
  expect(dumped.text).toMatch(/\(0042,0012\) LO \[application\/pdf\]/)
  expect(dumped.text).toContain('(0004,1512) UI =LittleEndianImplicit')

  const update = await dcmmkdirUpdate(medium)
  expect(update.complaints).toEqual([])
  expect(update.after).toBe(update.before)

  const { summary, sha256 } = await importMedium(medium)
  expect(summary).toMatchObject({ files: 7, stored: 7, rejected: [], missing: [], warnings: [] })
  expect(Object.fromEntries(sha256)).toEqual(Object.fromEntries((await store.getStudy(ct.studyInstanceUID)).instances.map((i) => [i.sopInstanceUID, i.sha256])))

  const index = await readFile(join(medium, 'INDEX.HTM'), 'utf8')
  expect(index).not.toMatch(/<script|javascript:|src=/i)
  expect(index).toContain('Patiënt / Patient: Müller Jörg')
  expect(index).toContain('<td>CT</td><td>CT thorax-abdomen met contrast</td><td>3</td>')
  expect(index).toContain('4 serie(s) / series, 7 bestand(en) / file(s)')
  const readme = await readFile(join(medium, 'README.TXT'), 'utf8')
  expect(readme).toContain('Portable Data for Imaging')
  expect(readme).not.toContain('Müller')
}

describe('PDI export', () => {
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'pdi-suite-'))
    store = new StudyStore({ dir: join(root, 'store') })
    await store.start()
    ct = await generateStudy(join(root, 'ct'), ctSpec)
    prior = await generateStudy(join(root, 'prior'), { seed: 302, patient, studyDate: '20200102', series: [{ modality: 'CR', instances: 1, rows: 16, columns: 16 }] })
    const summary = await importFiles([join(root, 'ct'), join(root, 'prior')], { store })
    expect(summary.rejected).toEqual([])
  })

  afterAll(async () => {
    await store?.stop()
    await rm(root, { recursive: true, force: true })
  })

  it('writes a folder medium: DICOMDIR with patient, study, series and 8.3 file records, the files byte-identical, README.TXT and INDEX.HTM', async () => {
    const medium = join(await tempDir('pdi-folder'), 'medium')
    const { files, plan } = await writePdiFolder([await store.getStudy(ct.studyInstanceUID)], medium, (i) => store.openInstance(i), { createdAt: new Date('2026-03-01T10:00:00Z'), institution: 'Isala Zwolle' })
    expect(files.at(-1)).toBe(join(medium, 'DICOMDIR'))
    expect(plan.instances).toHaveLength(7)
    await expectCtMedium(medium)
    expect(await readFile(join(medium, 'README.TXT'), 'utf8')).toContain('door Isala Zwolle')
    const byPath = new Map((await store.getStudy(ct.studyInstanceUID)).instances.map((i) => [i.sopInstanceUID, i]))
    for (const m of plan.instances) expect(sha(await readFile(join(medium, ...m.fileId)))).toBe(byPath.get(m.instance.sopInstanceUID)!.sha256)
  })

  it('streams the same medium as one ZIP of the size it announced', async () => {
    const dir = await tempDir('pdi-zip')
    const zip = await streamPdiZip(store, [ct.studyInstanceUID])
    await pipeline(zip.stream, createWriteStream(join(dir, 'medium.zip')))
    expect((await readFile(join(dir, 'medium.zip'))).length).toBe(zip.size)
    const listed = await tool('unzip', ['-l', join(dir, 'medium.zip')])
    expect(listed.split('\n').filter((l) => /\s(DICOM\/|DICOMDIR|README|INDEX)/.test(l)).map((l) => l.trim().split(/\s+/).at(-1))).toEqual([
      'DICOMDIR', 'README.TXT', 'INDEX.HTM',
      'DICOM/PAT00001/STU00001/SER00001/IMG00001', 'DICOM/PAT00001/STU00001/SER00001/IMG00002', 'DICOM/PAT00001/STU00001/SER00001/IMG00003',
      'DICOM/PAT00001/STU00001/SER00002/IMG00001', 'DICOM/PAT00001/STU00001/SER00002/IMG00002',
      'DICOM/PAT00001/STU00001/SER00003/DOC00001', 'DICOM/PAT00001/STU00001/SER00004/DOC00001'
    ])
    await tool('unzip', ['-q', join(dir, 'medium.zip'), '-d', join(dir, 'medium')])
    await expectCtMedium(join(dir, 'medium'))
  })

  it('puts several studies of one patient under one PATIENT record', async () => {
    const medium = join(await tempDir('pdi-two'), 'medium')
    const studies = await Promise.all([ct, prior].map(async (s) => store.getStudy(s.studyInstanceUID)))
    const { plan } = await writePdiFolder(studies, medium, (i) => store.openInstance(i), { createdAt: new Date() })
    expect(plan.patients).toHaveLength(1)
    const dumped = await dumpDicomdir(join(medium, 'DICOMDIR'))
    expect(dumped.tree).toHaveLength(1)
    expect(dumped.tree[0]!.children.map((s) => s.type)).toEqual(['STUDY', 'STUDY'])
    expect(leaves(dumped.tree).at(-1)).toBe('PATIENT/STUDY/SERIES/IMAGE DICOM\\PAT00001\\STU00002\\SER00001\\IMG00001')
    expect((await dcmmkdirUpdate(medium)).complaints).toEqual([])
    const { summary } = await importMedium(medium)
    expect(summary).toMatchObject({ stored: 8, rejected: [] })
    expect(summary.studies.map((s) => s.studyInstanceUID).sort()).toEqual([ct.studyInstanceUID, prior.studyInstanceUID].sort())
  })

  it('refuses a folder that is not empty, and a study it does not hold', async () => {
    const dir = await tempDir('pdi-busy')
    await writeFile(join(dir, 'DICOMDIR'), 'another medium')
    await expect(writePdiFolder([await store.getStudy(ct.studyInstanceUID)], dir, (i) => store.openInstance(i), { createdAt: new Date() }))
      .rejects.toMatchObject({ code: 'BEELDNET_ERR_MEDIA_TARGET_NOT_EMPTY' })
    expect(await readFile(join(dir, 'DICOMDIR'), 'utf8')).toBe('another medium')
    await expect(streamPdiZip(store, ['1.2.3.4'])).rejects.toMatchObject({ code: 'BEELDNET_ERR_STUDY_NOT_FOUND' })
  })

  it('gives a bare dataset (stored without File Meta) the preamble and File Meta a medium\'s file must have, its dataset unchanged', async () => {
    const own = new StudyStore({ dir: await tempDir('pdi-bare-store') })
    await own.start()
    try {
      const gen = await generateStudy(await tempDir('pdi-bare'), { seed: 303, series: [{ modality: 'CT', instances: 1, rows: 16, columns: 16, part10: false }] })
      await importFiles(gen.instances.map((i) => i.path), { store: own })
      const [stored] = (await own.getStudy(gen.studyInstanceUID)).instances as [InstanceRecord]
      expect(stored.part10).toBe(false)
      const medium = join(await tempDir('pdi-bare-medium'), 'medium')
      await writePdiFolder([await own.getStudy(gen.studyInstanceUID)], medium, (i) => own.openInstance(i), { createdAt: new Date() })
      const file = await readFile(join(medium, 'DICOM', 'PAT00001', 'STU00001', 'SER00001', 'IMG00001'))
      expect(file.subarray(128, 132).toString('latin1')).toBe('DICM')
      expect(sha(file.subarray(file.length - stored.size))).toBe(stored.sha256)
      const meta = await dcmtk('dcmdump', ['-M', '+P', '0002,0010', join(medium, 'DICOM', 'PAT00001', 'STU00001', 'SER00001', 'IMG00001')])
      expect(meta.stdout).toContain('LittleEndianImplicit')
      expect((await dcmmkdirUpdate(medium)).complaints).toEqual([])
    } finally {
      await own.stop()
    }
  })

  it('ends the ZIP with the error when a stored file no longer matches its hash', async () => {
    const own = new StudyStore({ dir: await tempDir('pdi-rot-store') })
    await own.start()
    try {
      const gen = await generateStudy(await tempDir('pdi-rot'), { seed: 304, series: [{ modality: 'CT', instances: 2, rows: 16, columns: 16 }] })
      await importFiles(gen.instances.map((i) => i.path), { store: own })
      // The last pixel byte flipped: the header still reads, the hash no longer matches.
      const [, second] = (await own.getStudy(gen.studyInstanceUID)).instances as [InstanceRecord, InstanceRecord]
      const path = own.blobs.pathOf(second.sha256)
      const bytes = await readFile(path)
      bytes.writeUInt8(bytes.at(-1)! ^ 0xFF, bytes.length - 1)
      await writeFile(path, bytes)
      const zip = await streamPdiZip(own, [gen.studyInstanceUID])
      await expect(pipeline(zip.stream, createWriteStream(join(await tempDir('pdi-rot-out'), 'x.zip')))).rejects.toMatchObject({ code: 'BEELDNET_ERR_STORE_FILE_CORRUPT' })
    } finally {
      await own.stop()
    }
  })

  it('reads the store no faster than the ZIP is taken (memory flat), and stops reading when the reader goes', async () => {
    const own = new StudyStore({ dir: await tempDir('pdi-flat-store') })
    await own.start()
    try {
      const gen = await generateStudy(await tempDir('pdi-flat'), { seed: 305, series: [{ modality: 'CT', instances: 2, rows: 1536, columns: 1536 }] })
      await importFiles(gen.instances.map((i) => i.path), { store: own })
      let read = 0
      let open = 0
      const counting = Object.create(own) as StudyStore
      counting.openInstance = (record) => {
        const bytes = own.openInstance(record)
        return (async function * () {
          open++
          try { for await (const chunk of bytes) { read += chunk.byteLength; yield chunk } } finally { open-- }
        })()
      }
      const zip = await streamPdiZip(counting, [gen.studyInstanceUID])
      expect(zip.size).toBeGreaterThan(8 * 1024 * 1024)
      // Take 1 MiB, then stop taking: what the store has read must stay near what was taken.
      let taken = 0
      for await (const chunk of zip.stream) {
        taken += (chunk as Buffer).length
        if (taken > 1024 * 1024) break
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
      expect(read - taken).toBeLessThan(512 * 1024)
      // Breaking out of the loop destroyed the stream: the file being read is closed.
      expect(open).toBe(0)
    } finally {
      await own.stop()
    }
  })

  it('names File ID components within 8 characters of A-Z, 0-9 and _', () => {
    expect(fileIdComponent('IMG', 1)).toBe('IMG00001')
    expect(fileIdComponent('IMG', 99999)).toBe('IMG99999')
    expect(fileIdComponent('IMG', 123456)).toBe('IM123456')
    expect(fileIdComponent('IMG', 12345678)).toBe('12345678')
    expect(() => fileIdComponent('IMG', 123456789)).toThrow(RangeError)
    expect(isFileIdComponent('README.TXT')).toBe(false)
  })
})

/** unzip through the dcmtk helper's runner (execFile with a timeout, any program). */
async function tool (name: string, args: string[]): Promise<string> {
  const run = await dcmtk(name, args)
  if (run.code !== 0) throw new Error(`${name} failed: ${run.stderr}`)
  return run.stdout
}
