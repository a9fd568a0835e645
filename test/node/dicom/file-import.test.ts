import { createHash } from 'node:crypto'
import { copyFile, mkdir, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { importFiles, type ImportEvent } from '../../../node/dicom/file-import.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { generateStudy, writeMediaLayout } from '../../../simulations/generator/index.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

const tempDir = useTempDirs()
const stores: StudyStore[] = []
afterEach(async () => { for (const s of stores.splice(0)) await s.stop() })

async function openStore (): Promise<StudyStore> {
  const store = new StudyStore({ dir: await tempDir('store') })
  await store.start()
  stores.push(store)
  return store
}

describe('importFiles', () => {
  it('imports a DVD by its DICOMDIR and leaves the viewer software on the disc alone', async () => {
    const dvd = await tempDir('dvd')
    const { studies } = await writeMediaLayout(dvd, [
      { seed: 21, series: [{ modality: 'CT', instances: 3, rows: 32, columns: 32 }], reports: { sr: true } },
      { seed: 22, series: [{ modality: 'MR', instances: 2, rows: 32, columns: 32 }] }
    ])
    await mkdir(join(dvd, 'VIEWER'))
    await writeFile(join(dvd, 'VIEWER', 'VIEWER.EXE'), Buffer.alloc(4096, 0x90))
    await writeFile(join(dvd, 'AUTORUN.INF'), '[autorun]\nopen=VIEWER\\VIEWER.EXE\n')

    const store = await openStore()
    const summary = await importFiles([dvd], { store })
    expect(summary).toMatchObject({ files: 6, stored: 6, rejected: [] })
    expect((await store.findStudies()).map((s) => s.studyInstanceUID).sort()).toEqual(studies.map((s) => s.studyInstanceUID).sort())

    // the DICOMDIR file itself, given directly, means the same thing
    const again = await importFiles([join(dvd, 'DICOMDIR')], { store })
    expect(again).toMatchObject({ files: 6, stored: 0, duplicates: 6 })
  })

  it('finds the DICOMDIR\'s files when the medium shows them in lower case', async () => {
    const dvd = await tempDir('dvd')
    await writeMediaLayout(dvd, [{ seed: 23, series: [{ modality: 'CT', instances: 2, rows: 32, columns: 32 }] }])
    // as some ISO 9660 mounts present names: lower case throughout
    const lower = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const target = join(dir, entry.name.toLowerCase())
        if (entry.name !== entry.name.toLowerCase()) await rename(join(dir, entry.name), target)
        if (entry.isDirectory()) await lower(target)
      }
    }
    await lower(dvd)
    const store = await openStore()
    const summary = await importFiles([dvd], { store })
    expect(summary).toMatchObject({ files: 2, stored: 2, rejected: [] })
  })

  it('never follows a DICOMDIR entry through a symlink off the medium, and warns about unlisted files', async () => {
    const dvd = await tempDir('dvd')
    await writeMediaLayout(dvd, [{ seed: 25, series: [{ modality: 'CT', instances: 2, rows: 32, columns: 32 }] }])
    const elsewhere = await generateStudy(await tempDir('elsewhere'), { seed: 26, series: [{ modality: 'CT', instances: 1, rows: 32, columns: 32 }] })
    // replace the first listed image with a link to a file outside the medium
    const image = join(dvd, 'DICOM', 'PAT00001', 'STU00001', 'SER00001', 'IMG00001')
    await rm(image)
    await symlink(elsewhere.instances[0]!.path, image)
    await writeFile(join(dvd, 'DICOM', 'PAT00001', 'STRAY01'), 'x')
    const warnings: string[] = []
    const store = await openStore()
    const summary = await importFiles([dvd], { store, onEvent: (e) => { if (e.type === 'warning') warnings.push(e.message) } })
    expect(summary).toMatchObject({ files: 1, stored: 1 })
    await expect(store.getStudy(elsewhere.studyInstanceUID)).rejects.toMatchObject({ code: 'BEELDNET_ERR_STUDY_NOT_FOUND' })
    expect(warnings.join('\n')).toMatch(/lists 1 file\(s\) that are not on the medium/)
    expect(warnings.join('\n')).toMatch(/file\(s\) on the medium are not in its DICOMDIR/)
  })

  it('walks folders recursively, reports progress, and summarises rejections by code', async () => {
    const src = await tempDir('src')
    const study = await generateStudy(join(src, 'a', 'b'), { seed: 24, series: [{ modality: 'CT', instances: 3, rows: 32, columns: 32 }] })
    await writeFile(join(src, 'a', 'notes.txt'), 'referral letter follows by post')
    await writeFile(join(src, 'empty.dcm'), '')
    const events: ImportEvent[] = []
    const store = await openStore()
    const summary = await importFiles([src], { store, onEvent: (e) => events.push(e) })
    expect(summary.stored).toBe(3)
    expect(summary.rejected.map((r) => r.code)).toEqual(['BEELDNET_ERR_NOT_DICOM', 'BEELDNET_ERR_NOT_DICOM'])
    expect(events[0]).toEqual({ type: 'found', total: 5 })
    expect(events.filter((e) => e.type === 'file')).toHaveLength(5)
    expect((await store.getStudy(study.studyInstanceUID)).study.numberOfInstances).toBe(3)
  })

  it('names each file once with its own outcome when several files carry one SOP Instance UID', async () => {
    const generated = await tempDir('gen')
    const study = await generateStudy(generated, { seed: 26, series: [{ modality: 'CT', instances: 3, rows: 32, columns: 32 }] })
    const [first, ...others] = study.instances.map((i) => i.path)
    const src = await tempDir('src')
    const original = await readFile(first!)
    // One UID, four files: the original, a byte-identical copy and two with other pixel bytes.
    const variant = (last: number): Buffer => Buffer.concat([original.subarray(0, -1), Buffer.from([last])])
    await writeFile(join(src, 'a-original.dcm'), original)
    await writeFile(join(src, 'b-copy.dcm'), original)
    await writeFile(join(src, 'c-variant.dcm'), variant(original.at(-1)! ^ 0x01))
    await writeFile(join(src, 'd-variant.dcm'), variant(original.at(-1)! ^ 0x02))
    for (const [n, path] of others.entries()) await copyFile(path, join(src, `e-good-${n}.dcm`))
    await writeFile(join(src, 'f-junk.dcm'), 'not an image')

    const store = await openStore()
    const summary = await importFiles([src], { store })
    const names = summary.outcomes.map((o) => o.path.slice(src.length + 1))
    expect(names).toEqual(['a-original.dcm', 'b-copy.dcm', 'c-variant.dcm', 'd-variant.dcm', 'e-good-0.dcm', 'e-good-1.dcm', 'f-junk.dcm'])
    const outcome = (name: string): string | undefined => summary.outcomes.find((o) => o.path === join(src, name))?.status
    expect(outcome('a-original.dcm')).toBe('stored')
    expect(outcome('b-copy.dcm')).toBe('duplicate')
    expect(outcome('e-good-0.dcm')).toBe('stored')
    expect(outcome('e-good-1.dcm')).toBe('stored')
    expect(outcome('f-junk.dcm')).toBe('rejected')
    // Whatever the duplicate policy makes of them, the variants are not what the store holds.
    expect(outcome('c-variant.dcm')).not.toBe('stored')
    expect(outcome('d-variant.dcm')).not.toBe('stored')
    const location = await store.index.getSopLocation(study.instances[0]!.sopInstanceUID)
    expect(location?.sha256).toBe(createHash('sha256').update(original).digest('hex'))
    // Every rejection names its own file, once, and says the same as that file's outcome.
    const rejectedPaths = summary.rejected.map((r) => r.path)
    expect(new Set(rejectedPaths).size).toBe(rejectedPaths.length)
    expect(rejectedPaths).toEqual(summary.outcomes.filter((o) => o.status === 'rejected').map((o) => o.path))
    for (const r of summary.rejected) expect(summary.outcomes.find((o) => o.path === r.path)).toMatchObject({ code: r.code, message: r.message })
    expect(summary.stored + summary.duplicates + summary.rejected.length).toBe(7)
  })

  it('fails clearly on a path that does not exist', async () => {
    const store = await openStore()
    await expect(importFiles(['/nonexistent/beeldnet/disc'], { store })).rejects.toMatchObject({ code: 'BEELDNET_ERR_IMPORT_SOURCE' })
  })
})
