// Assembles a study: resolves the spec against the seed, builds each instance's dataset and streams it out.
import { mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { CHARSETS, type Charset, type CharsetName } from './charsets.ts'
import { el, type Element, type Item } from './dataset-writer.ts'
import { InvalidSpecError } from './errors.ts'
import { writeInstanceFile, type PixelSource } from './instance-writer.ts'
import { MODALITY_PROFILES, MULTIFRAME_BYTE_SC, MULTIFRAME_WORD_SC, US_MULTIFRAME } from './modalities.ts'
import { randomDate, randomTime, resolvePatient, type ResolvedPatient } from './patients.ts'
import { createPhantom } from './phantom.ts'
import { encodeFrame, nativeFrameBytes, to8Bit } from './pixel-encodings.ts'
import { createPrng, type Prng } from './prng.ts'
import { BASIC_TEXT_SR, DEFAULT_REPORT, ENCAPSULATED_PDF, buildPdf, pdfContent, srContent } from './reports.ts'
import { TRANSFER_SYNTAXES, type TransferSyntax } from './transfer-syntaxes.ts'
import type { GeneratedInstance, GeneratedPatient, GeneratedStudy, MarkerSpec, SeriesSpec, StudySpec } from './types.ts'
import { uidFrom } from './uids.ts'

export type InstanceKind = 'image' | 'sr' | 'pdf'

/** What the DICOMDIR needs beyond GeneratedInstance. */
export interface InstanceDetail extends GeneratedInstance {
  kind: InstanceKind
  seriesNumber: number
  seriesDescription: string
  instanceNumber: number
  contentDate: string
  contentTime: string
  rows?: number
  columns?: number
  documentTitle?: string
}

export interface StudyDetail extends GeneratedStudy {
  charset: CharsetName
  studyTime: string
  studyID: string
  description: string
  instances: InstanceDetail[]
}

/** Where instance `instanceIndex` of series `seriesIndex` (reports come after the image series) goes. */
export type PathFor = (seriesIndex: number, instanceIndex: number, kind: InstanceKind) => string

const BSN_ISSUER = 'NLMINBIZA'
const BSN_OID = '2.16.840.1.113883.2.4.6.3' // Dutch BSN identifier system

function ds (n: number): string {
  const s = String(Number(n.toFixed(6)))
  if (s.length > 16) throw new RangeError(`DS value ${s} too long`)
  return s
}

function validate (spec: StudySpec): void {
  const bad = (msg: string): never => { throw new InvalidSpecError(msg) }
  for (const d of [spec.studyDate, spec.patient?.birthDate]) {
    if (d !== undefined && !/^[0-9]{8}$/.test(d)) bad(`date ${d} is not YYYYMMDD`)
  }
  spec.series.forEach((s, i) => {
    if (!(s.modality in MODALITY_PROFILES)) bad(`series ${i}: unknown modality ${s.modality}`)
    if (!Number.isInteger(s.instances) || s.instances < 0) bad(`series ${i}: instances must be an integer >= 0`)
    for (const [k, v] of [['rows', s.rows], ['columns', s.columns], ['frames', s.frames]] as const) {
      if (v !== undefined && (!Number.isInteger(v) || v < 1 || v > 65535)) bad(`series ${i}: ${k} must be 1..65535`)
    }
    if (s.transferSyntax !== undefined && !(s.transferSyntax in TRANSFER_SYNTAXES)) {
      bad(`series ${i}: unknown transfer syntax ${s.transferSyntax}`)
    }
    if (s.part10 === false && (s.transferSyntax ?? 'implicit-le') !== 'implicit-le') {
      bad(`series ${i}: part10: false writes implicit VR little endian only`)
    }
    for (const [k, v] of [['pixelSpacingMm', s.pixelSpacingMm], ['frameTimeMs', s.frameTimeMs]] as const) {
      if (v !== undefined && !(Number.isFinite(v) && v > 0)) bad(`series ${i}: ${k} must be a number > 0`)
    }
    if (s.sliceStepMm !== undefined && !Number.isFinite(s.sliceStepMm)) bad(`series ${i}: sliceStepMm must be a number`)
    const max = MODALITY_PROFILES[s.modality].phantom === 'us' ? 255 : 4095
    s.markers?.forEach((m, j) => {
      const size = m.size ?? 5
      const at = `series ${i}: marker ${j}`
      if (!Number.isInteger(size) || size < 1 || size % 2 === 0) bad(`${at}: size must be an odd integer >= 1`)
      if (!Number.isInteger(m.value) || m.value < 0 || m.value > max) bad(`${at}: value must be 0..${max}`)
      const numbers = [m.column, m.row, m.step?.columns ?? 0, m.step?.rows ?? 0]
      if (!numbers.every(Number.isInteger)) bad(`${at}: column, row and step must be integers`)
    })
  })
}

interface StudyContext {
  spec: StudySpec
  patient: ResolvedPatient
  charset: Charset
  studyInstanceUID: string
  studyDate: string
  studyTime: string
  accession: string
  studyID: string
  description: string
  referring: string
}

function patientStudyModules (c: StudyContext): Item {
  const p = c.patient
  const items: Item = [
    el(0x00080020, 'DA', c.studyDate),
    el(0x00080030, 'TM', c.studyTime),
    el(0x00080050, 'SH', c.accession),
    el(0x00080070, 'LO', 'Beeldnet'),
    el(0x00080080, 'LO', 'Beeldnet Simulatieziekenhuis'),
    el(0x00080090, 'PN', c.referring),
    el(0x00081010, 'SH', 'SIM01'),
    el(0x00081030, 'LO', c.description),
    el(0x00081090, 'LO', 'Synthetic Phantom'),
    el(0x00100010, 'PN', p.name),
    el(0x00100020, 'LO', p.id),
    el(0x00100021, 'LO', p.issuer),
    el(0x00100030, 'DA', p.birthDate),
    el(0x00100040, 'CS', p.sex),
    el(0x0020000D, 'UI', c.studyInstanceUID),
    el(0x00200010, 'SH', c.studyID)
  ]
  if (p.bsn !== undefined) {
    items.push(el(0x00101002, 'SQ', [[
      el(0x00100020, 'LO', p.bsn),
      el(0x00100021, 'LO', BSN_ISSUER),
      el(0x00100022, 'CS', 'TEXT'),
      el(0x00100024, 'SQ', [[el(0x00400032, 'UT', BSN_OID), el(0x00400033, 'CS', 'ISO')]])
    ]]))
  }
  if (c.charset.terms.length > 0) items.push(el(0x00080005, 'CS', c.charset.terms))
  return items
}

function seriesModule (modality: string, uid: string, number: number, description: string, c: StudyContext,
  bodyPart?: string): Item {
  const items: Item = [
    el(0x00080021, 'DA', c.studyDate),
    el(0x00080031, 'TM', c.studyTime),
    el(0x00080060, 'CS', modality),
    el(0x0008103E, 'LO', description),
    el(0x0020000E, 'UI', uid),
    el(0x00200011, 'IS', String(number))
  ]
  if (bodyPart !== undefined) items.push(el(0x00180015, 'CS', bodyPart))
  return items
}

function sopModule (classUID: string, instanceUID: string, number: number, c: StudyContext): Item {
  return [
    el(0x00080016, 'UI', classUID),
    el(0x00080018, 'UI', instanceUID),
    el(0x00080023, 'DA', c.studyDate),
    el(0x00080033, 'TM', c.studyTime),
    el(0x00200013, 'IS', String(number))
  ]
}

interface SeriesPlan {
  spec: SeriesSpec
  ts: TransferSyntax
  part10: boolean
  rows: number
  columns: number
  frames: number
  eightBit: boolean
  sopClassUID: string
}

function planSeries (s: SeriesSpec): SeriesPlan {
  const profile = MODALITY_PROFILES[s.modality]
  const part10 = s.part10 ?? true
  const ts = TRANSFER_SYNTAXES[s.transferSyntax ?? (part10 ? 'explicit-le' : 'implicit-le')]
  const frames = s.frames ?? 1
  // JPEG Baseline is 8-bit only; US is 8-bit anyway.
  const eightBit = profile.phantom === 'us' || ts.name === 'jpeg-baseline'
  let sopClassUID = profile.sopClassUID
  if (frames > 1) sopClassUID = profile.phantom === 'us' ? US_MULTIFRAME : eightBit ? MULTIFRAME_BYTE_SC : MULTIFRAME_WORD_SC
  return {
    spec: s,
    ts,
    part10,
    rows: s.rows ?? profile.rows,
    columns: s.columns ?? profile.columns,
    frames,
    eightBit,
    sopClassUID
  }
}

function imageModules (plan: SeriesPlan, index: number, frameOfReference: string): Item {
  const { spec, rows, columns, frames, eightBit } = plan
  const profile = MODALITY_PROFILES[spec.modality]
  const us = profile.phantom === 'us'
  const spacing = spec.pixelSpacingMm ?? profile.fovMm / Math.min(rows, columns)
  const bits = eightBit ? 8 : 16
  const stored = us || !eightBit ? (us ? 8 : 12) : 8
  const items: Item = [
    el(0x00080008, 'CS', spec.modality === 'CT' ? ['ORIGINAL', 'PRIMARY', 'AXIAL'] : ['ORIGINAL', 'PRIMARY']),
    el(0x00200012, 'IS', '1'),
    el(0x00280002, 'US', 1),
    el(0x00280004, 'CS', 'MONOCHROME2'),
    el(0x00280010, 'US', rows),
    el(0x00280011, 'US', columns),
    el(0x00280100, 'US', bits),
    el(0x00280101, 'US', stored),
    el(0x00280102, 'US', stored - 1),
    el(0x00280103, 'US', 0)
  ]
  if (!us) {
    items.push(el(0x00281050, 'DS', ds(profile.windowCenter)), el(0x00281051, 'DS', ds(profile.windowWidth)))
  }
  if (spec.modality === 'CT' || (eightBit && !us)) {
    // 8-bit frames are the 12-bit values >> 4: RescaleSlope 16 maps them back.
    items.push(
      el(0x00281052, 'DS', spec.modality === 'CT' ? '-1024' : '0'),
      el(0x00281053, 'DS', eightBit ? '16' : '1'),
      el(0x00281054, 'LO', spec.modality === 'CT' ? 'HU' : 'US'))
  }
  if (plan.ts.name === 'jpeg-baseline') {
    items.push(el(0x00282110, 'CS', '01'), el(0x00282112, 'DS', '10'), el(0x00282114, 'CS', 'ISO_10918_1'))
  }
  if (frames > 1) {
    items.push(el(0x00280008, 'IS', String(frames)), el(0x00280009, 'AT', 0x00181063),
      el(0x00181063, 'DS', ds(spec.frameTimeMs ?? 40)))
    if (spec.frameTimeMs !== undefined) {
      // Cine module (PS3.3 C.7.6.5): the rate a loop was acquired at and is shown at, played as a loop (0).
      const rate = String(Math.round(1000 / spec.frameTimeMs))
      items.push(el(0x00082144, 'IS', rate), el(0x00180040, 'IS', rate), el(0x00181244, 'US', 0))
    }
    if (plan.sopClassUID !== US_MULTIFRAME) items.push(el(0x00080064, 'CS', 'WSD'))
  }
  if (spec.modality === 'CT' || spec.modality === 'MR') {
    const thickness = spec.modality === 'CT' ? 1.25 : 5
    const z = index * (spec.sliceStepMm ?? -thickness)
    items.push(
      el(0x00180050, 'DS', ds(thickness)),
      el(0x00185100, 'CS', 'HFS'),
      el(0x00200052, 'UI', frameOfReference),
      el(0x00201040, 'LO', ''),
      el(0x00280030, 'DS', [ds(spacing), ds(spacing)]))
    if (frames === 1) {
      items.push(
        el(0x00200032, 'DS', [ds(-spacing * columns / 2), ds(-spacing * rows / 2), ds(z)]),
        el(0x00200037, 'DS', ['1', '0', '0', '0', '1', '0']),
        el(0x00201041, 'DS', ds(z)))
    }
  }
  if (spec.modality === 'CT') items.push(el(0x00180060, 'DS', '120'))
  if (spec.modality === 'MR') {
    items.push(
      el(0x00180020, 'CS', 'SE'), el(0x00180021, 'CS', 'SK'), el(0x00180022, 'CS', ''),
      el(0x00180023, 'CS', '2D'), el(0x00180080, 'DS', '4000'), el(0x00180081, 'DS', '90'),
      el(0x00180087, 'DS', '1.5'), el(0x00180091, 'IS', '16'))
  }
  // PatientOrientation only where there is no ImagePositionPatient/ImageOrientationPatient.
  if (spec.modality !== 'CT' && spec.modality !== 'MR') items.push(el(0x00200020, 'CS', ['L', 'F']))
  if (spec.modality === 'CR' || spec.modality === 'DX') {
    items.push(el(0x00181164, 'DS', [ds(spacing), ds(spacing)]), el(0x00185101, 'CS', 'PA'))
    if (spec.modality === 'DX') items.push(el(0x00080068, 'CS', 'FOR PRESENTATION'))
  }
  return items
}

/** A marker's square, where it is in frame or instance `index`, clipped to the image. */
function burnMarker (frame: Uint16Array | Uint8Array, m: MarkerSpec, index: number, rows: number, columns: number):
void {
  const half = ((m.size ?? 5) - 1) / 2
  const x = m.column + index * (m.step?.columns ?? 0)
  const y = m.row + index * (m.step?.rows ?? 0)
  const x0 = Math.max(0, x - half)
  const x1 = Math.min(columns - 1, x + half)
  for (let r = Math.max(0, y - half); r <= Math.min(rows - 1, y + half); r++) {
    if (x1 >= x0) frame.fill(m.value, r * columns + x0, r * columns + x1 + 1)
  }
}

function pixelSource (plan: SeriesPlan, seed: number, instanceIndex: number): PixelSource {
  const { rows, columns, frames, eightBit, ts } = plan
  const phantom = createPhantom({ rows, columns, kind: MODALITY_PROFILES[plan.spec.modality].phantom, seed })
  const total = frames > 1 ? plan.spec.instances * frames : plan.spec.instances
  const info = { rows, columns, bitsStored: eightBit ? 8 : phantom.bitsStored }
  // Reused for every frame: the writer is done with a frame's bytes before it asks for the next one.
  const n = rows * columns
  const rawBuf = phantom.bitsStored === 8 ? new Uint8Array(n) : new Uint16Array(n)
  const eightBuf = eightBit && phantom.bitsStored !== 8 ? new Uint8Array(n) : undefined
  const swapBuf = !ts.syntax.littleEndian && !eightBit ? new Uint8Array(2 * n) : undefined
  return {
    frames,
    frameLength: rows * columns * (eightBit ? 1 : 2),
    vr: ts.encapsulated || eightBit ? 'OB' : 'OW',
    frame (f) {
      const raw = phantom.frame(frames > 1 ? instanceIndex * frames + f : instanceIndex, total, rawBuf)
      for (const m of plan.spec.markers ?? []) burnMarker(raw, m, frames > 1 ? f : instanceIndex, rows, columns)
      const px = raw instanceof Uint16Array && eightBuf !== undefined ? to8Bit(raw, eightBuf) : raw
      return ts.encapsulated
        ? encodeFrame(ts.name, px, info)
        : nativeFrameBytes(px, ts.syntax.littleEndian, swapBuf)
    }
  }
}

async function ensureDir (path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
}

/** The generator proper; generateStudy and writeMediaLayout differ only in where files go. */
export async function generateStudyFiles (spec: StudySpec, pathFor: PathFor, signal?: AbortSignal,
  onPatient?: (patient: GeneratedPatient) => void): Promise<StudyDetail> {
  validate(spec)
  const prng: Prng = createPrng(spec.seed ?? 1)
  const patient = resolvePatient(spec.patient, prng)
  onPatient?.(patient)
  const charset = CHARSETS[patient.charset]
  // Draw every default even when the spec overrides it, so one override does not shift the rest.
  const studyInstanceUID = uidFrom(prng)
  const studyDate = randomDate(prng, 2022, 2025)
  const studyTime = randomTime(prng)
  const accession = `SIM${prng.int(10_000_000, 99_999_999)}`
  const studyID = String(prng.int(1000, 9999))
  const referring = prng.pick(['van Dijk^Maarten', 'Peters^Anouk', 'Hendriks^Bram', 'Willems^Lotte'])
  const c: StudyContext = {
    spec,
    patient,
    charset,
    studyInstanceUID,
    studyDate: spec.studyDate ?? studyDate,
    studyTime,
    accession: spec.accession ?? accession,
    studyID,
    description: spec.description ?? spec.series.map((s) => s.modality).join('/') + ' onderzoek',
    referring
  }
  const base = patientStudyModules(c)
  const instances: InstanceDetail[] = []
  const write = async (detail: Omit<InstanceDetail, 'size'>, dataset: Item, ts: TransferSyntax, part10: boolean,
    pixels?: PixelSource): Promise<void> => {
    await ensureDir(detail.path)
    const size = await writeInstanceFile({
      path: detail.path,
      meta: part10
        ? { sopClassUID: detail.sopClassUID, sopInstanceUID: detail.sopInstanceUID, transferSyntaxUID: ts.uid }
        : undefined,
      dataset,
      transferSyntax: ts,
      charset,
      pixels
    }, signal)
    instances.push({ ...detail, size })
  }

  for (const [si, s] of spec.series.entries()) {
    const sp = prng.fork()
    const plan = planSeries(s)
    const seriesInstanceUID = uidFrom(sp)
    const frameOfReference = uidFrom(sp)
    const phantomSeed = sp.u32()
    const profile = MODALITY_PROFILES[s.modality]
    const description = s.description ?? profile.description
    const series = seriesModule(s.modality, seriesInstanceUID, si + 1, description, c, profile.bodyPart)
    for (let i = 0; i < s.instances; i++) {
      signal?.throwIfAborted()
      const sopInstanceUID = uidFrom(sp)
      const dataset: Element[] = [
        ...base, ...series,
        ...sopModule(plan.sopClassUID, sopInstanceUID, i + 1, c),
        ...imageModules(plan, i, frameOfReference)
      ]
      await write({
        path: pathFor(si, i, 'image'),
        studyInstanceUID,
        seriesInstanceUID,
        sopInstanceUID,
        sopClassUID: plan.sopClassUID,
        transferSyntaxUID: plan.ts.uid,
        modality: s.modality,
        isReport: false,
        kind: 'image',
        seriesNumber: si + 1,
        seriesDescription: description,
        instanceNumber: i + 1,
        contentDate: c.studyDate,
        contentTime: c.studyTime,
        rows: plan.rows,
        columns: plan.columns
      }, dataset, plan.ts, plan.part10, pixelSource(plan, phantomSeed, i))
    }
  }

  const reportTs = TRANSFER_SYNTAXES['explicit-le']
  let reportSeries = spec.series.length
  const report = async (kind: 'sr' | 'pdf'): Promise<void> => {
    const rp = prng.fork()
    const seriesInstanceUID = uidFrom(rp)
    const sopInstanceUID = uidFrom(rp)
    const contentTime = randomTime(rp)
    const number = reportSeries + 1
    const modality = kind === 'sr' ? 'SR' : 'DOC'
    const description = kind === 'sr' ? 'Verslag' : 'Verslag (PDF)'
    const sopClassUID = kind === 'sr' ? BASIC_TEXT_SR : ENCAPSULATED_PDF
    const title = 'Radiologieverslag'
    const evidence = [...new Set(instances.filter((x) => !x.isReport).map((x) => x.seriesInstanceUID))]
      .map((uid) => ({
        seriesInstanceUID: uid,
        sops: instances.filter((x) => x.seriesInstanceUID === uid)
          .map((x) => ({ classUID: x.sopClassUID, instanceUID: x.sopInstanceUID }))
      }))
    const content = kind === 'sr'
      ? srContent({
        studyInstanceUID,
        contentDate: c.studyDate,
        contentTime,
        observer: 'Radioloog^Rianne',
        text: DEFAULT_REPORT,
        evidence
      })
      : pdfContent({
        contentDate: c.studyDate,
        contentTime,
        title,
        pdf: buildPdf([
          `Patient ID: ${patient.id}  Accession: ${c.accession}  Date: ${c.studyDate}`,
          `Onderzoek: ${c.description}`, '',
          DEFAULT_REPORT.history, DEFAULT_REPORT.findings, DEFAULT_REPORT.conclusion
        ])
      })
    // Content date/time come from the report module, not sopModule's image defaults.
    const sop = sopModule(sopClassUID, sopInstanceUID, 1, c).filter((e) => e.tag !== 0x00080023 && e.tag !== 0x00080033)
    const dataset = [...base, ...seriesModule(modality, seriesInstanceUID, number, description, c), ...sop, ...content]
    await write({
      path: pathFor(reportSeries, 0, kind),
      studyInstanceUID,
      seriesInstanceUID,
      sopInstanceUID,
      sopClassUID,
      transferSyntaxUID: reportTs.uid,
      modality,
      isReport: true,
      kind,
      seriesNumber: number,
      seriesDescription: description,
      instanceNumber: 1,
      contentDate: c.studyDate,
      contentTime,
      documentTitle: kind === 'pdf' ? title : undefined
    }, dataset, reportTs, true)
    reportSeries++
  }
  if (spec.reports?.sr === true) await report('sr')
  if (spec.reports?.pdf === true) await report('pdf')

  const { charset: _charset, ...publicPatient } = patient
  return {
    studyInstanceUID,
    patient: publicPatient,
    accession: c.accession,
    studyDate: c.studyDate,
    instances,
    charset: patient.charset,
    studyTime: c.studyTime,
    studyID,
    description: c.description
  }
}

/** Writes the study under outDir as series-NN/instance-NNNN.dcm (names never derived from UIDs). */
export async function generateStudy (outDir: string, spec: StudySpec, signal?: AbortSignal): Promise<GeneratedStudy> {
  const detail = await generateStudyFiles(spec, (si, ii) =>
    join(outDir, `series-${String(si + 1).padStart(2, '0')}`, `instance-${String(ii + 1).padStart(4, '0')}.dcm`),
  signal)
  return toPublic(detail)
}

/** A StudyDetail reduced to the public GeneratedStudy shape. */
export function toPublic (detail: StudyDetail): GeneratedStudy {
  return {
    studyInstanceUID: detail.studyInstanceUID,
    patient: detail.patient,
    accession: detail.accession,
    studyDate: detail.studyDate,
    instances: detail.instances.map((d) => ({
      path: d.path,
      size: d.size,
      studyInstanceUID: d.studyInstanceUID,
      seriesInstanceUID: d.seriesInstanceUID,
      sopInstanceUID: d.sopInstanceUID,
      sopClassUID: d.sopClassUID,
      transferSyntaxUID: d.transferSyntaxUID,
      modality: d.modality,
      isReport: d.isReport
    }))
  }
}
