import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { readHeader, type Dataset } from '../../../node/dicom/dataset-reader.ts'
import { importFiles } from '../../../node/dicom/file-import.ts'
import { createDeidentificationMap, type DeidentificationMap } from '../../../node/deidentify/deidentification-map.ts'
import { deidentifyFile, deidentifyInstance, type DeidentifyInit } from '../../../node/deidentify/deidentify-instance.ts'
import { exportDeidentified } from '../../../node/deidentify/export.ts'
import { OPTIONS, parseProfile, type DeidentifyOption } from '../../../node/deidentify/options.ts'
import { PROFILE_TABLE } from '../../../node/deidentify/profile-table.ts'
import type { AuditEvent } from '../../../node/audit/audit-log.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { dcmtk } from '../../helpers/dcmtk.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { IMPLICIT_LE, ORIGINAL_SERIES, ORIGINAL_STUDY, PATIENT_ID, chunked, makeInstance, writableRows, writeInstance, type InstanceInit } from './fixtures.ts'

const tempDir = useTempDirs()
const stores: StudyStore[] = []
afterEach(async () => { for (const s of stores.splice(0)) await s.stop() })

async function openStore (): Promise<StudyStore> {
  const store = new StudyStore({ dir: await tempDir('store') })
  await store.start()
  stores.push(store)
  return store
}

const KEY = Buffer.alloc(32, 7)

function init (options: DeidentifyOption[] = [], extra: Partial<DeidentifyInit> = {}): DeidentifyInit {
  return { profile: { profile: 'basic', options }, map: createDeidentificationMap({ key: KEY }), ...extra }
}

async function deidentifyBytes (bytes: Buffer, settings: DeidentifyInit, chunk = 100_000): Promise<{ out: Buffer, record: Awaited<ReturnType<typeof deidentifyInstance>>['record'] }> {
  const result = await deidentifyInstance(chunked(bytes, chunk), settings)
  const parts: Buffer[] = []
  for await (const b of result.bytes) parts.push(Buffer.from(b))
  return { out: Buffer.concat(parts), record: result.record }
}

async function headerOf (dir: string, name: string, bytes: Buffer): Promise<ReturnType<typeof readHeader>> {
  const { writeFile } = await import('node:fs/promises')
  const path = join(dir, name)
  await writeFile(path, bytes)
  return readHeader(path)
}

function text (ds: Dataset, t: number): string {
  return ds.get(t)?.value?.toString('latin1').replace(/[\0 ]+$/, '') ?? ''
}

/** The action the test expects for a row: the option's where one applies, a combined action as rules.ts decides. */
function expected (row: (typeof PROFILE_TABLE)[number], options: DeidentifyOption[]): string {
  const chosen = options.map((o) => row.options[OPTIONS[o].column]).find((a) => a !== undefined) ?? row.basic
  return { 'X/Z': 'Z', 'X/D': 'D', 'Z/D': 'D', 'X/Z/D': 'D', 'X/Z/U*': 'U' }[chosen as string] ?? chosen
}

describe('the profile table', () => {
  it('holds Table E.1-1 as data: 621 rows of the 2024b edition, each tag once, every action one the standard defines', () => {
    expect(PROFILE_TABLE).toHaveLength(621)
    expect(new Set(PROFILE_TABLE.map((r) => r.tag)).size).toBe(621)
    for (const row of PROFILE_TABLE) {
      expect(row.tag).toMatch(/^([0-9A-Fx]{8}|PRIVATE)$/)
      expect(['D', 'Z', 'X', 'K', 'C', 'U', 'Z/D', 'X/Z', 'X/D', 'X/Z/D', 'X/Z/U*']).toContain(row.basic)
    }
    const find = (tag: string): (typeof PROFILE_TABLE)[number] | undefined => PROFILE_TABLE.find((r) => r.tag === tag)
    expect(find('00100010')).toMatchObject({ name: 'Patient\'s Name', basic: 'Z' })
    expect(find('00101002')).toMatchObject({ name: 'Other Patient IDs Sequence', basic: 'X' })
    expect(find('0020000D')).toMatchObject({ basic: 'U', options: { retainUids: 'K' } })
    expect(find('00080020')).toMatchObject({ basic: 'Z', options: { retainLongitudinalFullDates: 'K' } })
    expect(find('00081030')).toMatchObject({ basic: 'X', options: { cleanDescriptors: 'C' } })
    expect(find('00081140')).toMatchObject({ basic: 'X/Z/U*' })
  })

  it('parses --deidentify: basic with retain-dates and clean-descriptors; anything else is BEELDNET_ERR_DEIDENTIFY_OPTION', () => {
    expect(parseProfile('basic')).toEqual({ profile: 'basic', options: [] })
    expect(parseProfile('basic,retain-dates,clean-descriptors')).toEqual({ profile: 'basic', options: ['clean-descriptors', 'retain-dates'] })
    expect(() => parseProfile('basic,retain-uids')).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_DEIDENTIFY_OPTION', message: expect.stringContaining('Retain UIDs option is not supported') }))
    expect(() => parseProfile('research')).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_DEIDENTIFY_OPTION' }))
    expect(() => parseProfile('basic,foo')).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_DEIDENTIFY_OPTION' }))
  })
})

describe('deidentifyInstance', () => {
  const optionSets: DeidentifyOption[][] = [[], ['retain-dates'], ['clean-descriptors'], ['retain-dates', 'clean-descriptors']]
  for (const options of optionSets) {
    it(`acts on every attribute of Table E.1-1 the writer can write as the table says (basic${options.map((o) => `,${o}`).join('')})`, async () => {
      const dir = await tempDir('deid')
      const original = makeInstance({ sopInstanceUID: '1.2.826.0.1.3680043.10.543.2.1', referenced: '1.2.826.0.1.3680043.10.543.2.9' })
      const settings = init(options)
      // Small chunks: the header arrives in many pieces and is read again as it grows.
      const { out, record } = await deidentifyBytes(original.bytes, settings, 4096)
      const before = (await headerOf(dir, 'in.dcm', original.bytes)).dataset
      const after = (await headerOf(dir, 'out.dcm', out)).dataset
      const map = settings.map
      const rows = writableRows()
      expect(rows.length).toBeGreaterThan(550)
      const wrong: string[] = []
      for (const { row, tag: t, vr } of rows) {
        const action = expected(row, options)
        const was = before.get(t)!
        const now = after.get(t)
        const say = (why: string): void => { wrong.push(`${row.tag} ${row.name} (${vr}, ${action}): ${why}`) }
        if (action === 'X') {
          if (now !== undefined) say('still there')
          continue
        }
        if (now === undefined) {
          say('gone')
          continue
        }
        switch (action) {
          case 'Z':
            if (now.items !== undefined ? now.items.length !== 0 : now.length !== 0) say('not empty')
            break
          case 'K':
            if (!now.value?.equals(was.value!)) say('changed')
            break
          case 'U':
            if (now.items !== undefined) {
              if (text(now.items[0]!, 0x00081155) !== map.uid('1.2.826.0.1.3680043.10.543.2.9')) say('the reference in its item was not replaced')
            } else if (text(after, t) !== map.uid(text(before, t))) say(`${text(after, t)} is not the run's UID for ${text(before, t)}`)
            break
          case 'D':
            if (now.items !== undefined) {
              // The dummy of a sequence is the sequence with every item cleaned by the table.
              if (now.items[0]?.get(0x00100010)?.length !== 0) say('a Patient\'s Name in its item survived')
              if (now.items[0]?.has(0x00091001) === true) say('a private attribute in its item survived')
            } else if (vr === 'UI') {
              if (text(after, t) !== map.uid(text(before, t))) say('not the run\'s UID')
            } else if (now.length === 0 || now.value?.equals(was.value!) === true) say('not a dummy')
            break
          case 'C':
            if (['AE', 'CS', 'LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UT'].includes(vr) && /jansen|20240301/i.test(text(after, t))) say(`still says ${text(after, t)}`)
            break
          default:
            say('an action the test does not know')
        }
      }
      expect(wrong).toEqual([])

      // Identity: the BSN is gone from Patient ID and Other Patient IDs; a pseudonym of the run instead.
      expect(text(after, 0x00100020)).toBe(map.patientId(PATIENT_ID))
      expect(text(after, 0x00100020)).toMatch(/^ANON[0-9A-F]{12}$/)
      expect(after.has(0x00101002)).toBe(false)
      expect(out.includes(Buffer.from(PATIENT_ID))).toBe(false)
      // What the profile adds.
      expect(text(after, 0x00120062)).toBe('YES')
      expect(text(after, 0x00120063)).toContain('Basic Application Confidentiality Profile')
      const codes = after.get(0x00120064)!.items!.map((item) => text(item, 0x00080100))
      expect(codes).toEqual(['113100', ...options.map((o) => OPTIONS[o].code.value)])
      expect(text(after, 0x00280303)).toBe(options.includes('retain-dates') ? 'UNMODIFIED' : 'REMOVED')
      // The group length is dropped.
      expect(after.has(0x00180000)).toBe(false)

      expect(record).toMatchObject({
        profile: ['basic', ...options].join(','),
        table: 'DICOM PS3.15 2024b, Table E.1-1',
        original: { sopInstanceUID: original.sopInstanceUID, studyInstanceUID: ORIGINAL_STUDY, seriesInstanceUID: ORIGINAL_SERIES },
        studyInstanceUID: map.uid(ORIGINAL_STUDY),
        sopInstanceUID: text(after, 0x00080018),
        privateKept: []
      })
      // Five at the top level, and one in every item of every sequence that stays.
      expect(record.privateRemoved).toBeGreaterThan(5)
      expect(record.counts.X).toBeGreaterThan(150)
      expect(record.counts.U).toBeGreaterThan(40)
      expect(record.counts.K > 0).toBe(options.includes('retain-dates'))
      expect(record.counts.C > 0).toBe(options.includes('clean-descriptors'))
      expect(record.attributes.Z).toContain('(0010,0010)')
      expect(record.trailingBytesRemoved).toBeGreaterThan(16)
    })
  }

  it('cleans descriptors of the patient\'s name and long digit runs, keeping the rest of the words', async () => {
    const dir = await tempDir('deid')
    const original = makeInstance({ sopInstanceUID: '1.2.3.1', everyAttribute: false, extra: [
      { tag: 0x00081030, vr: 'LO', value: 'CT THORAX Jansen 123456782' },
      { tag: 0x0008103E, vr: 'LO', value: 'AXIAL 5MM' }
    ] })
    const { out } = await deidentifyBytes(original.bytes, init(['clean-descriptors']))
    const after = (await headerOf(dir, 'out.dcm', out)).dataset
    expect(text(after, 0x00081030)).toBe('CT THORAX *** ***')
    expect(text(after, 0x0008103E)).toBe('AXIAL 5MM')
  })

  it('keeps two instances of one study together: the same study and series UIDs, and a reference in a sequence follows the instance it names', async () => {
    const dir = await tempDir('deid')
    const first = makeInstance({ sopInstanceUID: '1.2.3.100' })
    const second = makeInstance({ sopInstanceUID: '1.2.3.101', referenced: '1.2.3.100' })
    const settings = init()
    const a = (await headerOf(dir, 'a.dcm', (await deidentifyBytes(first.bytes, settings)).out))
    const b = (await headerOf(dir, 'b.dcm', (await deidentifyBytes(second.bytes, settings)).out))
    expect(text(a.dataset, 0x0020000D)).toBe(text(b.dataset, 0x0020000D))
    expect(text(a.dataset, 0x0020000E)).toBe(text(b.dataset, 0x0020000E))
    expect(text(a.dataset, 0x0020000D)).not.toBe(ORIGINAL_STUDY)
    expect(text(a.dataset, 0x0020000D)).toMatch(/^2\.25\.[1-9][0-9]{0,38}$/)
    expect(text(a.dataset, 0x00080018)).not.toBe(text(b.dataset, 0x00080018))
    // Referenced Image Sequence (X/Z/U*) and Source Image Sequence keep their items, the UIDs replaced.
    for (const sq of [0x00081140, 0x00082112]) expect(text(b.dataset.get(sq)!.items![0]!, 0x00081155)).toBe(text(a.dataset, 0x00080018))
    // The File Meta follows the new SOP Instance UID.
    expect(text(a.meta!, 0x00020003)).toBe(text(a.dataset, 0x00080018))
    // The same key gives the same UIDs; another key others; the map never enters the output.
    const again = await deidentifyBytes(first.bytes, init())
    expect(text((await headerOf(dir, 'c.dcm', again.out)).dataset, 0x00080018)).toBe(text(a.dataset, 0x00080018))
    const other = await deidentifyBytes(first.bytes, { ...init(), map: createDeidentificationMap({ key: Buffer.alloc(32, 8) }) })
    expect(text((await headerOf(dir, 'd.dcm', other.out)).dataset, 0x00080018)).not.toBe(text(a.dataset, 0x00080018))
    expect(settings.map.entries()).toContainEqual({ kind: 'uid', original: ORIGINAL_STUDY, replacement: text(a.dataset, 0x0020000D) })
  })

  it('removes every private attribute, nested ones too, except an allow-listed one and the creator of its block', async () => {
    const dir = await tempDir('deid')
    const original = makeInstance({ sopInstanceUID: '1.2.3.2' })
    const none = (await headerOf(dir, 'a.dcm', (await deidentifyBytes(original.bytes, init())).out)).dataset
    expect([...none.keys()].filter((t) => ((t >>> 16) & 1) === 1)).toEqual([])
    const { out, record } = await deidentifyBytes(original.bytes, init([], { allowPrivate: [{ group: 0x0009, creator: 'ACME 1.0', element: 0x02 }] }))
    const kept = (await headerOf(dir, 'b.dcm', out)).dataset
    expect([...kept.keys()].filter((t) => ((t >>> 16) & 1) === 1)).toEqual([0x00090010, 0x00091002])
    expect(text(kept, 0x00091002)).toBe('keep me')
    expect(record.privateKept).toEqual(['(0009,1002)'])
  })

  it('copies pixel data through byte for byte, native and encapsulated, explicit and implicit VR, and drops what follows it', async () => {
    const dir = await tempDir('deid')
    const cases: Array<[string, InstanceInit]> = [
      ['native', { sopInstanceUID: '1.2.3.3' }],
      ['implicit', { sopInstanceUID: '1.2.3.4', syntax: IMPLICIT_LE }],
      ['encapsulated', { sopInstanceUID: '1.2.3.5', encapsulated: true }]
    ]
    for (const [name, c] of cases) {
      const original = makeInstance(c)
      const { out, record } = await deidentifyBytes(original.bytes, init(), 777)
      const parsed = await headerOf(dir, `${name}.dcm`, out)
      const from = parsed.headerEnd + (c.syntax === IMPLICIT_LE ? 8 : 12)
      expect(out.subarray(from).equals(original.pixels), name).toBe(true)
      expect(record.trailingBytesRemoved, name).toBeGreaterThan(0)
      expect(parsed.transferSyntaxUID).toBe(readHeader(join(dir, `${name}.dcm`)).transferSyntaxUID)
      const dump = await dcmtk('dcmdump', [join(dir, `${name}.dcm`)])
      expect(dump.code, `${name}: ${dump.stderr}`).toBe(0)
      expect(dump.stdout).toMatch(/\(0012,0062\) CS \[YES\]/)
      expect(dump.stdout).not.toMatch(/Jansen/i)
    }
  })

  it('refuses burned-in annotation unless a person confirms, and records who did', async () => {
    const refused: Array<[string, InstanceInit]> = [
      ['flag YES', { sopInstanceUID: '1.2.3.6', burnedIn: 'YES' }],
      ['ultrasound even with NO', { sopInstanceUID: '1.2.3.7', modality: 'US', sopClassUID: '1.2.840.10008.5.1.4.1.1.6.1', burnedIn: 'NO' }],
      ['secondary capture', { sopInstanceUID: '1.2.3.8', modality: 'OT', sopClassUID: '1.2.840.10008.5.1.4.1.1.7', burnedIn: 'NO' }],
      ['XA without the flag', { sopInstanceUID: '1.2.3.9', modality: 'XA' }]
    ]
    for (const [name, c] of refused) {
      const original = makeInstance({ ...c, everyAttribute: false })
      await expect(deidentifyInstance(chunked(original.bytes, 65536), init()), name).rejects.toMatchObject({ code: 'BEELDNET_ERR_BURNED_IN_ANNOTATION' })
      const { record } = await deidentifyBytes(original.bytes, init([], { confirmBurnedIn: { by: 'Dr. A. de Vries' } }))
      expect(record.burnedInAnnotation, name).toMatchObject({ confirmedBy: 'Dr. A. de Vries' })
    }
    for (const c of [{ sopInstanceUID: '1.2.3.10', modality: 'XA', burnedIn: 'NO' as const }, { sopInstanceUID: '1.2.3.11', modality: 'CT' }]) {
      const { record } = await deidentifyBytes(makeInstance({ ...c, everyAttribute: false }).bytes, init())
      expect(record.burnedInAnnotation).toBeUndefined()
    }
    await expect(deidentifyInstance(chunked(makeInstance({ sopInstanceUID: '1.2.3.12', burnedIn: 'YES', everyAttribute: false }).bytes, 65536), init([], { confirmBurnedIn: { by: ' ' } })))
      .rejects.toMatchObject({ code: 'BEELDNET_ERR_BURNED_IN_ANNOTATION' })
  })

  it('writes a file from a file (deidentifyFile) that the node imports into a fresh store as a study of its own', async () => {
    const dir = await tempDir('deid')
    const settings = init(['retain-dates'])
    await writeInstance(join(dir, 'a.in'), { sopInstanceUID: '1.2.3.20' })
    await writeInstance(join(dir, 'b.in'), { sopInstanceUID: '1.2.3.21', referenced: '1.2.3.20', syntax: IMPLICIT_LE })
    const outDir = await tempDir('deid-out')
    const a = await deidentifyFile(join(dir, 'a.in'), join(outDir, 'a.dcm'), settings)
    await deidentifyFile(join(dir, 'b.in'), join(outDir, 'b.dcm'), settings)
    const store = await openStore()
    const summary = await importFiles([outDir], { store })
    expect(summary.rejected).toEqual([])
    expect(summary.stored).toBe(2)
    const study = await store.getStudy(a.studyInstanceUID)
    expect(study.instances.map((i) => i.sopInstanceUID).sort()).toEqual([a.sopInstanceUID, settings.map.uid('1.2.3.21')].sort())
    expect(study.study.patient).toMatchObject({ name: '', id: settings.map.patientId(PATIENT_ID) })
    expect(study.study.patient.bsn).toBeUndefined()
    expect(await readdir(outDir)).toEqual(['a.dcm', 'b.dcm'])
  })
})

describe('exportDeidentified', () => {
  async function storeWithStudy (inits: InstanceInit[]): Promise<StudyStore> {
    const dir = await tempDir('originals')
    for (const [n, i] of inits.entries()) await writeInstance(join(dir, `${n}.dcm`), i)
    const store = await openStore()
    expect((await importFiles([dir], { store })).stored).toBe(inits.length)
    return store
  }

  it('writes the study de-identified with one map, returns the record and the map, and audits the export of the original naming the profile', async () => {
    const store = await storeWithStudy([{ sopInstanceUID: '1.2.3.30' }, { sopInstanceUID: '1.2.3.31', referenced: '1.2.3.30' }])
    const dir = await tempDir('export')
    const events: AuditEvent[] = []
    const sink = { record: async (e: AuditEvent) => { events.push(e); return { ...e, seq: 1, time: '', prev: '', hash: '' } } }
    const map: DeidentificationMap = createDeidentificationMap()
    const result = await exportDeidentified(store, ORIGINAL_STUDY, dir, { profile: parseProfile('basic,clean-descriptors'), map, audit: { sink, user: { system: 'test' } } })
    expect(result.files).toHaveLength(2)
    expect(result.map).toBe(map)
    expect(result.record).toMatchObject({ profile: 'basic,clean-descriptors', instances: 2, original: { studyInstanceUID: ORIGINAL_STUDY }, studyInstanceUID: map.uid(ORIGINAL_STUDY), burnedInAnnotation: [] })
    expect(result.record.counts.C).toBeGreaterThan(0)
    for (const file of result.files) {
      const bytes = await readFile(file)
      expect(bytes.includes(Buffer.from(ORIGINAL_STUDY))).toBe(false)
      expect(bytes.includes(Buffer.from('Jansen'))).toBe(false)
      expect(text(readHeader(file).dataset, 0x0020000D)).toBe(map.uid(ORIGINAL_STUDY))
    }
    expect(events).toEqual([expect.objectContaining({
      event: 'export',
      studyInstanceUID: ORIGINAL_STUDY,
      outcome: 'de-identified: 2 instance(s)',
      patient: expect.objectContaining({ bsn: PATIENT_ID }),
      details: expect.objectContaining({ deidentification: 'PS3.15 Annex E basic,clean-descriptors', deidentifiedStudyInstanceUID: map.uid(ORIGINAL_STUDY) })
    })])
  })

  it('writes nothing when one instance would be refused, and audits the refusal', async () => {
    const store = await storeWithStudy([{ sopInstanceUID: '1.2.3.40' }, { sopInstanceUID: '1.2.3.41', burnedIn: 'YES' }])
    const dir = await tempDir('export')
    const events: AuditEvent[] = []
    const sink = { record: async (e: AuditEvent) => { events.push(e); return { ...e, seq: 1, time: '', prev: '', hash: '' } } }
    await expect(exportDeidentified(store, ORIGINAL_STUDY, dir, { profile: parseProfile('basic'), audit: { sink, user: { system: 'test' } } }))
      .rejects.toMatchObject({ code: 'BEELDNET_ERR_BURNED_IN_ANNOTATION' })
    expect(await readdir(dir)).toEqual([])
    expect(events).toEqual([expect.objectContaining({ event: 'export', outcome: 'refused: BEELDNET_ERR_BURNED_IN_ANNOTATION' })])
    const confirmed = await exportDeidentified(store, ORIGINAL_STUDY, dir, { profile: parseProfile('basic'), confirmBurnedIn: { by: 'Dr. B' } })
    expect(confirmed.record.burnedInAnnotation).toEqual([expect.objectContaining({ original: '1.2.3.41', confirmedBy: 'Dr. B' })])
  })
})
