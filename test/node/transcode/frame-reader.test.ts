import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readHeader } from '../../../node/dicom/dataset-reader.ts'
import { openFrames } from '../../../node/transcode/frame-reader.ts'
import { openNativeDataset } from '../../../node/transcode/native-dataset.ts'
import { generateStudy } from '../../../simulations/generator/index.ts'
import { dcmtk } from '../../helpers/dcmtk.ts'

/*
 * Frames of encapsulated pixel data found however the encoder laid out its fragments: one per frame,
 * several per frame with a Basic Offset Table, several per frame with an empty one (grouped by the
 * codestream's start marker); and deflated native pixel data, frame by frame. Each decodes to
 * dcmdjpeg's (or the original's) pixels.
 */

describe('reading the frames of a stored instance', () => {
  let work: string
  let original: string
  let reference: Buffer
  const frames = 6
  const frameBytes = 64 * 64 * 2

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'beeldnet-frames-'))
    const study = await generateStudy(join(work, 'study'), { seed: 1417, series: [{ modality: 'CT', instances: 1, rows: 64, columns: 64, frames }] })
    original = study.instances[0]!.path
    const header = readHeader(original)
    reference = (await readFile(original)).subarray(header.pixelDataOffset!, header.pixelDataOffset! + header.pixelDataLength!)
  })

  afterAll(async () => {
    await rm(work, { recursive: true, force: true })
  })

  async function decodedPixels (path: string): Promise<Buffer> {
    const native = await openNativeDataset(path)
    const bytes = Buffer.concat([...native.chunks()])
    const out = join(work, 'decoded.dcm')
    const { writeFile } = await import('node:fs/promises')
    const { fileMetaInformation } = await import('../../../node/dicom/file-meta.ts')
    await writeFile(out, Buffer.concat([fileMetaInformation({ sopClassUID: '1.2.840.10008.5.1.4.1.1.7.3', sopInstanceUID: '1.2.3', transferSyntaxUID: native.transferSyntaxUID }), bytes]))
    const header = readHeader(out)
    return (await readFile(out)).subarray(header.pixelDataOffset!, header.pixelDataOffset! + header.pixelDataLength!)
  }

  for (const [what, options] of [
    ['one fragment per frame', []],
    ['1 KiB fragments with a Basic Offset Table', ['+fs', '1']],
    ['1 KiB fragments and an empty offset table', ['+fs', '1', '-ot']]
  ] as const) {
    it(`finds and decodes every frame of JPEG lossless with ${what}`, async () => {
      const path = join(work, `${what.replace(/\W+/g, '-')}.dcm`)
      expect((await dcmtk('dcmcjpeg', ['+e1', ...options, original, path])).code).toBe(0)
      // The offset table item and the fragments, as dcmdump lists them: more fragments than frames when split.
      const items = (await dcmtk('dcmdump', [path])).stdout.split('\n').filter((l) => /\(fffe,e000\) pi/.test(l)).length
      expect(options.length === 0 ? items === frames + 1 : items > frames + 1).toBe(true)
      const source = openFrames(path)
      try {
        expect(source.encapsulated).toBe(true)
        expect(source.layout.frames).toBe(frames)
        // Each frame is one JPEG codestream: it starts with SOI and ends with EOI.
        for (const frame of source.frames()) {
          expect(frame.readUInt16BE(0)).toBe(0xFFD8)
          expect(frame.subarray(0, frame.length).lastIndexOf(Buffer.from([0xFF, 0xD9]))).toBeGreaterThan(frame.length - 4)
        }
      } finally {
        source.close()
      }
      expect((await decodedPixels(path)).equals(reference)).toBe(true)
    })
  }

  it('decodes HTJ2K (lossless, made by dcmjs-codecs) to the original pixels', async () => {
    type Codecs = typeof import('dcmjs-codecs')
    const codecs = (await import('node:module')).createRequire(import.meta.url)('dcmjs-codecs') as Codecs
    codecs.log.setLevel('silent')
    if (!codecs.NativeCodecs.isInitialized()) await codecs.NativeCodecs.initializeAsync()
    const file = await readFile(original)
    const transcoder = new codecs.Transcoder(file.buffer.slice(file.byteOffset, file.byteOffset + file.length))
    transcoder.transcode('1.2.840.10008.1.2.4.201')
    const path = join(work, 'htj2k.dcm')
    const { writeFile } = await import('node:fs/promises')
    await writeFile(path, Buffer.from(transcoder.getDicomPart10()))
    expect(readHeader(path).transferSyntaxUID).toBe('1.2.840.10008.1.2.4.201')
    expect((await decodedPixels(path)).equals(reference)).toBe(true)
  })

  it('reads a deflated instance\'s native frames by inflating, one at a time or in order', async () => {
    const path = join(work, 'deflated.dcm')
    expect((await dcmtk('dcmconv', ['+td', original, path])).code).toBe(0)
    const source = openFrames(path)
    try {
      expect(source.encapsulated).toBe(false)
      expect(source.frame(4).equals(reference.subarray(3 * frameBytes, 4 * frameBytes))).toBe(true)
      expect(Buffer.concat([...source.frames()]).equals(reference)).toBe(true)
    } finally {
      source.close()
    }
    expect((await decodedPixels(path)).equals(reference)).toBe(true)
  })

  it('gives an instance without pixel data (a structured report) in Implicit VR Little Endian, as dcmconv +ti does', async () => {
    const study = await generateStudy(join(work, 'report'), { seed: 1418, series: [{ modality: 'CT', instances: 1, rows: 16, columns: 16 }], reports: { sr: true } })
    const sr = study.instances.find((i) => i.isReport)!
    const native = await openNativeDataset(sr.path, { transferSyntaxUID: '1.2.840.10008.1.2' })
    const { writeFile } = await import('node:fs/promises')
    const { fileMetaInformation } = await import('../../../node/dicom/file-meta.ts')
    const ours = join(work, 'sr-implicit.dcm')
    await writeFile(ours, Buffer.concat([fileMetaInformation({ sopClassUID: sr.sopClassUID, sopInstanceUID: sr.sopInstanceUID, transferSyntaxUID: native.transferSyntaxUID }), ...native.chunks()]))
    const theirs = join(work, 'sr-dcmconv.dcm')
    expect((await dcmtk('dcmconv', ['+ti', sr.path, theirs])).code).toBe(0)
    // Values as dcmdump prints them, without lengths and delimiters (ours are undefined-length sequences).
    const values = async (path: string): Promise<string[]> => (await dcmtk('dcmdump', ['-q', '+L', path])).stdout.split('\n')
      .filter((l) => l.trim().startsWith('(') && !l.includes('(fffe,') && !l.trim().startsWith('(0002,')).map((l) => l.replace(/#.*$/, '').replace(/(explicit|undefined) length/, 'length').trim())
    const expected = await values(theirs)
    expect(expected.length).toBeGreaterThan(10)
    expect(await values(ours)).toEqual(expected)
  })

  it('gives an Implicit VR instance (image and report) in Explicit VR Little Endian, as dcmconv +te does', async () => {
    const study = await generateStudy(join(work, 'implicit'), { seed: 1420, series: [{ modality: 'MR', instances: 1, rows: 16, columns: 16, transferSyntax: 'implicit-le' }], reports: { sr: true } })
    const { writeFile } = await import('node:fs/promises')
    const { fileMetaInformation } = await import('../../../node/dicom/file-meta.ts')
    const values = async (path: string): Promise<string[]> => (await dcmtk('dcmdump', ['-q', '+L', path])).stdout.split('\n')
      .filter((l) => l.trim().startsWith('(') && !l.includes('(fffe,') && !l.trim().startsWith('(0002,')).map((l) => l.replace(/#.*$/, '').replace(/(explicit|undefined) length/, 'length').trim())
    for (const instance of study.instances) {
      const implicit = join(work, `implicit-${instance.sopInstanceUID}.dcm`)
      expect((await dcmtk('dcmconv', ['+ti', instance.path, implicit])).code).toBe(0)
      expect(readHeader(implicit).transferSyntaxUID).toBe('1.2.840.10008.1.2')
      const native = await openNativeDataset(implicit, { transferSyntaxUID: '1.2.840.10008.1.2.1' })
      const ours = join(work, `explicit-${instance.sopInstanceUID}.dcm`)
      await writeFile(ours, Buffer.concat([fileMetaInformation({ sopClassUID: instance.sopClassUID, sopInstanceUID: instance.sopInstanceUID, transferSyntaxUID: native.transferSyntaxUID }), ...native.chunks()]))
      const theirs = join(work, `dcmconv-${instance.sopInstanceUID}.dcm`)
      expect((await dcmtk('dcmconv', ['+te', implicit, theirs])).code).toBe(0)
      expect(await values(ours)).toEqual(await values(theirs))
    }
  })

  it('refuses a frame number outside the instance', async () => {
    const source = openFrames(original)
    try {
      expect(() => source.frame(0)).toThrow(RangeError)
      expect(() => source.frame(frames + 1)).toThrow(RangeError)
    } finally {
      source.close()
    }
  })
})
