import { readFile, readdir, stat } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import {
  CHARSETS, generateStudy, samplePatients, type StudySpec, type TransferSyntaxName
} from '../../../simulations/generator/index.ts'
import { dcmdump, dcmtk, listFiles, readWithDcmjs, useTempDirs } from './helpers.ts'

const tempDir = useTempDirs()

const SYNTAXES: Array<[TransferSyntaxName, string]> = [
  ['explicit-le', '1.2.840.10008.1.2.1'],
  ['implicit-le', '1.2.840.10008.1.2'],
  ['explicit-be', '1.2.840.10008.1.2.2'],
  ['rle', '1.2.840.10008.1.2.5'],
  ['jpeg-baseline', '1.2.840.10008.1.2.4.50'],
  ['jpeg-ls', '1.2.840.10008.1.2.4.80'],
  ['jpeg2000', '1.2.840.10008.1.2.4.90']
]

/** Position of a (7FE0,0010) element header in the given encoding, searching from the end. */
function pixelDataAt (bytes: Buffer, header: string): number {
  return bytes.lastIndexOf(Buffer.from(header, 'hex'))
}

describe('generateStudy', () => {
  it.each(SYNTAXES)('writes %s files that dcmdump and dcmjs parse', async (name, uid) => {
    const dir = await tempDir()
    const study = await generateStudy(dir, {
      seed: 11,
      patient: { name: 'Öztürk^Ayşe', charset: 'utf8' },
      series: [
        { modality: 'CT', instances: 2, rows: 64, columns: 64, transferSyntax: name },
        { modality: 'US', instances: 1, rows: 48, columns: 64, transferSyntax: name }
      ]
    })
    expect(study.instances).toHaveLength(3)
    for (const inst of study.instances) {
      expect(inst.transferSyntaxUID).toBe(uid)
      const dump = await dcmdump(inst.path)
      expect(dump).toContain(inst.sopInstanceUID)
      if (name === 'rle' || name.startsWith('jpeg')) expect(dump).toMatch(/PixelSequence #=2/) // BOT + fragment
      const bytes = await readFile(inst.path)
      expect(bytes.length).toBe(inst.size)
      const ds = readWithDcmjs(bytes)
      expect(ds._meta).toMatchObject({ TransferSyntaxUID: uid, MediaStorageSOPInstanceUID: inst.sopInstanceUID })
      expect(ds).toMatchObject({
        SOPInstanceUID: inst.sopInstanceUID,
        SeriesInstanceUID: inst.seriesInstanceUID,
        StudyInstanceUID: study.studyInstanceUID,
        SOPClassUID: inst.sopClassUID,
        PatientID: study.patient.id,
        AccessionNumber: study.accession,
        Modality: inst.modality
      })
      expect(ds.PatientName).toEqual([{ Alphabetic: 'Öztürk^Ayşe' }])
      expect(ds.Rows).toBe(inst.modality === 'CT' ? 64 : 48)
    }
  })

  it('stores the same pixels in every native and RLE syntax (checked by dcmtk decoding)', async () => {
    const dir = await tempDir()
    const pixels: Record<string, Buffer> = {}
    for (const ts of ['explicit-le', 'explicit-be', 'rle', 'implicit-le'] as const) {
      const study = await generateStudy(`${dir}/${ts}`, {
        seed: 4, series: [{ modality: 'CT', instances: 1, frames: 2, rows: 40, columns: 50, transferSyntax: ts }]
      })
      const path = study.instances[0]!.path
      if (ts === 'rle') await dcmtk('dcmdrle', [path, `${path}.le`])
      if (ts === 'explicit-be' || ts === 'implicit-le') await dcmtk('dcmconv', ['+te', path, `${path}.le`])
      const bytes = await readFile(ts === 'explicit-le' ? path : `${path}.le`)
      pixels[ts] = bytes.subarray(bytes.length - 2 * 40 * 50 * 2)
    }
    expect(pixels['rle']!.equals(pixels['explicit-le']!)).toBe(true)
    expect(pixels['explicit-be']!.equals(pixels['explicit-le']!)).toBe(true)
    expect(pixels['implicit-le']!.equals(pixels['explicit-le']!)).toBe(true)
  })

  it('writes a bare implicit VR dataset for part10: false', async () => {
    const dir = await tempDir()
    const study = await generateStudy(dir, { seed: 2, series: [{ modality: 'MR', instances: 1, rows: 32, columns: 32, part10: false }] })
    const inst = study.instances[0]!
    const bytes = await readFile(inst.path)
    expect(inst.transferSyntaxUID).toBe('1.2.840.10008.1.2')
    expect(bytes.subarray(128, 132).toString('latin1')).not.toBe('DICM')
    expect(bytes.subarray(0, 2).toString('hex')).toBe('0800') // group 0008 straight away
    const dump = await dcmdump(inst.path)
    expect(dump).toContain('Little Endian Implicit')
    expect(dump).toContain(inst.sopInstanceUID)
    // Implicit VR LE: tag, 4-byte length, value.
    const px = pixelDataAt(bytes, 'e07f1000')
    expect(bytes.readUInt32LE(px + 4)).toBe(32 * 32 * 2)
    expect(bytes.length).toBe(px + 8 + 32 * 32 * 2)
  })

  it('rejects part10: false with another transfer syntax', async () => {
    const dir = await tempDir()
    await expect(generateStudy(dir, { series: [{ modality: 'CT', instances: 1, part10: false, transferSyntax: 'rle' }] }))
      .rejects.toMatchObject({ code: 'BEELDNET_ERR_INVALID_GENERATOR_SPEC' })
  })

  it('takes pixel spacing, slice step, frame time and burned-in markers from the spec', async () => {
    const dir = await tempDir()
    const marker = { column: 10, row: 20, size: 3, value: 4000 }
    const study = await generateStudy(dir, {
      seed: 4,
      series: [
        { modality: 'CT', instances: 3, rows: 48, columns: 64, pixelSpacingMm: 0.5, sliceStepMm: 2.5, markers: [{ ...marker, step: { columns: 1, rows: 2 } }] },
        { modality: 'US', instances: 1, frames: 4, rows: 40, columns: 40, frameTimeMs: 33.3, markers: [{ column: 5, row: 30, value: 255, step: { columns: 8, rows: 0 } }] }
      ]
    })
    for (const [i, inst] of study.instances.slice(0, 3).entries()) {
      const ds = readWithDcmjs(await readFile(inst.path))
      expect(ds).toMatchObject({ PixelSpacing: [0.5, 0.5], ImagePositionPatient: [-16, -12, 2.5 * i], SliceLocation: 2.5 * i })
      // Native 16-bit LE pixels: the 3x3 square sits one column right and two rows down per instance.
      const px = new Uint16Array((ds.PixelData as ArrayBuffer[])[0]!)
      const at = (x: number, y: number): number => px[y * 64 + x]!
      const [x, y] = [marker.column + i, marker.row + 2 * i]
      for (const [dx, dy] of [[-1, -1], [0, 0], [1, 1], [1, -1]]) expect(at(x + dx!, y + dy!)).toBe(4000)
      expect(at(x + 2, y)).not.toBe(4000)
    }
    const us = readWithDcmjs(await readFile(study.instances[3]!.path))
    expect(us).toMatchObject({ NumberOfFrames: 4, FrameTime: 33.3, CineRate: 30, RecommendedDisplayFrameRate: 30, PreferredPlaybackSequencing: 0 })
    const frames = new Uint8Array((us.PixelData as ArrayBuffer[])[0]!)
    for (let f = 0; f < 4; f++) expect(frames[f * 1600 + 30 * 40 + 5 + 8 * f]).toBe(255)
    // Without the options: FrameTime 40 and no cine rates, as before.
    const plain = await generateStudy(dir, { seed: 4, series: [{ modality: 'US', instances: 1, frames: 2, rows: 16, columns: 16 }] })
    const ds = readWithDcmjs(await readFile(plain.instances[0]!.path))
    expect(ds.FrameTime).toBe(40)
    expect(ds.CineRate).toBeUndefined()
  })

  it.each([
    { pixelSpacingMm: 0 }, { frameTimeMs: -1 }, { sliceStepMm: Number.NaN }, { markers: [{ column: 1, row: 1, size: 4, value: 1 }] },
    { markers: [{ column: 1, row: 1, value: 4096 }] }, { markers: [{ column: 1.5, row: 1, value: 1 }] }
  ])('rejects %o', async (bad) => {
    await expect(generateStudy(await tempDir(), { series: [{ modality: 'CT', instances: 1, rows: 8, columns: 8, ...bad }] }))
      .rejects.toMatchObject({ code: 'BEELDNET_ERR_INVALID_GENERATOR_SPEC' })
  })

  it.each(samplePatients().map((p) => [p.charset, p] as const))('writes %s names with the bytes the charset prescribes', async (charset, patient) => {
    const dir = await tempDir()
    const study = await generateStudy(dir, { seed: 3, patient, series: [{ modality: 'CT', instances: 1, rows: 16, columns: 16 }] })
    expect(study.patient.name).toBe(patient.name)
    const bytes = await readFile(study.instances[0]!.path)
    // (0010,0010) PN in explicit VR LE: tag, 'PN', 2-byte length, value.
    const at = bytes.indexOf(Buffer.from('10001000504e', 'hex'), 132)
    const value = bytes.subarray(at + 8, at + 8 + bytes.readUInt16LE(at + 6))
    const cs = CHARSETS[charset!]
    const expected = Buffer.from(cs.encode(patient.name!))
    expect(value.subarray(0, expected.length).equals(expected)).toBe(true)
    expect(value.length - expected.length).toBeLessThanOrEqual(1)
    const label = { ascii: 'ascii', latin1: 'latin1', utf8: 'utf-8', greek: 'iso-8859-7', japanese: 'iso-2022-jp' }[charset!]
    expect(new TextDecoder(label).decode(value).trimEnd()).toBe(patient.name)
    const dump = await dcmdump(study.instances[0]!.path)
    if (cs.terms.length > 0) expect(dump).toContain(`SpecificCharacterSet`)
    if (charset === 'japanese') {
      expect(dump).toContain('[\\ISO 2022 IR 87]')
    } else {
      // dcmtk converts to UTF-8 itself (its iconv build cannot do ISO 2022 IR 87, hence not for Japanese).
      expect(await dcmdump(study.instances[0]!.path, '+U8')).toContain(`[${patient.name}]`)
    }
    if (charset !== 'japanese') {
      // dcmjs decodes single-byte and UTF-8 charsets but refuses ISO 2022 code extensions.
      const ds = readWithDcmjs(bytes)
      expect(ds.PatientName).toBeDefined()
    }
  })

  it('is byte-identical for the same seed and different for another', async () => {
    const spec: StudySpec = {
      seed: 77,
      patient: samplePatients()[1],
      series: [
        { modality: 'CT', instances: 3, rows: 32, columns: 32 },
        { modality: 'US', instances: 1, frames: 3, rows: 32, columns: 32, transferSyntax: 'rle' },
        { modality: 'CR', instances: 1, rows: 32, columns: 32, transferSyntax: 'jpeg2000' }
      ],
      reports: { sr: true, pdf: true }
    }
    const [a, b, c] = [await tempDir(), await tempDir(), await tempDir()]
    const sa = await generateStudy(a, spec)
    const sb = await generateStudy(b, spec)
    await generateStudy(c, { ...spec, seed: 78 })
    expect(sb.studyInstanceUID).toBe(sa.studyInstanceUID)
    const fa = await listFiles(a)
    const fb = await listFiles(b)
    const fc = await listFiles(c)
    expect(fa.map((f) => f.slice(a.length))).toEqual(fb.map((f) => f.slice(b.length)))
    for (let i = 0; i < fa.length; i++) {
      expect((await readFile(fa[i]!)).equals(await readFile(fb[i]!))).toBe(true)
      expect((await readFile(fa[i]!)).equals(await readFile(fc[i]!))).toBe(false)
    }
    // File names never come from UIDs.
    for (const f of fa) expect(f).not.toMatch(/2\.25\./)
  })

  it('writes a multi-frame instance of exactly the expected size', async () => {
    const dir = await tempDir()
    const frames = 50
    const study = await generateStudy(dir, { seed: 5, series: [{ modality: 'CT', instances: 1, frames, rows: 128, columns: 96 }] })
    const inst = study.instances[0]!
    expect(inst.sopClassUID).toBe('1.2.840.10008.5.1.4.1.1.7.3')
    const bytes = await readFile(inst.path)
    const pixelBytes = frames * 128 * 96 * 2
    const px = pixelDataAt(bytes, 'e07f10004f570000') // explicit VR LE: tag, 'OW', reserved, 4-byte length
    expect(bytes.readUInt32LE(px + 8)).toBe(pixelBytes)
    expect(inst.size).toBe(px + 12 + pixelBytes)
    expect((await stat(inst.path)).size).toBe(inst.size)
    const dump = await dcmdump(inst.path)
    expect(dump).toMatch(/\(0028,0008\) IS \[50\]/)
  })

  it('fills the Basic Offset Table of encapsulated multi-frame instances', async () => {
    const dir = await tempDir()
    const study = await generateStudy(dir, { seed: 5, series: [{ modality: 'US', instances: 1, frames: 5, rows: 40, columns: 40, transferSyntax: 'rle' }] })
    const bytes = await readFile(study.instances[0]!.path)
    const px = pixelDataAt(bytes, 'e07f10004f420000ffffffff')
    expect(bytes.subarray(px + 12, px + 16).toString('hex')).toBe('feff00e0')
    expect(bytes.readUInt32LE(px + 16)).toBe(5 * 4)
    const first = px + 20 + 5 * 4
    for (let i = 0; i < 5; i++) {
      const at = first + bytes.readUInt32LE(px + 20 + 4 * i)
      expect(bytes.subarray(at, at + 4).toString('hex')).toBe('feff00e0')
      expect(bytes.readUInt32LE(at + 4) % 2).toBe(0)
    }
    expect(bytes.subarray(bytes.length - 8).toString('hex')).toBe('feffdde000000000')
  })

  it('writes a Basic Text SR and an Encapsulated PDF in the same study, own series', async () => {
    const dir = await tempDir()
    const study = await generateStudy(dir, {
      seed: 8,
      series: [{ modality: 'CT', instances: 2, rows: 16, columns: 16 }],
      reports: { sr: true, pdf: true }
    })
    const [img, , sr, pdf] = study.instances
    expect(sr).toMatchObject({ isReport: true, modality: 'SR', sopClassUID: '1.2.840.10008.5.1.4.1.1.88.11' })
    expect(pdf).toMatchObject({ isReport: true, modality: 'DOC', sopClassUID: '1.2.840.10008.5.1.4.1.1.104.1' })
    expect(new Set([img!.seriesInstanceUID, sr!.seriesInstanceUID, pdf!.seriesInstanceUID]).size).toBe(3)
    const s = readWithDcmjs(await readFile(sr!.path))
    expect(s).toMatchObject({
      StudyInstanceUID: study.studyInstanceUID, Modality: 'SR', ValueType: 'CONTAINER',
      CompletionFlag: 'COMPLETE', VerificationFlag: 'VERIFIED'
    })
    expect((s.ConceptNameCodeSequence as Array<Record<string, unknown>>)[0]).toMatchObject({ CodeValue: '18748-4', CodingSchemeDesignator: 'LN' })
    const content = s.ContentSequence as Array<Record<string, unknown>>
    expect(content.map((c) => c.ValueType)).toEqual(['TEXT', 'TEXT', 'TEXT'])
    expect(content[2]!.TextValue).toMatch(/longembolie/)
    await dcmdump(sr!.path)
    const p = readWithDcmjs(await readFile(pdf!.path))
    expect(p).toMatchObject({ Modality: 'DOC', MIMETypeOfEncapsulatedDocument: 'application/pdf', DocumentTitle: 'Radiologieverslag' })
    const raw = p.EncapsulatedDocument as ArrayBuffer | ArrayBuffer[] // dcmjs gives binary values as [ArrayBuffer]
    const doc = Buffer.from(Array.isArray(raw) ? raw[0]! : raw)
    expect(p.EncapsulatedDocumentLength).toBe(doc.toString('latin1').lastIndexOf('%%EOF') + 6)
    expect(doc.subarray(0, 8).toString()).toBe('%PDF-1.4')
    expect(doc.toString('latin1')).toContain('(Radiology report) Tj')
    expect(doc.toString('latin1').replace(/[\0\s]+$/, '').endsWith('%%EOF')).toBe(true) // may be padded to even
    await dcmdump(pdf!.path)
  })

  it('stops on abort and leaves no partial file', async () => {
    const dir = await tempDir()
    await expect(generateStudy(dir, { series: [{ modality: 'CT', instances: 1 }] }, AbortSignal.abort()))
      .rejects.toMatchObject({ name: 'AbortError' })
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 20)
    await expect(generateStudy(dir, { series: [{ modality: 'CT', instances: 1, frames: 2000, rows: 256, columns: 256 }] }, ac.signal))
      .rejects.toMatchObject({ name: 'AbortError' })
    expect(await listFiles(dir)).toEqual([])
    expect(await readdir(dir)).toBeDefined()
  })
})
