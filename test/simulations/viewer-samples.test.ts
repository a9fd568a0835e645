import { readFile } from 'node:fs/promises'
import { beforeAll, describe, expect, it } from 'vitest'
import { openFrames } from '../../node/transcode/frame-reader.ts'
import { decodeFrame, loadDecoders } from '../../node/transcode/codecs.ts'
import { isValidBsn } from '../../simulations/generator/index.ts'
import { dcmtk } from '../helpers/dcmtk.ts'
import { useTempDirs } from '../helpers/temp-dir.ts'
import {
  EXPLICIT_VR_LITTLE_ENDIAN, JPEG_2000_LOSSLESS, JPEG_BASELINE, RLE_LOSSLESS, VIEWER_PATIENT, cineInstance, compressedInstances, largeSeries,
  measurementPhantom
} from '../helpers/viewer-samples.ts'
import { readWithDcmjs } from './generator/helpers.ts'

/*
 * The viewer's fixtures are what they say: read back by dcmjs and dcmtk, their pixels decoded by
 * the node's own frame reader and decoders (what /rendered and WADO-RS frames use).
 */

const tempDir = useTempDirs()

async function dataset (path: string): Promise<Record<string, unknown>> {
  return readWithDcmjs(await readFile(path))
}

/** Every frame of an instance as the node decodes it. */
async function decodedFrames (path: string): Promise<{ transferSyntaxUID: string, frames: Buffer[], encapsulated: boolean }> {
  const source = await openFrames(path)
  try {
    const frames: Buffer[] = []
    for (let n = 1; n <= source.layout.frames; n++) frames.push(Buffer.from((await decodeFrame(source, n)).pixels))
    return { transferSyntaxUID: source.transferSyntaxUID, frames, encapsulated: source.encapsulated }
  } finally {
    await source.close()
  }
}

/** Values of a 16-bit little-endian frame. */
function words (frame: Buffer): Uint16Array {
  const out = new Uint16Array(frame.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = frame.readUInt16LE(2 * i)
  return out
}

function distinct (values: ArrayLike<number>): number {
  return new Set(Array.from(values)).size
}

/** The values of the square of side `size` centred on (column, row). */
function square (pixels: ArrayLike<number>, columns: number, centre: { column: number, row: number }, size: number): number[] {
  const half = (size - 1) / 2
  const out: number[] = []
  for (let y = centre.row - half; y <= centre.row + half; y++) {
    for (let x = centre.column - half; x <= centre.column + half; x++) out.push(pixels[y * columns + x]!)
  }
  return out
}

function expectViewerPatient (ds: Record<string, unknown>): void {
  expect(ds).toMatchObject({ PatientID: VIEWER_PATIENT.id, IssuerOfPatientID: VIEWER_PATIENT.issuer, PatientBirthDate: VIEWER_PATIENT.birthDate })
  expect(ds.PatientName).toEqual([{ Alphabetic: VIEWER_PATIENT.name }])
  expect(ds.OtherPatientIDsSequence).toMatchObject([{ PatientID: VIEWER_PATIENT.bsn, IssuerOfPatientID: 'NLMINBIZA' }])
}

describe('the viewer fixtures', () => {
  beforeAll(async () => { await loadDecoders() })

  it('belong to one patient with a valid BSN, one study each', async () => {
    expect(isValidBsn(VIEWER_PATIENT.bsn)).toBe(true)
    const dir = await tempDir('viewer-samples')
    const studies = [await measurementPhantom(dir), await compressedInstances(dir), await cineInstance(dir), await largeSeries(dir, 3)]
    expect(new Set(studies.map((s) => s.studyInstanceUID)).size).toBe(4)
    for (const study of studies) {
      expect(study.patient).toMatchObject({ id: VIEWER_PATIENT.id, bsn: VIEWER_PATIENT.bsn, name: VIEWER_PATIENT.name })
      for (const file of study.files) {
        const ds = await dataset(file)
        expectViewerPatient(ds)
        expect(ds).toMatchObject({ StudyInstanceUID: study.studyInstanceUID, SeriesInstanceUID: study.seriesInstanceUID, AccessionNumber: study.accession })
      }
    }
  })

  it('measurement phantom: CT geometry and window as stated, the markers at their pixels on every slice, slices that differ', async () => {
    const phantom = await measurementPhantom(await tempDir('viewer-samples'))
    expect(phantom).toMatchObject({ rows: 256, columns: 256, slices: 20, pixelSpacingMm: [0.7, 0.7], markers: [{ column: 64, row: 128 }, { column: 192, row: 128 }], markerDistanceMm: 89.6, markerHu: 2000 })
    expect(phantom.files).toHaveLength(20)
    const { rows, columns, markerSizePx } = phantom
    const frames: Uint16Array[] = []
    for (const [i, file] of phantom.files.entries()) {
      const ds = await dataset(file)
      expect(ds).toMatchObject({
        Modality: 'CT', SOPClassUID: '1.2.840.10008.5.1.4.1.1.2', SOPInstanceUID: phantom.sopInstanceUIDs[i], InstanceNumber: i + 1,
        Rows: rows, Columns: columns, BitsAllocated: 16, BitsStored: 12, PixelRepresentation: 0, PhotometricInterpretation: 'MONOCHROME2',
        PixelSpacing: phantom.pixelSpacingMm, RescaleSlope: phantom.rescale.slope, RescaleIntercept: phantom.rescale.intercept,
        WindowCenter: phantom.window.center, WindowWidth: phantom.window.width,
        ImageOrientationPatient: [1, 0, 0, 0, 1, 0], ImagePositionPatient: [-89.6, -89.6, phantom.sliceLocationsMm[i]], SliceLocation: phantom.sliceLocationsMm[i]
      })
      const { frames: [frame], transferSyntaxUID } = await decodedFrames(file)
      expect(transferSyntaxUID).toBe(EXPLICIT_VR_LITTLE_ENDIAN)
      const pixels = words(frame!)
      frames.push(pixels)
      const hu = (v: number): number => v * phantom.rescale.slope + phantom.rescale.intercept
      for (const marker of phantom.markers) {
        expect(square(pixels, columns, marker, markerSizePx).map(hu)).toEqual(new Array(markerSizePx ** 2).fill(phantom.markerHu))
        // Just outside the square, the phantom: nothing there is half as bright.
        expect(Math.max(...square(pixels, columns, marker, markerSizePx + 2).map(hu).filter((v) => v !== phantom.markerHu))).toBeLessThan(phantom.markerHu / 2)
      }
      expect(distinct(pixels)).toBeGreaterThan(200) // body, organs and noise, not a flat image
    }
    expect(phantom.sliceLocationsMm).toEqual(Array.from({ length: 20 }, (_, i) => Number((i * 1.25).toFixed(6))))
    // Scrolling shows another image: neighbours differ, and the anatomy (noise aside) changes across the series.
    for (let i = 1; i < frames.length; i++) expect(Buffer.from(frames[i]!.buffer).equals(Buffer.from(frames[i - 1]!.buffer))).toBe(false)
    const soft = (f: Uint16Array): number => f.filter((v) => v > 1024 + 60).length
    expect(Math.abs(soft(frames[0]!) - soft(frames[19]!))).toBeGreaterThan(1000)
  })

  it('compressed instances: real JPEG 2000 and RLE lossless, decoded by the node to the originals\' pixels', async () => {
    const compressed = await compressedInstances(await tempDir('viewer-samples'))
    expect(compressed.files).toEqual([compressed.jpeg2000.path, compressed.rle.path])
    for (const [instance, syntax, number] of [[compressed.jpeg2000, JPEG_2000_LOSSLESS, 1], [compressed.rle, RLE_LOSSLESS, 2]] as const) {
      expect(instance.transferSyntaxUID).toBe(syntax)
      const ds = await dataset(instance.path)
      expect(ds._meta).toMatchObject({ TransferSyntaxUID: syntax, MediaStorageSOPInstanceUID: instance.sopInstanceUID })
      expect(ds).toMatchObject({ SOPInstanceUID: instance.sopInstanceUID, InstanceNumber: number, Rows: 512, Columns: 512, BitsAllocated: 16, BitsStored: 12, Modality: 'CT' })
      expect(ds.LossyImageCompression).toBeUndefined()
      const dump = await dcmtk('dcmdump', ['-M', instance.path])
      expect(dump.code, dump.stderr).toBe(0)
      expect(dump.stdout).toContain(`(0002,0010) UI =${syntax === JPEG_2000_LOSSLESS ? 'JPEG2000LosslessOnly' : 'RLELossless'}`)

      const source = await openFrames(instance.path)
      const bitstream = await source.frame(1)
      await source.close()
      if (syntax === JPEG_2000_LOSSLESS) expect(bitstream.readUInt32BE(0)).toBe(0xFF4FFF51) // SOC, SIZ: a J2K codestream
      else expect(bitstream.readUInt32LE(0)).toBe(2) // RLE header: two segments (high and low bytes)
      expect(bitstream.length).toBeLessThan(512 * 512 * 2 * 0.7)

      const { frames: [frame], encapsulated } = await decodedFrames(instance.path)
      expect(encapsulated).toBe(true)
      expect(words(frame!)).toEqual(instance.pixels)
      expect(distinct(instance.pixels)).toBeGreaterThan(200)
    }
    expect(compressed.jpeg2000.sopInstanceUID).not.toBe(compressed.rle.sopInstanceUID)
    expect(Buffer.from(compressed.jpeg2000.pixels.buffer).equals(Buffer.from(compressed.rle.pixels.buffer))).toBe(false)
  })

  it('cine: a US multi-frame loop of 30 frames at 66.7 ms with an object that moves from frame to frame', async () => {
    const cine = await cineInstance(await tempDir('viewer-samples'))
    const ds = await dataset(cine.path)
    expect(ds).toMatchObject({
      Modality: 'US', SOPClassUID: '1.2.840.10008.5.1.4.1.1.3.1', NumberOfFrames: 30, FrameTime: 66.7, CineRate: 15, RecommendedDisplayFrameRate: 15,
      PreferredPlaybackSequencing: 0, Rows: 256, Columns: 256, BitsAllocated: 8, BitsStored: 8, SamplesPerPixel: 1, PhotometricInterpretation: 'MONOCHROME2'
    })
    const dump = await dcmtk('dcmdump', [cine.path])
    expect(dump.stdout).toMatch(/\(0028,0009\) AT \(0018,1063\)/) // FrameIncrementPointer: FrameTime
    expect(cine).toMatchObject({ frames: 30, frameTimeMs: 66.7, framesPerSecond: 15, transferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN, files: [cine.path] })

    const { frames } = await decodedFrames(cine.path)
    expect(frames).toHaveLength(30)
    const { sizePx, value, centres } = cine.movingObject
    for (const [f, frame] of frames.entries()) {
      expect(square(frame, 256, centres[f]!, sizePx)).toEqual(new Array(sizePx ** 2).fill(value))
      if (f === 0) continue
      expect(frame.equals(frames[f - 1]!)).toBe(false)
      expect(centres[f]!.column).toBeGreaterThan(centres[f - 1]!.column)
    }
    // Far enough to see: the square has left where it started.
    expect(square(frames[29]!, 256, centres[0]!, sizePx).filter((v) => v === value).length).toBeLessThan(sizePx ** 2 / 4)
  })

  it('cine as JPEG baseline: real 8-bit JPEG frames the node decodes, the same UIDs every run', async () => {
    const [one, two] = [await cineInstance(await tempDir('viewer-samples'), { transferSyntax: 'jpeg-baseline' }), await cineInstance(await tempDir('viewer-samples'), { transferSyntax: 'jpeg-baseline' })]
    expect(one.transferSyntaxUID).toBe(JPEG_BASELINE)
    expect((await readFile(one.path)).equals(await readFile(two.path))).toBe(true)
    const ds = await dataset(one.path)
    expect(ds._meta).toMatchObject({ TransferSyntaxUID: JPEG_BASELINE, MediaStorageSOPInstanceUID: one.sopInstanceUID })
    expect(ds).toMatchObject({ SOPInstanceUID: one.sopInstanceUID, NumberOfFrames: 30, FrameTime: 66.7, LossyImageCompression: '01' })
    const { frames } = await decodedFrames(one.path)
    expect(frames).toHaveLength(30)
    for (const [f, frame] of frames.entries()) {
      const { column, row } = one.movingObject.centres[f]!
      expect(frame[row * 256 + column]).toBeGreaterThan(230)
      if (f > 0) expect(frame.equals(frames[f - 1]!)).toBe(false)
    }
  })

  it('is the same bytes every run', async () => {
    const [a, b] = [await tempDir('viewer-samples'), await tempDir('viewer-samples')]
    const [one, two] = [await compressedInstances(a), await compressedInstances(b)]
    for (const [i, file] of one.files.entries()) expect((await readFile(file)).equals(await readFile(two.files[i]!))).toBe(true)
    const [p1, p2] = [await measurementPhantom(a), await measurementPhantom(b)]
    expect((await readFile(p1.files[7]!)).equals(await readFile(p2.files[7]!))).toBe(true)
  })

  it('large series: as many 512x512 CT slices as asked, one series', async () => {
    const large = await largeSeries(await tempDir('viewer-samples'), 5)
    expect(large).toMatchObject({ slices: 5, rows: 512, columns: 512 })
    expect(large.files).toHaveLength(5)
    expect(large.bytes).toBeGreaterThan(5 * 512 * 512 * 2)
    const last = await dataset(large.files[4]!)
    expect(last).toMatchObject({ Modality: 'CT', Rows: 512, Columns: 512, InstanceNumber: 5, SeriesInstanceUID: large.seriesInstanceUID })
  })
})
