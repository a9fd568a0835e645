import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readHeader } from '../../../node/dicom/dataset-reader.ts'
import { elementHeader, encodeElement } from '../../../node/dicom/element-writer.ts'
import { fileMetaInformation } from '../../../node/dicom/file-meta.ts'
import { tag } from '../../../node/dicom/tags.ts'
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

/** A Part 10 file of an 8-bit image made here, Explicit VR Little Endian or encapsulated, its pixel data given as is. */
function syntheticImage (init: { syntax: string, photometric: string, samples: number, rows: number, columns: number, frames: number, pixelData: Buffer[] }): Buffer {
  const us = (value: number): Buffer => Buffer.from([value & 0xFF, value >> 8])
  const elements = [
    encodeElement(tag(0x0008, 0x0016), 'UI', '1.2.840.10008.5.1.4.1.1.7.2'),
    encodeElement(tag(0x0008, 0x0018), 'UI', '1.2.3.4.1'),
    encodeElement(tag(0x0028, 0x0002), 'US', us(init.samples)),
    encodeElement(tag(0x0028, 0x0004), 'CS', init.photometric),
    ...(init.samples > 1 ? [encodeElement(tag(0x0028, 0x0006), 'US', us(0))] : []),
    encodeElement(tag(0x0028, 0x0008), 'IS', String(init.frames)),
    encodeElement(tag(0x0028, 0x0010), 'US', us(init.rows)),
    encodeElement(tag(0x0028, 0x0011), 'US', us(init.columns)),
    encodeElement(tag(0x0028, 0x0100), 'US', us(8)),
    encodeElement(tag(0x0028, 0x0101), 'US', us(8)),
    encodeElement(tag(0x0028, 0x0102), 'US', us(7)),
    encodeElement(tag(0x0028, 0x0103), 'US', us(0))
  ]
  const native = init.syntax === '1.2.840.10008.1.2.1'
  const pixelData = native
    ? [encodeElement(tag(0x7FE0, 0x0010), 'OB', Buffer.concat(init.pixelData))]
    : [elementHeader(tag(0x7FE0, 0x0010), 'OB', 0xFFFFFFFF), ...init.pixelData, Buffer.from([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0])]
  return Buffer.concat([fileMetaInformation({ sopClassUID: '1.2.840.10008.5.1.4.1.1.7.2', sopInstanceUID: '1.2.3.4.1', transferSyntaxUID: init.syntax }), ...elements, ...pixelData])
}

/** An item (a fragment, or the Basic Offset Table) holding `value`. */
function item (value: Buffer): Buffer {
  const head = Buffer.from([0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0])
  head.writeUInt32LE(value.length, 4)
  return Buffer.concat([head, value])
}

async function collect (chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const all: Uint8Array[] = []
  for await (const chunk of chunks) all.push(chunk)
  return Buffer.concat(all)
}

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
    const bytes = await collect(native.stream())
    const out = join(work, 'decoded.dcm')
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
      const source = await openFrames(path)
      try {
        expect(source.encapsulated).toBe(true)
        expect(source.layout.frames).toBe(frames)
        // Each frame is one JPEG codestream: it starts with SOI and ends with EOI.
        for await (const frame of source.frames()) {
          expect(frame.readUInt16BE(0)).toBe(0xFFD8)
          expect(frame.subarray(0, frame.length).lastIndexOf(Buffer.from([0xFF, 0xD9]))).toBeGreaterThan(frame.length - 4)
        }
      } finally {
        await source.close()
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
    await writeFile(path, Buffer.from(transcoder.getDicomPart10()))
    expect(readHeader(path).transferSyntaxUID).toBe('1.2.840.10008.1.2.4.201')
    expect((await decodedPixels(path)).equals(reference)).toBe(true)
  })

  it('reads a deflated instance\'s native frames by inflating, one at a time or in order', async () => {
    const path = join(work, 'deflated.dcm')
    expect((await dcmtk('dcmconv', ['+td', original, path])).code).toBe(0)
    const source = await openFrames(path)
    try {
      expect(source.encapsulated).toBe(false)
      expect((await source.frame(4)).equals(reference.subarray(3 * frameBytes, 4 * frameBytes))).toBe(true)
      expect((await source.frame(2)).equals(reference.subarray(frameBytes, 2 * frameBytes))).toBe(true)
      expect((await collect(source.frames())).equals(reference)).toBe(true)
      // A late frame inflates asynchronously: what waits on the event loop runs before it is read.
      let ran = false
      const last = source.frame(frames)
      setImmediate(() => { ran = true })
      expect((await last).equals(reference.subarray((frames - 1) * frameBytes))).toBe(true)
      expect(ran).toBe(true)
    } finally {
      await source.close()
    }
    expect((await decodedPixels(path)).equals(reference)).toBe(true)
  })

  it('gives an instance without pixel data (a structured report) in Implicit VR Little Endian, as dcmconv +ti does', async () => {
    const study = await generateStudy(join(work, 'report'), { seed: 1418, series: [{ modality: 'CT', instances: 1, rows: 16, columns: 16 }], reports: { sr: true } })
    const sr = study.instances.find((i) => i.isReport)!
    const native = await openNativeDataset(sr.path, { transferSyntaxUID: '1.2.840.10008.1.2' })
    const { fileMetaInformation } = await import('../../../node/dicom/file-meta.ts')
    const ours = join(work, 'sr-implicit.dcm')
    await writeFile(ours, Buffer.concat([fileMetaInformation({ sopClassUID: sr.sopClassUID, sopInstanceUID: sr.sopInstanceUID, transferSyntaxUID: native.transferSyntaxUID }), await collect(native.stream())]))
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
    const { fileMetaInformation } = await import('../../../node/dicom/file-meta.ts')
    const values = async (path: string): Promise<string[]> => (await dcmtk('dcmdump', ['-q', '+L', path])).stdout.split('\n')
      .filter((l) => l.trim().startsWith('(') && !l.includes('(fffe,') && !l.trim().startsWith('(0002,')).map((l) => l.replace(/#.*$/, '').replace(/(explicit|undefined) length/, 'length').trim())
    for (const instance of study.instances) {
      const implicit = join(work, `implicit-${instance.sopInstanceUID}.dcm`)
      expect((await dcmtk('dcmconv', ['+ti', instance.path, implicit])).code).toBe(0)
      expect(readHeader(implicit).transferSyntaxUID).toBe('1.2.840.10008.1.2')
      const native = await openNativeDataset(implicit, { transferSyntaxUID: '1.2.840.10008.1.2.1' })
      const ours = join(work, `explicit-${instance.sopInstanceUID}.dcm`)
      await writeFile(ours, Buffer.concat([fileMetaInformation({ sopClassUID: instance.sopClassUID, sopInstanceUID: instance.sopInstanceUID, transferSyntaxUID: native.transferSyntaxUID }), await collect(native.stream())]))
      const theirs = join(work, `dcmconv-${instance.sopInstanceUID}.dcm`)
      expect((await dcmtk('dcmconv', ['+te', implicit, theirs])).code).toBe(0)
      expect(await values(ours)).toEqual(await values(theirs))
    }
  })

  it('reads a big endian instance\'s frames as stored (byte-swapped words), its header read big endian', async () => {
    const path = join(work, 'big-endian.dcm')
    expect((await dcmtk('dcmconv', ['+tb', original, path])).code).toBe(0)
    const source = await openFrames(path)
    try {
      expect(source.transferSyntaxUID).toBe('1.2.840.10008.1.2.2')
      expect(source.layout).toMatchObject({ rows: 64, columns: 64, bitsAllocated: 16, frames })
      const littleEndian = Buffer.from(reference.subarray(2 * frameBytes, 3 * frameBytes))
      expect((await source.frame(3)).equals(littleEndian.swap16())).toBe(true)
    } finally {
      await source.close()
    }
  })

  it('sizes a native YBR_FULL_422 frame as two bytes a pixel (PS3.3 C.7.6.3.1.2), not three', async () => {
    const rows = 4
    const columns = 6
    // Y1 Y2 Cb Cr for each two pixels: 2 bytes a pixel, each frame filled with its own number.
    const framesOf422 = [1, 2, 3].map((n) => Buffer.alloc(rows * columns * 2, n))
    const path = join(work, 'ybr-full-422.dcm')
    await writeFile(path, syntheticImage({ syntax: '1.2.840.10008.1.2.1', photometric: 'YBR_FULL_422', samples: 3, rows, columns, frames: 3, pixelData: framesOf422 }))
    // dcmtk reads it as a whole image of that size.
    expect((await dcmtk('dcmdump', ['+P', '7fe0,0010', path])).stdout).toMatch(/# 144,/)
    const source = await openFrames(path)
    try {
      expect(source.nativeFrameBytes).toBe(rows * columns * 2)
      expect((await source.frame(3)).equals(framesOf422[2]!)).toBe(true)
      expect((await collect(source.frames())).equals(Buffer.concat(framesOf422))).toBe(true)
    } finally {
      await source.close()
    }
  })

  it('starts a frame only at a fragment that starts a codestream (SOI and a marker), not at FF D8 inside one', async () => {
    // Two frames in three fragments, no offset table: the second fragment of frame 1 happens to begin with FF D8.
    const soi = (filler: number): Buffer => Buffer.concat([Buffer.from([0xFF, 0xD8, 0xFF, 0xDB]), Buffer.alloc(12, filler)])
    const inside = Buffer.concat([Buffer.from([0xFF, 0xD8, 0x00, 0x11]), Buffer.alloc(12, 0x22)])
    const path = join(work, 'ffd8-inside.dcm')
    await writeFile(path, syntheticImage({ syntax: '1.2.840.10008.1.2.4.50', photometric: 'MONOCHROME2', samples: 1, rows: 4, columns: 4, frames: 2, pixelData: [item(Buffer.alloc(0)), item(soi(1)), item(inside), item(soi(2))] }))
    const source = await openFrames(path)
    try {
      expect((await source.frame(1)).equals(Buffer.concat([soi(1), inside]))).toBe(true)
      expect((await source.frame(2)).equals(soi(2))).toBe(true)
    } finally {
      await source.close()
    }
  })

  it('with a Basic Offset Table jumps to a frame\'s fragments without walking the others (a damaged fragment of frame 1 keeps frame 4 readable)', async () => {
    const path = join(work, 'offset-table-jump.dcm')
    expect((await dcmtk('dcmcjpeg', ['+e1', '+fs', '1', original, path])).code).toBe(0)
    const intact = await openFrames(path)
    const frame4 = await intact.frame(4)
    await intact.close()
    // Overwrite the item tag of frame 1's second fragment: a walk of the item headers stops there.
    const file = await readFile(path)
    const header = readHeader(path)
    const botLength = file.readUInt32LE(header.pixelDataOffset! + 4)
    const firstFragment = header.pixelDataOffset! + 8 + botLength
    const second = firstFragment + 8 + file.readUInt32LE(firstFragment + 4)
    expect(file.readUInt16LE(second + 2)).toBe(0xE000)
    file.writeUInt32LE(0x00100010, second)
    const damaged = join(work, 'offset-table-jump-damaged.dcm')
    await writeFile(damaged, file)
    // The header walk (which proves a file whole at import) is given, as callers that read it already do.
    const source = await openFrames(damaged, { header })
    try {
      expect((await source.frame(4)).equals(frame4)).toBe(true)
      await expect(source.frame(1)).rejects.toThrow(/other than fragment items/)
    } finally {
      await source.close()
    }
  })

  it('refuses a frame number outside the instance', async () => {
    const source = await openFrames(original)
    try {
      await expect(source.frame(0)).rejects.toThrow(RangeError)
      await expect(source.frame(frames + 1)).rejects.toThrow(RangeError)
    } finally {
      await source.close()
    }
  })
})
