import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { importFiles, type ImportSummary } from '../../node/dicom/file-import.ts'
import type { StudyStore } from '../../node/store/study-store.ts'
import { openFrames } from '../../node/transcode/frame-reader.ts'
import { createPrng, generateStudy, uidFrom, type GeneratedPatient, type GeneratedStudy, type PatientSpec, type StudySpec } from '../../simulations/generator/index.ts'
import type { LocalNetworkNode } from '../../simulations/scenarios/local-network.ts'
import { fetchAs } from './api-caller.ts'
import { PATIENCE_MS, until } from './patience.ts'

/*
 * Studies a viewer is tested with, as DICOM Part 10 files: a CT phantom with two markers a known
 * distance apart (scroll, window, measure), a JPEG 2000 and an RLE instance (decoding), a cine
 * loop (play) and a long CT series (timing). All of one patient, each call one study of its own,
 * the same bytes every run (seeded). Each writes into its own folder under the `dir` given, so one
 * `dir` holds them all. And the two ways a study gets to a node of a running local network: an
 * import into its store, or a push from another node that B receives into its inbox.
 */

/** The one patient every study here belongs to (BSN 314159265 passes the 11-proof). */
export const VIEWER_PATIENT: Readonly<Required<Omit<PatientSpec, 'charset'>>> = {
  name: 'van den Berg^Vera',
  id: '4100271',
  issuer: 'BEELDNET',
  bsn: '314159265',
  birthDate: '19630415',
  sex: 'F'
}

function spec (seed: number, studyDate: string, accession: string, description: string, series: StudySpec['series']): StudySpec {
  return { seed, patient: { ...VIEWER_PATIENT }, studyDate, accession, description, series }
}

/** What every fixture returns of its study. */
export interface ViewerStudy {
  studyInstanceUID: string
  seriesInstanceUID: string
  accession: string
  studyDate: string
  patient: GeneratedPatient
  /** every file of the study, in InstanceNumber order */
  files: string[]
}

function viewerStudy (study: GeneratedStudy, files = study.instances.map((i) => i.path)): ViewerStudy {
  return {
    studyInstanceUID: study.studyInstanceUID,
    seriesInstanceUID: study.instances[0]!.seriesInstanceUID,
    accession: study.accession,
    studyDate: study.studyDate,
    patient: study.patient,
    files
  }
}

export interface Marker {
  /** 0-based pixel column (x) and row (y) of the marker's centre */
  column: number
  row: number
}

export interface MeasurementPhantom extends ViewerStudy {
  sopInstanceUIDs: string[]
  rows: number
  columns: number
  slices: number
  /** PixelSpacing as the file has it: [between rows, between columns] */
  pixelSpacingMm: [number, number]
  /** ImagePositionPatient's z and SliceLocation of each slice, rising by sliceStepMm */
  sliceLocationsMm: number[]
  sliceStepMm: number
  /** WindowCenter / WindowWidth in the files (HU) */
  window: { center: number, width: number }
  rescale: { slope: number, intercept: number }
  /** on every slice, at the same pixels */
  markers: [Marker, Marker]
  /** each marker is a square this many pixels a side, centred on its pixel, all of markerHu */
  markerSizePx: number
  markerHu: number
  /** between the two markers' centres */
  markerDistanceMm: number
}

const PHANTOM = { rows: 256, columns: 256, slices: 20, spacing: 0.7, step: 1.25, markerHu: 2000, markerSize: 5 }
const PHANTOM_MARKERS: [Marker, Marker] = [{ column: 64, row: 128 }, { column: 192, row: 128 }]

/**
 * A CT series of 20 slices of 256x256 (16 bits allocated, 12 stored, RescaleSlope 1, Intercept
 * -1024, window 40/400, PixelSpacing 0.7 mm, slices 1.25 mm apart going up): the generator's body
 * phantom (fat, muscle, lungs, heart, liver, kidneys, spine, ribs, appearing and changing size from
 * slice to slice, and noise), with two 5x5 squares of +2000 HU on every slice at (64,128) and
 * (192,128): 89.6 mm apart. Written under `dir`/measurement-phantom.
 */
export async function measurementPhantom (dir: string, signal?: AbortSignal): Promise<MeasurementPhantom> {
  const intercept = -1024
  const study = await generateStudy(join(dir, 'measurement-phantom'), spec(7101, '20250312', 'VW7101', 'CT meetfantoom', [{
    modality: 'CT',
    instances: PHANTOM.slices,
    rows: PHANTOM.rows,
    columns: PHANTOM.columns,
    pixelSpacingMm: PHANTOM.spacing,
    sliceStepMm: PHANTOM.step,
    description: 'CT fantoom met twee markers',
    markers: PHANTOM_MARKERS.map((m) => ({ ...m, size: PHANTOM.markerSize, value: PHANTOM.markerHu - intercept }))
  }]), signal)
  const [a, b] = PHANTOM_MARKERS
  return {
    ...viewerStudy(study),
    sopInstanceUIDs: study.instances.map((i) => i.sopInstanceUID),
    rows: PHANTOM.rows,
    columns: PHANTOM.columns,
    slices: PHANTOM.slices,
    pixelSpacingMm: [PHANTOM.spacing, PHANTOM.spacing],
    sliceLocationsMm: study.instances.map((_, i) => Number((i * PHANTOM.step).toFixed(6))),
    sliceStepMm: PHANTOM.step,
    window: { center: 40, width: 400 },
    rescale: { slope: 1, intercept },
    markers: [{ ...a }, { ...b }],
    markerSizePx: PHANTOM.markerSize,
    markerHu: PHANTOM.markerHu,
    markerDistanceMm: Number(Math.hypot((b.column - a.column) * PHANTOM.spacing, (b.row - a.row) * PHANTOM.spacing).toFixed(6))
  }
}

export const JPEG_2000_LOSSLESS = '1.2.840.10008.1.2.4.90'
export const RLE_LOSSLESS = '1.2.840.10008.1.2.5'
export const JPEG_BASELINE = '1.2.840.10008.1.2.4.50'
export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1'

type Codecs = typeof import('dcmjs-codecs')
let codecs: Promise<Codecs> | undefined

/** dcmjs-codecs with its WebAssembly codecs loaded (once). */
async function dcmjsCodecs (): Promise<Codecs> {
  codecs ??= (async () => {
    const module = createRequire(import.meta.url)('dcmjs-codecs') as Codecs
    module.log.setLevel('silent')
    if (!module.NativeCodecs.isInitialized()) await module.NativeCodecs.initializeAsync()
    return module
  })()
  return codecs
}

/**
 * `source` transcoded to `transferSyntaxUID` by dcmjs-codecs' encoders (real codestreams) and
 * written to `target`. A lossy one is a new instance: the codec draws its SOP Instance UID at
 * random, so it is given `sopInstanceUID` here, to keep the fixture the same every run.
 */
async function transcodeFile (source: string, target: string, transferSyntaxUID: string, sopInstanceUID?: string): Promise<void> {
  const { Transcoder } = await dcmjsCodecs()
  const file = await readFile(source)
  const transcoder = new Transcoder(file.buffer.slice(file.byteOffset, file.byteOffset + file.length))
  transcoder.transcode(transferSyntaxUID)
  if (sopInstanceUID !== undefined) (transcoder.getElements() as Record<string, unknown>).SOPInstanceUID = sopInstanceUID
  await mkdir(dirname(target), { recursive: true })
  await writeFile(target, Buffer.from(transcoder.getDicomPart10()))
}

/** Runs `make` with a scratch directory, removed afterwards whatever happens. */
async function withScratch<T> (make: (scratch: string) => Promise<T>): Promise<T> {
  const scratch = await mkdtemp(join(tmpdir(), 'viewer-samples-'))
  try {
    return await make(scratch)
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
}

/** The stored values of a native single-frame 16-bit instance, row by row. */
async function storedPixels (path: string): Promise<Uint16Array> {
  const source = await openFrames(path)
  try {
    const bytes = await source.frame(1)
    const pixels = new Uint16Array(bytes.length / 2)
    for (let i = 0; i < pixels.length; i++) pixels[i] = bytes.readUInt16LE(2 * i)
    return pixels
  } finally {
    await source.close()
  }
}

export interface CompressedInstance {
  path: string
  sopInstanceUID: string
  transferSyntaxUID: string
  /** what a lossless decoder must give back: the uncompressed original's stored values, row by row (HU = value - 1024) */
  pixels: Uint16Array
}

export interface CompressedInstances extends ViewerStudy {
  rows: number
  columns: number
  jpeg2000: CompressedInstance
  rle: CompressedInstance
}

/**
 * A study of its own with one CT series of two 512x512 slices (12 bits stored): instance 1 JPEG
 * 2000 lossless, instance 2 RLE lossless, both encoded by dcmjs-codecs from uncompressed
 * originals (which are not kept: their pixels are returned). Written under `dir`/compressed.
 */
export async function compressedInstances (dir: string, signal?: AbortSignal): Promise<CompressedInstances> {
  const rows = 512
  const columns = 512
  return withScratch(async (scratch) => {
    const original = await generateStudy(scratch, spec(7102, '20250314', 'VW7102', 'CT gecomprimeerd', [
      { modality: 'CT', instances: 2, rows, columns, description: 'CT JPEG 2000 en RLE' }
    ]), signal)
    const made: CompressedInstance[] = []
    for (const [i, transferSyntaxUID] of [JPEG_2000_LOSSLESS, RLE_LOSSLESS].entries()) {
      signal?.throwIfAborted()
      const source = original.instances[i]!
      const path = join(dir, 'compressed', 'series-01', `instance-${String(i + 1).padStart(4, '0')}.dcm`)
      await transcodeFile(source.path, path, transferSyntaxUID)
      made.push({ path, sopInstanceUID: source.sopInstanceUID, transferSyntaxUID, pixels: await storedPixels(source.path) })
    }
    const [jpeg2000, rle] = made as [CompressedInstance, CompressedInstance]
    return { ...viewerStudy(original, made.map((m) => m.path)), rows, columns, jpeg2000, rle }
  })
}

export interface CineInstance extends ViewerStudy {
  path: string
  sopInstanceUID: string
  sopClassUID: string
  transferSyntaxUID: string
  modality: 'US'
  rows: number
  columns: number
  /** NumberOfFrames */
  frames: number
  /** FrameTime (FrameIncrementPointer points at it) */
  frameTimeMs: number
  /** CineRate and RecommendedDisplayFrameRate */
  framesPerSecond: number
  /** a white square moving right across the sector, frame by frame */
  movingObject: { sizePx: number, value: number, centres: Marker[] }
}

export interface CineInit {
  /** 'explicit-le' (default: native 8-bit pixels, exact) or 'jpeg-baseline' (lossy, a new SOP Instance UID) */
  transferSyntax?: 'explicit-le' | 'jpeg-baseline'
  signal?: AbortSignal
}

/**
 * A study of its own with one ultrasound cine loop: a US Multi-frame instance of 30 frames of
 * 256x256, 8 bits, MONOCHROME2, FrameTime 66.7 ms (15 frames a second: CineRate,
 * RecommendedDisplayFrameRate, played as a loop), the generator's speckled sector with an organ
 * drifting through the loop and a 15x15 white square moving 3 pixels right per frame.
 * Written under `dir`/cine; the JPEG copy under `dir`/cine-jpeg (the same study and series,
 * another instance).
 */
export async function cineInstance (dir: string, init: CineInit = {}): Promise<CineInstance> {
  const { signal } = init
  const frames = 30
  const frameTimeMs = 66.7
  // In the tissue above the fascia (speckle there rarely reaches white), moving 87 pixels inside the sector.
  const object = { column: 80, row: 100, size: 15, value: 255, step: { columns: 3, rows: 0 } }
  const studySpec = spec(7103, '20250317', 'VW7103', 'Echo bovenbuik cine', [{
    modality: 'US', instances: 1, frames, rows: 256, columns: 256, frameTimeMs, description: 'Echo cine-lus', markers: [object]
  }])
  const jpeg = init.transferSyntax === 'jpeg-baseline'
  const study = jpeg
    ? await withScratch(async (scratch) => {
      const native = await generateStudy(scratch, studySpec, signal)
      const source = native.instances[0]!
      const path = join(dir, 'cine-jpeg', 'series-01', 'instance-0001.dcm')
      // A lossy copy is another instance (PS3.3 C.7.6.1.1.5): its UID from the seed, not the codec's random one.
      const sopInstanceUID = uidFrom(createPrng(710350))
      await transcodeFile(source.path, path, JPEG_BASELINE, sopInstanceUID)
      return { ...native, instances: [{ ...source, path, sopInstanceUID, transferSyntaxUID: JPEG_BASELINE }] }
    })
    : await generateStudy(join(dir, 'cine'), studySpec, signal)
  const instance = study.instances[0]!
  return {
    ...viewerStudy(study),
    path: instance.path,
    sopInstanceUID: instance.sopInstanceUID,
    sopClassUID: instance.sopClassUID,
    transferSyntaxUID: instance.transferSyntaxUID,
    modality: 'US',
    rows: 256,
    columns: 256,
    frames,
    frameTimeMs,
    framesPerSecond: Math.round(1000 / frameTimeMs),
    movingObject: {
      sizePx: object.size,
      value: object.value,
      centres: Array.from({ length: frames }, (_, f) => ({ column: object.column + f * object.step.columns, row: object.row + f * object.step.rows }))
    }
  }
}

export interface LargeSeries extends ViewerStudy {
  slices: number
  rows: number
  columns: number
  /** all files together */
  bytes: number
}

/**
 * A study of its own with one CT series of `slices` slices of 512x512 (about 0.5 MB each,
 * explicit VR little endian), for timing. Written under `dir`/large-series.
 */
export async function largeSeries (dir: string, slices = 400, signal?: AbortSignal): Promise<LargeSeries> {
  const study = await generateStudy(join(dir, 'large-series'), spec(7104, '20250320', 'VW7104', 'CT thorax-abdomen (lang)', [
    { modality: 'CT', instances: slices, rows: 512, columns: 512, description: `CT ${slices} plakken` }
  ]), signal)
  return { ...viewerStudy(study), slices, rows: 512, columns: 512, bytes: study.instances.reduce((sum, i) => sum + i.size, 0) }
}

/**
 * Imports `files` (or folders) into a running node's store, as `beeldnet node import` and the
 * transfer suites do; throws when any file is refused. The node's web app and DICOMweb show them
 * at once.
 */
export async function importInto (node: { node: { store: StudyStore } }, files: string[], signal?: AbortSignal): Promise<ImportSummary> {
  const summary = await importFiles(files, { store: node.node.store, signal })
  if (summary.rejected.length > 0) throw new Error(`import refused ${summary.rejected.length} file(s): ${JSON.stringify(summary.rejected.slice(0, 3))}`)
  return summary
}

type NetworkNode = Pick<LocalNetworkNode, 'url' | 'dataDir' | 'ura' | 'name'>

export interface PushInit {
  /** the department at the receiver (default 'RAD', which every hospital of the local network has) */
  department?: string
  /** the note the receiver's inbox shows */
  note?: string
  /** default 'verwijzing' */
  reason?: string
}

const ENDED_UNSENT = new Set(['declined', 'failed', 'cancelled'])

/**
 * Sends a study `from` holds to `to` as a clinician does (POST /api/transfers on from's API, with a
 * clinician's token of that node) and waits until `to` has committed it: it is then in to's inbox,
 * received from `from`'s hospital, complete. confirmBulk is set, so more than three studies of
 * the one patient of these fixtures may go to one hospital in a day. Throws if the send is
 * declined or fails.
 */
export async function pushStudy (from: NetworkNode, to: NetworkNode, studyInstanceUID: string, init: PushInit = {}): Promise<{ transferId: string }> {
  const atFrom = fetchAs(from)
  const atTo = fetchAs(to)
  const body = { studyInstanceUID, to: { ura: to.ura, department: init.department ?? 'RAD' }, reason: init.reason ?? 'verwijzing', confirmBulk: true, ...(init.note === undefined ? {} : { note: init.note }) }
  const sent = await atFrom(`${from.url}/api/transfers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  if (sent.status !== 201) throw new Error(`${from.name} refused to send ${studyInstanceUID}: ${sent.status} ${await sent.text()}`)
  const { transferId } = await sent.json() as { transferId: string }
  await until(async () => {
    const outgoing = await (await atFrom(`${from.url}/api/transfers/${transferId}`)).json() as { state: string, lastError?: { code: string, message: string } }
    if (ENDED_UNSENT.has(outgoing.state)) throw new Error(`the push of ${studyInstanceUID} to ${to.name} ended ${outgoing.state}: ${outgoing.lastError?.code ?? ''} ${outgoing.lastError?.message ?? ''}`)
    const incoming = await atTo(`${to.url}/api/transfers/${transferId}`)
    return incoming.ok && (await incoming.json() as { state: string }).state === 'complete'
  }, `${to.name} to hold study ${studyInstanceUID} pushed by ${from.name}`, PATIENCE_MS, 100)
  return { transferId }
}

/**
 * `files` imported into `from` and pushed to `to`, each study they hold, waiting until `to` has
 * each complete in its inbox: a study that arrived from another hospital, as the viewer meets one.
 */
export async function deliverByPush (from: NetworkNode & { node: { store: StudyStore } }, to: NetworkNode, files: string[], init: PushInit = {}): Promise<Array<{ studyInstanceUID: string, transferId: string }>> {
  const summary = await importInto(from, files)
  const delivered: Array<{ studyInstanceUID: string, transferId: string }> = []
  for (const { studyInstanceUID } of summary.studies) delivered.push({ studyInstanceUID, ...await pushStudy(from, to, studyInstanceUID, init) })
  return delivered
}
