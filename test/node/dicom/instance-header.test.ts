import { readFile, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readInstanceHeader } from '../../../node/dicom/instance-header.ts'
import { generateStudy, type TransferSyntaxName } from '../../../simulations/generator/index.ts'
import { element, itemHeader, part10, uidElements } from '../../helpers/dicom-bytes.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

const tempDir = useTempDirs()

function codeOf (fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return (err as { code?: string }).code
  }
  return undefined
}

/** Replaces the first occurrence of `from` (an element's tag bytes, say) with `to` of the same length. */
function patch (bytes: Buffer, from: Buffer, to: Buffer): Buffer {
  const at = bytes.indexOf(from)
  expect(at).toBeGreaterThan(-1)
  const out = Buffer.from(bytes)
  to.copy(out, at)
  return out
}

describe('readInstanceHeader', () => {
  const syntaxes: Array<[TransferSyntaxName, string]> = [
    ['explicit-le', '1.2.840.10008.1.2.1'],
    ['implicit-le', '1.2.840.10008.1.2'],
    ['explicit-be', '1.2.840.10008.1.2.2'],
    ['rle', '1.2.840.10008.1.2.5'],
    ['jpeg-baseline', '1.2.840.10008.1.2.4.50'],
    ['jpeg-ls', '1.2.840.10008.1.2.4.80'],
    ['jpeg2000', '1.2.840.10008.1.2.4.90']
  ]
  it.each(syntaxes)('indexes a %s instance without decoding its pixels', async (name, uid) => {
    const dir = await tempDir()
    const study = await generateStudy(dir, {
      seed: 7,
      accession: 'ACC7',
      description: 'CT thorax',
      patient: { id: 'P7', issuer: 'HOSP', name: 'Jansen^Piet', bsn: '111222333', birthDate: '19600101', sex: 'M' },
      series: [{ modality: name === 'jpeg-baseline' ? 'US' : 'CT', instances: 1, rows: 64, columns: 64, transferSyntax: name }]
    })
    const instance = study.instances[0]!
    const header = readInstanceHeader(instance.path)
    expect(header.transferSyntaxUID).toBe(uid)
    expect(header.part10).toBe(true)
    expect(header.sopInstanceUID).toBe(instance.sopInstanceUID)
    expect(header.studyInstanceUID).toBe(study.studyInstanceUID)
    expect(header.seriesInstanceUID).toBe(instance.seriesInstanceUID)
    expect(header.sopClassUID).toBe(instance.sopClassUID)
    expect(header.patient).toMatchObject({ id: 'P7', issuer: 'HOSP', name: 'Jansen^Piet', bsn: '111222333', birthDate: '19600101', sex: 'M' })
    expect(header.study).toMatchObject({ accessionNumber: 'ACC7', description: 'CT thorax', date: study.studyDate })
    expect(header.instance).toMatchObject({ rows: 64, columns: 64, frames: 1, isReport: false })
  })

  it('reads a bare dataset without preamble or File Meta as implicit VR little endian', async () => {
    const dir = await tempDir()
    const study = await generateStudy(dir, { seed: 3, series: [{ modality: 'CT', instances: 1, rows: 32, columns: 32, part10: false }] })
    const bytes = await readFile(study.instances[0]!.path)
    expect(bytes.subarray(128, 132).toString('latin1')).not.toBe('DICM')
    const header = readInstanceHeader(study.instances[0]!.path)
    expect(header.part10).toBe(false)
    expect(header.transferSyntaxUID).toBe('1.2.840.10008.1.2')
    expect(header.sopInstanceUID).toBe(study.instances[0]!.sopInstanceUID)
    expect(header.instance.rows).toBe(32)
  })

  it.each([
    ['latin1', 'Müller^Jürgen'],
    ['utf8', 'Öztürk^Şeyma'],
    ['greek', 'Διονυσιος^Νικος'],
    ['japanese', 'Yamada^Tarou=山田^太郎=やまだ^たろう']
  ] as const)('decodes a %s patient name', async (charset, name) => {
    const dir = await tempDir()
    const study = await generateStudy(dir, { seed: 5, patient: { name, charset }, series: [{ modality: 'MR', instances: 1, rows: 16, columns: 16 }] })
    expect(readInstanceHeader(study.instances[0]!.path).patient.name).toBe(name)
  })

  it('reads a large multi-frame header from the front of the file only', async () => {
    const dir = await tempDir()
    const study = await generateStudy(dir, { seed: 9, series: [{ modality: 'CT', instances: 1, rows: 256, columns: 256, frames: 40 }] })
    const header = readInstanceHeader(study.instances[0]!.path)
    expect(header.instance.frames).toBe(40)
    expect(study.instances[0]!.size).toBeGreaterThan(40 * 256 * 256 * 2)
  })

  it('flags structured reports and encapsulated PDFs as reports, with their titles', async () => {
    const dir = await tempDir()
    const study = await generateStudy(dir, { seed: 11, series: [{ modality: 'CT', instances: 1, rows: 16, columns: 16 }], reports: { sr: true, pdf: true } })
    const reports = study.instances.filter((i) => i.isReport).map((i) => readInstanceHeader(i.path))
    expect(reports.map((r) => r.sopClassUID).sort()).toEqual(
      [...study.instances.filter((i) => i.isReport).map((i) => i.sopClassUID)].sort())
    expect(reports).toHaveLength(2)
    for (const r of reports) {
      expect(r.instance.isReport).toBe(true)
      expect(r.instance.title).toBeTruthy()
    }
    const sr = reports.find((r) => r.series.modality === 'SR')!
    expect(sr.instance).toMatchObject({ title: 'Diagnostic imaging report', completionFlag: 'COMPLETE', verificationFlag: 'VERIFIED' })
  })

  describe('rejects unusable files with a stable code', () => {
    async function oneInstance (): Promise<{ path: string, bytes: Buffer, dir: string, sop: string }> {
      const dir = await tempDir()
      const study = await generateStudy(dir, { seed: 13, series: [{ modality: 'CT', instances: 1, rows: 64, columns: 64 }] })
      const instance = study.instances[0]!
      return { path: instance.path, bytes: await readFile(instance.path), dir, sop: instance.sopInstanceUID }
    }

    it('a truncated file', async () => {
      const { bytes, dir } = await oneInstance()
      const cut = join(dir, 'cut')
      await writeFile(cut, bytes.subarray(0, bytes.length - 1000))
      expect(codeOf(() => readInstanceHeader(cut))).toBe('BEELDNET_ERR_DICOM_TRUNCATED')
      // cut inside the header, too
      await writeFile(cut, bytes.subarray(0, 300))
      expect(codeOf(() => readInstanceHeader(cut))).toBe('BEELDNET_ERR_DICOM_TRUNCATED')
    })

    it('a file that is not DICOM', async () => {
      const { dir } = await oneInstance()
      const text = join(dir, 'readme.txt')
      await writeFile(text, 'This disc contains a DICOM viewer. Run setup.exe to install it.\n'.repeat(10))
      expect(codeOf(() => readInstanceHeader(text))).toBe('BEELDNET_ERR_NOT_DICOM')
      const empty = join(dir, 'empty')
      await writeFile(empty, '')
      expect(codeOf(() => readInstanceHeader(empty))).toBe('BEELDNET_ERR_NOT_DICOM')
    })

    it('a dataset without a SOP Instance UID', async () => {
      const { bytes, dir } = await oneInstance()
      // retag (0008,0018) SOP Instance UID as (0008,0017), keeping VR and order: the UID is simply gone
      const noUid = join(dir, 'no-uid')
      await writeFile(noUid, patch(bytes, Buffer.from([0x08, 0x00, 0x18, 0x00, 0x55, 0x49]), Buffer.from([0x08, 0x00, 0x17, 0x00, 0x55, 0x49])))
      expect(codeOf(() => readInstanceHeader(noUid))).toBe('BEELDNET_ERR_DICOM_MISSING_UID')
    })

    it('a UID that is not digits and dots', async () => {
      const { bytes, dir, sop } = await oneInstance()
      const bad = join(dir, 'bad-uid')
      const broken = sop.slice(0, -1) + 'x'
      const at = bytes.lastIndexOf(Buffer.from(sop))
      const out = Buffer.from(bytes)
      Buffer.from(broken).copy(out, at)
      await writeFile(bad, out)
      expect(codeOf(() => readInstanceHeader(bad))).toBe('BEELDNET_ERR_DICOM_INVALID_UID')
    })

    it('an element without a valid VR', async () => {
      const { bytes, dir } = await oneInstance()
      const bad = join(dir, 'bad-vr')
      // the SOP Instance UID's VR 'UI' becomes 'Q!'
      await writeFile(bad, patch(bytes, Buffer.from([0x08, 0x00, 0x18, 0x00, 0x55, 0x49]), Buffer.from([0x08, 0x00, 0x18, 0x00, 0x51, 0x21])))
      expect(codeOf(() => readInstanceHeader(bad))).toBe('BEELDNET_ERR_DICOM_MALFORMED')
    })
  })
})

describe('readInstanceHeader on damaged files', () => {
  it('answers every corrupted header with a result or a coded error, never a crash', async () => {
    const dir = await tempDir()
    const study = await generateStudy(dir, {
      seed: 17,
      patient: { name: 'Yamada^Tarou=山田^太郎=やまだ^たろう', charset: 'japanese' },
      series: [{ modality: 'CT', instances: 1, rows: 16, columns: 16 }, { modality: 'CT', instances: 1, rows: 16, columns: 16, transferSyntax: 'implicit-le' }],
      reports: { sr: true }
    })
    // a fixed-seed mutation run: flip bytes and cut files in the header region
    let seed = 12345
    const random = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n }
    const target = join(dir, 'mutant')
    const outcomes = new Map<string, number>()
    for (const instance of study.instances) {
      const original = await readFile(instance.path)
      for (let round = 0; round < 150; round++) {
        const bytes = Buffer.from(original)
        for (let flips = 1 + random(4); flips > 0; flips--) bytes[random(Math.min(bytes.length, 1500))] = random(256)
        await writeFile(target, round % 5 === 0 ? bytes.subarray(0, random(bytes.length)) : bytes)
        let outcome = 'parsed'
        try {
          readInstanceHeader(target)
        } catch (err) {
          outcome = (err as { code?: unknown }).code as string
          expect(outcome, String(err)).toMatch(/^BEELDNET_ERR_/)
        }
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
      }
    }
    expect(outcomes.size).toBeGreaterThan(2)
  })
})

describe('readInstanceHeader limits', () => {
  it('refuses a header with more elements than any real one has', async () => {
    const dir = await tempDir()
    const study = await generateStudy(dir, { seed: 19, series: [{ modality: 'CT', instances: 1, rows: 16, columns: 16 }] })
    expect(() => readInstanceHeader(study.instances[0]!.path, { maxElements: 10 })).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_DICOM_HEADER_TOO_LARGE' }))
    expect(() => readInstanceHeader(study.instances[0]!.path, { maxHeaderBytes: 200 })).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_DICOM_HEADER_TOO_LARGE' }))
  })
})

describe('readInstanceHeader against hostile and unusual files', () => {
  it('refuses a sequence of millions of empty items without spending memory on them', async () => {
    const dir = await tempDir()
    const path = join(dir, 'items')
    const items = Buffer.alloc(8 * 400_000)
    for (let i = 0; i < 400_000; i++) itemHeader(0).copy(items, i * 8)
    await writeFile(path, part10('1.2.840.10008.1.2.1', Buffer.concat([uidElements(), element(0x0008, 0x1115, 'SQ', items, 0xFFFFFFFF)])))
    expect(codeOf(() => readInstanceHeader(path))).toBe('BEELDNET_ERR_DICOM_HEADER_TOO_LARGE')
  })

  it('indexes a 1.5 GB instance from its header without reading the pixel data', async () => {
    const dir = await tempDir()
    const path = join(dir, 'huge')
    const pixelLength = 1_500_000_000
    const header = part10('1.2.840.10008.1.2.1', Buffer.concat([uidElements(), element(0x0028, 0x0008, 'IS', '2861'), element(0x7FE0, 0x0010, 'OW', Buffer.alloc(0), pixelLength)]))
    await writeFile(path, header)
    await truncate(path, header.length + pixelLength) // sparse: the pixels are never on disk
    const header1 = readInstanceHeader(path)
    expect(header1.instance.frames).toBe(2861)
    await truncate(path, header.length + pixelLength - 1)
    expect(codeOf(() => readInstanceHeader(path))).toBe('BEELDNET_ERR_DICOM_TRUNCATED')
  })

  it('refuses an unknown character set by code', async () => {
    const dir = await tempDir()
    const charset = join(dir, 'charset')
    await writeFile(charset, part10('1.2.840.10008.1.2.1', Buffer.concat([element(0x0008, 0x0005, 'CS', 'ISO_IR 999'), uidElements()])))
    expect(codeOf(() => readInstanceHeader(charset))).toBe('BEELDNET_ERR_DICOM_CHARSET')
  })

  it('accepts UIDs with leading zeros in a component, as some vendors write them', async () => {
    const dir = await tempDir()
    const path = join(dir, 'zeros')
    await writeFile(path, part10('1.2.840.10008.1.2.1', Buffer.concat([
      element(0x0008, 0x0016, 'UI', '1.2.840.10008.5.1.4.1.1.7'), element(0x0008, 0x0018, 'UI', '1.3.12.2.1107.5.1.4.088726'),
      element(0x0020, 0x000D, 'UI', '1.2.3.04'), element(0x0020, 0x000E, 'UI', '1.2.3.05')
    ])))
    expect(readInstanceHeader(path).sopInstanceUID).toBe('1.3.12.2.1107.5.1.4.088726')
  })
})
