import { createHash } from 'node:crypto'
import { execFile } from 'node:child_process'
import { readFile, readdir, rm, writeFile, appendFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Level } from 'level'
import { afterEach, describe, expect, it } from 'vitest'
import { importFiles } from '../../../node/dicom/file-import.ts'
import { readInstanceHeader } from '../../../node/dicom/instance-header.ts'
import { coerceHeader } from '../../../node/reconcile/coerce.ts'
import { StudyStore, type DuplicateEvent } from '../../../node/store/study-store.ts'
import type { DuplicatePolicy } from '../../../node/store/duplicates.ts'
import { generateStudy, type GeneratedStudy, type StudySpec } from '../../../simulations/generator/index.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { dcmtk } from '../../helpers/dcmtk.ts'

const tempDir = useTempDirs()
const run = promisify(execFile)
const open: StudyStore[] = []

afterEach(async () => {
  for (const store of open.splice(0)) await store.stop().catch(() => {})
})

async function openStore (dir: string): Promise<StudyStore> {
  const store = new StudyStore({ dir })
  await store.start()
  open.push(store)
  return store
}

/** The instance with another Patient ID (same length): what a wrongly labelled disc looks like. */
function relabelPatient (bytes: Buffer, from: string, to: string): Buffer {
  const at = bytes.indexOf(Buffer.from([0x10, 0x00, 0x20, 0x00, 0x4c, 0x4f]))
  if (bytes.subarray(at + 8, at + 8 + from.length).toString('latin1') !== from) throw new Error(`no Patient ID ${from}`)
  const copy = Buffer.from(bytes)
  copy.write(to, at + 8, 'latin1')
  return copy
}

const sha256 = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex')

function ctStudy (seed: number, overrides: Partial<StudySpec> = {}): StudySpec {
  return {
    seed,
    accession: `ACC${seed}`,
    studyDate: '20261020',
    patient: { id: `P${seed}`, issuer: 'HOSP-A', name: 'de Vries^Anna', bsn: '123456782', birthDate: '19711203', sex: 'F' },
    series: [
      { modality: 'CT', instances: 4, rows: 64, columns: 64 },
      { modality: 'CT', instances: 2, rows: 64, columns: 64, transferSyntax: 'rle' }
    ],
    reports: { sr: true, pdf: true },
    ...overrides
  }
}

async function generate (seed: number, overrides?: Partial<StudySpec>): Promise<GeneratedStudy> {
  return generateStudy(await tempDir('src'), ctStudy(seed, overrides))
}

describe('StudyStore', () => {
  it('imports a study, indexes what queries need, and makes it visible as a whole', async () => {
    const store = await openStore(await tempDir())
    const study = await generate(1)
    const summary = await importFiles(study.instances.map((i) => i.path), { store })
    expect(summary).toMatchObject({ files: 8, stored: 8, duplicates: 0, rejected: [] })

    const entries = await store.getStudy(study.studyInstanceUID)
    expect(entries.study).toMatchObject({
      accessionNumber: 'ACC1',
      date: '20261020',
      numberOfSeries: 4,
      numberOfInstances: 8,
      numberOfReports: 2,
      size: study.instances.reduce((n, i) => n + i.size, 0),
      patient: { id: 'P1', issuer: 'HOSP-A', name: 'de Vries^Anna', bsn: '123456782', birthDate: '19711203', sex: 'F' }
    })
    expect(entries.study.modalities).toEqual(['CT', 'DOC', 'SR'])
    expect(entries.instances.map((i) => i.sopInstanceUID).sort()).toEqual(study.instances.map((i) => i.sopInstanceUID).sort())
  })

  it('stores identical content once and counts re-imports as duplicates', async () => {
    const dir = await tempDir()
    const store = await openStore(dir)
    const study = await generate(2)
    const paths = study.instances.map((i) => i.path)
    await importFiles(paths, { store })
    const again = await importFiles([...paths, paths[0]!], { store })
    expect(again).toMatchObject({ stored: 0, duplicates: 9, rejected: [] })
    const blobs = []
    for await (const sha of store.blobs.list()) blobs.push(sha)
    expect(blobs).toHaveLength(8)
    expect((await store.getStudy(study.studyInstanceUID)).study.numberOfInstances).toBe(8)
  })

  it('exports every file byte-identical to what was imported', async () => {
    const store = await openStore(await tempDir())
    const study = await generate(3)
    await importFiles(study.instances.map((i) => i.path), { store })
    const out = await tempDir('export')
    const written = await store.exportStudy(study.studyInstanceUID, out)
    expect(written).toHaveLength(8)
    const exported = (await Promise.all(written.map(sha256))).sort()
    const original = (await Promise.all(study.instances.map((i) => sha256(i.path)))).sort()
    expect(exported).toEqual(original)
    // the export is readable DICOM to a real tool
    const { stdout } = await run('dcmdump', ['+P', '0020,000d', written[0]!])
    expect(stdout).toContain(study.studyInstanceUID)
  })

  it('finds studies by BSN, patient id and issuer, date range, modality and accession', async () => {
    const store = await openStore(await tempDir())
    const a = await generate(4)
    const b = await generate(5, {
      studyDate: '20250101',
      patient: { id: 'P5', issuer: 'HOSP-B', name: 'Bakker^Jan', bsn: '999999990', birthDate: '19500505', sex: 'M' },
      series: [{ modality: 'MR', instances: 2, rows: 32, columns: 32 }],
      reports: {}
    })
    await importFiles([...a.instances, ...b.instances].map((i) => i.path), { store })
    const uids = async (q: Parameters<StudyStore['findStudies']>[0]): Promise<string[]> => (await store.findStudies(q)).map((s) => s.studyInstanceUID)
    expect(await uids({ bsn: '123456782' })).toEqual([a.studyInstanceUID])
    expect(await uids({ bsn: '999999990' })).toEqual([b.studyInstanceUID])
    expect(await uids({ patientId: 'P5', issuer: 'HOSP-B' })).toEqual([b.studyInstanceUID])
    expect(await uids({ patientId: 'P5', issuer: 'HOSP-A' })).toEqual([])
    expect(await uids({ dateFrom: '20260101' })).toEqual([a.studyInstanceUID])
    expect(await uids({ dateFrom: '20240101', dateTo: '20251231' })).toEqual([b.studyInstanceUID])
    expect(await uids({ modality: 'MR' })).toEqual([b.studyInstanceUID])
    expect(await uids({ accessionNumber: 'ACC4' })).toEqual([a.studyInstanceUID])
    expect(await uids({})).toEqual([a.studyInstanceUID, b.studyInstanceUID])
  })

  it('rejects bad files with their codes, stores the rest, and leaves stored studies untouched', async () => {
    const dir = await tempDir()
    const store = await openStore(dir)
    const study = await generate(6)
    await importFiles(study.instances.slice(0, 4).map((i) => i.path), { store })
    const before = await store.getStudy(study.studyInstanceUID)

    const src = await tempDir('bad')
    const good = study.instances[4]!.path
    const truncated = join(src, 'truncated')
    await writeFile(truncated, (await readFile(study.instances[5]!.path)).subarray(0, 2000))
    const text = join(src, 'autorun.inf')
    await writeFile(text, '[autorun]\nopen=viewer.exe\n')
    // same SOP Instance UID as a stored instance, another patient: must not replace the stored copy
    const conflicting = join(src, 'conflict')
    await writeFile(conflicting, relabelPatient(await readFile(study.instances[0]!.path), 'P6', 'Q6'))

    const summary = await importFiles([good, truncated, text, conflicting], { store })
    expect(summary.stored).toBe(1)
    expect(summary.rejected.map((r) => [r.path, r.code]).sort()).toEqual([
      [conflicting, 'BEELDNET_ERR_INSTANCE_CONFLICT'],
      [text, 'BEELDNET_ERR_NOT_DICOM'],
      [truncated, 'BEELDNET_ERR_DICOM_TRUNCATED']
    ].sort())
    const after = await store.getStudy(study.studyInstanceUID)
    expect(after.study.numberOfInstances).toBe(before.study.numberOfInstances + 1)
    const stored = after.instances.find((i) => i.sopInstanceUID === study.instances[0]!.sopInstanceUID)!
    expect(stored.sha256).toBe(await sha256(study.instances[0]!.path))
    expect((await store.fsck()).orphans).toEqual([])
  })

  it('refuses an instance that names another patient than its study', async () => {
    const store = await openStore(await tempDir())
    const study = await generate(7)
    await importFiles(study.instances.slice(0, 2).map((i) => i.path), { store })
    // the same instance relabelled with another patient id: what a wrongly labelled disc looks like
    const bytes = await readFile(study.instances[2]!.path)
    const at = bytes.indexOf(Buffer.from([0x10, 0x00, 0x20, 0x00, 0x4c, 0x4f]))
    expect(bytes.subarray(at + 8, at + 10).toString()).toBe('P7')
    bytes.write('Q7', at + 8, 'latin1')
    const wrongPath = join(await tempDir('wrong'), 'IM1')
    await writeFile(wrongPath, bytes)
    const summary = await importFiles([wrongPath], { store })
    expect(summary.rejected.map((r) => r.code)).toEqual(['BEELDNET_ERR_PATIENT_MISMATCH'])
    expect((await store.getStudy(study.studyInstanceUID)).study.numberOfInstances).toBe(2)
  })

  it('fsck finds a corrupt and a missing file; --repair quarantines and drops them from the index', async () => {
    const dir = await tempDir()
    const store = await openStore(dir)
    const study = await generate(8)
    await importFiles(study.instances.map((i) => i.path), { store })
    const [first, second] = (await store.getStudy(study.studyInstanceUID)).instances
    await appendFile(store.blobs.pathOf(first!.sha256), 'x')
    await rm(store.blobs.pathOf(second!.sha256))

    const report = await store.fsck()
    expect(report.checked).toBe(8)
    expect(report.corrupt.map((c) => c.sopInstanceUID)).toEqual([first!.sopInstanceUID])
    expect(report.missing.map((m) => m.sopInstanceUID)).toEqual([second!.sopInstanceUID])
    await expect(store.exportStudy(study.studyInstanceUID, await tempDir('export'))).rejects.toMatchObject({ code: expect.stringMatching(/^BEELDNET_ERR_STORE_FILE_(CORRUPT|MISSING)$/) })

    const repaired = await store.fsck({ repair: true })
    expect(repaired.repaired).toBe(true)
    expect(await readdir(join(dir, 'store', 'quarantine'))).toHaveLength(1)
    const after = await store.getStudy(study.studyInstanceUID)
    expect(after.study.numberOfInstances).toBe(6)
    expect(await store.fsck()).toMatchObject({ checked: 6, missing: [], corrupt: [], orphans: [] })
    // what was lost can be imported again
    const again = await importFiles(study.instances.map((i) => i.path), { store })
    expect(again).toMatchObject({ stored: 2, duplicates: 6 })
  })

  it('a crash between writing files and committing the index leaves no visible study', async () => {
    const dir = await tempDir()
    const study = await generate(9)
    const script = join(import.meta.dirname, 'fixtures', 'crash-before-commit.ts')
    const child = await run(process.execPath, [script, dir, ...study.instances.map((i) => i.path)]).then(
      () => ({ signal: null }),
      (err: { signal?: string }) => ({ signal: err.signal })
    )
    expect(child.signal).toBe('SIGKILL')

    const store = await openStore(dir)
    expect(await store.findStudies()).toEqual([])
    await expect(store.getStudy(study.studyInstanceUID)).rejects.toMatchObject({ code: 'BEELDNET_ERR_STUDY_NOT_FOUND' })
    const report = await store.fsck()
    expect(report.orphans).toHaveLength(8)
    await store.fsck({ repair: true })
    expect((await store.fsck()).orphans).toEqual([])
    expect(await importFiles(study.instances.map((i) => i.path), { store })).toMatchObject({ stored: 8 })
  })

  it('deletes a study with its files, but not while a transfer holds it', async () => {
    const dir = await tempDir()
    const store = await openStore(dir)
    const study = await generate(10)
    await importFiles(study.instances.map((i) => i.path), { store })
    await store.hold(study.studyInstanceUID, 'transfer-1', 'push to 12345678')
    await expect(store.deleteStudy(study.studyInstanceUID)).rejects.toMatchObject({ code: 'BEELDNET_ERR_STUDY_HELD' })
    await store.release(study.studyInstanceUID, 'transfer-1')
    await store.deleteStudy(study.studyInstanceUID)
    expect(await store.findStudies()).toEqual([])
    const left = []
    for await (const sha of store.blobs.list()) left.push(sha)
    expect(left).toEqual([])
    await expect(store.deleteStudy(study.studyInstanceUID)).rejects.toMatchObject({ code: 'BEELDNET_ERR_STUDY_NOT_FOUND' })
    // nothing of the patient stays behind in the index: the node is an exchange point, not an archive
    await store.stop()
    const raw = new Level<string, string>(join(dir, 'index'))
    const leftovers: string[] = []
    for await (const [k, v] of raw.iterator()) leftovers.push(k + v)
    await raw.close()
    expect(leftovers.filter((entry) => /de Vries|123456782|P10/.test(entry))).toEqual([])
  })

  it('retention purges old studies, keeps held ones, and disk use follows', async () => {
    const store = await openStore(await tempDir())
    const old = await generate(11)
    const held = await generate(12)
    await importFiles([...old.instances, ...held.instances].map((i) => i.path), { store })
    await store.hold(held.studyInstanceUID, 'transfer-9', 'pull by 87654321')
    const usage = await store.diskUsage()
    expect(usage).toMatchObject({ studies: 2, instances: 16 })
    expect(usage.storedBytes).toBe([...old.instances, ...held.instances].reduce((n, i) => n + i.size, 0))
    expect(usage.freeBytes).toBeGreaterThan(0)

    expect((await store.purgeExpired(30)).purged).toEqual([]) // just received: nothing is old yet
    const later = new Date(Date.now() + 31 * 86_400_000)
    const result = await store.purgeExpired(30, later)
    expect(result.purged.map((s) => s.studyInstanceUID)).toEqual([old.studyInstanceUID])
    expect(result.keptHeld).toEqual([held.studyInstanceUID])
    expect(await store.diskUsage()).toMatchObject({ studies: 1, instances: 8 })
  })

  it('refuses a second process on the same store with a clear code', async () => {
    const dir = await tempDir()
    await openStore(dir)
    const script = join(import.meta.dirname, 'fixtures', 'open-store.ts')
    const result = await run(process.execPath, [script, dir]).then((r) => r.stdout, (err: { stdout: string }) => err.stdout)
    expect(result.trim()).toBe('BEELDNET_ERR_STORE_LOCKED')
  })
})

describe('StudyStore: copies of instances it holds (store.duplicates)', () => {
  /** A store under `policy`, holding the first image of a fresh study, plus that image in another encoding and as another patient. */
  async function heldImage (policy: DuplicatePolicy, seed: number): Promise<{ store: StudyStore, events: DuplicateEvent[], original: string, implicit: string, otherPatient: string, sopInstanceUID: string, studyInstanceUID: string }> {
    const events: DuplicateEvent[] = []
    const store = new StudyStore({ dir: await tempDir(), duplicates: policy, onDuplicate: (e) => events.push(e) })
    await store.start()
    open.push(store)
    const study = await generate(seed)
    const image = study.instances.find((i) => !i.isReport)!
    const dir = await tempDir('copies')
    const implicit = join(dir, 'implicit.dcm')
    const converted = await dcmtk('dcmconv', ['+ti', image.path, implicit])
    expect(converted.code, converted.stderr).toBe(0)
    const otherPatient = join(dir, 'other-patient.dcm')
    await writeFile(otherPatient, relabelPatient(await readFile(image.path), `P${seed}`, `Q${seed}`))
    expect((await importFiles([image.path], { store })).stored).toBe(1)
    return { store, events, original: image.path, implicit, otherPatient, sopInstanceUID: image.sopInstanceUID, studyInstanceUID: study.studyInstanceUID }
  }

  const storedSha = async (store: StudyStore, studyInstanceUID: string): Promise<string[]> => (await store.getStudy(studyInstanceUID)).instances.map((i) => i.sha256)
  const blobs = async (store: StudyStore): Promise<string[]> => { const all: string[] = []; for await (const sha of store.blobs.list()) all.push(sha); return all }

  it('keep: the same bytes and another transfer syntax are kept duplicates; another patient under the UID is refused', async () => {
    const h = await heldImage('keep', 21)
    const again = await importFiles([h.original, h.implicit], { store: h.store })
    expect(again).toMatchObject({ stored: 0, duplicates: 2, rejected: [] })
    expect(await storedSha(h.store, h.studyInstanceUID)).toEqual([await sha256(h.original)])
    const conflict = await importFiles([h.otherPatient], { store: h.store })
    expect(conflict.rejected.map((r) => r.code)).toEqual(['BEELDNET_ERR_INSTANCE_CONFLICT'])
    expect(conflict.rejected[0]!.message).toContain('another patient')
    expect(h.events.map((e) => [e.action, e.kind])).toEqual([['kept', 'identical'], ['kept', 'same-instance'], ['refused', 'conflict']])
    expect(await blobs(h.store)).toEqual([await sha256(h.original)])
  })

  it('a copy this node reconciled to another hospital\'s patient id, sent back by that PACS, is the held instance: kept, never stored over it (refused only under refuse)', async () => {
    for (const [policy, seed, action] of [['keep', 24, 'kept'], ['replace-if-changed', 25, 'kept'], ['refuse', 26, 'refused']] as const) {
      const h = await heldImage(policy, seed)
      const coerced = coerceHeader(h.original, { local: { patientId: `LOCAL${seed}`, issuer: 'HOSPITAL-B' }, source: 'Ziekenhuis A' })
      const reconciled = join(await tempDir('reconciled'), 'reconciled.dcm')
      await writeFile(reconciled, Buffer.concat([coerced.header, (await readFile(h.original)).subarray(coerced.headerEnd)]))
      expect(readInstanceHeader(reconciled).patient).toMatchObject({ id: `LOCAL${seed}`, issuer: 'HOSPITAL-B' })

      const again = await importFiles([reconciled], { store: h.store })
      expect(again.rejected.map((r) => r.code)).toEqual(action === 'kept' ? [] : ['BEELDNET_ERR_INSTANCE_CONFLICT'])
      expect(h.events.map((e) => [e.action, e.kind])).toEqual([[action, 'same-instance']])
      expect(await storedSha(h.store, h.studyInstanceUID)).toEqual([await sha256(h.original)])
      expect((await h.store.getStudy(h.studyInstanceUID)).study.patient).toMatchObject({ id: `P${seed}` })
    }
  })

  it('replace-if-changed: another transfer syntax replaces the stored file (the old file goes once the index no longer names it); the same bytes are kept', async () => {
    const h = await heldImage('replace-if-changed', 22)
    const oldSha = await sha256(h.original)
    expect(await importFiles([h.original], { store: h.store })).toMatchObject({ stored: 0, duplicates: 1 })
    const replaced = await importFiles([h.implicit], { store: h.store })
    expect(replaced).toMatchObject({ stored: 1, rejected: [] })
    const entries = await h.store.getStudy(h.studyInstanceUID)
    expect(entries.instances).toMatchObject([{ sopInstanceUID: h.sopInstanceUID, sha256: await sha256(h.implicit), transferSyntaxUID: '1.2.840.10008.1.2' }])
    expect(entries.study.numberOfInstances).toBe(1)
    expect(await h.store.index.getBlobOwner(oldSha)).toBeUndefined()
    expect(await blobs(h.store)).toEqual([await sha256(h.implicit)])
    expect(await h.store.fsck()).toMatchObject({ missing: [], corrupt: [], orphans: [] })
    // Another patient cannot come in by replacement: the study's patient stays.
    expect((await importFiles([h.otherPatient], { store: h.store })).rejected.map((r) => r.code)).toEqual(['BEELDNET_ERR_INSTANCE_CONFLICT'])
    expect(h.events.map((e) => e.action)).toEqual(['kept', 'replaced', 'refused'])
  })

  it('refuse: another transfer syntax is refused, the same bytes again are not', async () => {
    const h = await heldImage('refuse', 23)
    expect(await importFiles([h.original], { store: h.store })).toMatchObject({ stored: 0, duplicates: 1, rejected: [] })
    const refused = await importFiles([h.implicit], { store: h.store })
    expect(refused.rejected.map((r) => [r.path, r.code])).toEqual([[h.implicit, 'BEELDNET_ERR_INSTANCE_CONFLICT']])
    expect(await storedSha(h.store, h.studyInstanceUID)).toEqual([await sha256(h.original)])
    expect(await blobs(h.store)).toEqual([await sha256(h.original)])
  })

  it('one batch carrying an instance twice in two encodings never fails the first copy', async () => {
    for (const policy of ['keep', 'replace-if-changed', 'refuse'] as const) {
      const h = await heldImage(policy, 24)
      const fresh = await generate(25)
      const image = fresh.instances.find((i) => !i.isReport)!
      const implicit = join(await tempDir('copy'), 'implicit.dcm')
      expect((await dcmtk('dcmconv', ['+ti', image.path, implicit])).code).toBe(0)
      const session = h.store.beginImport()
      await session.addFile(image.path)
      await session.addFile(implicit)
      const [result] = await session.commit()
      expect(result!.outcomes.map((o) => o.outcome), policy).toEqual(policy === 'keep' ? ['stored', 'kept'] : policy === 'refuse' ? ['stored', 'refused'] : ['stored', 'replaced'])
      const kept = (await h.store.getStudy(fresh.studyInstanceUID)).instances.map((i) => i.sha256)
      expect(kept).toEqual([await sha256(policy === 'replace-if-changed' ? implicit : image.path)])
      expect(await h.store.fsck(), policy).toMatchObject({ missing: [], corrupt: [], orphans: [] })
    }
  })
})
