import { copyFile, open, mkdtemp, readFile, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { AuditLog } from '../../../node/audit/audit-log.ts'
import { readHeader } from '../../../node/dicom/dataset-reader.ts'
import { nodePaths } from '../../../node/paths.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { fetchAs, tokenFor } from '../../helpers/api-caller.ts'
import { dcmtk } from '../../helpers/dcmtk.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'

/*
 * DICOMweb's rendered resources (PS3.18 8.3.5) on a real node over HTTP: a ramp image shows the
 * window asked for, a multi-frame instance renders the frame asked for, and copies compressed by
 * dcmtk (JPEG lossless and lossy, JPEG-LS, RLE, fragmented without an offset table) or GDCM
 * (JPEG 2000), deflated, implicit VR and big endian ones render as their uncompressed originals,
 * and a colour photograph wrapped by img2dcm renders in colour. Bad parameters, frames out of
 * range and reports are refused with their codes; every rendered image is audited as a view.
 */

const logger = pino({ level: 'silent' })

// dicomweb-client, the library OHIF viewers use (in Node it needs an XMLHttpRequest).
const require = createRequire(import.meta.url)
;(globalThis as { XMLHttpRequest?: unknown }).XMLHttpRequest ??= require('xhr2')
interface RenderedOptions { studyInstanceUID: string, seriesInstanceUID: string, sopInstanceUID: string, mediaTypes?: Array<{ mediaType: string }>, queryParams?: Record<string, string> }
interface DicomwebClient {
  // A single-part answer comes as an array of its one body.
  retrieveInstanceRendered (options: RenderedOptions): Promise<ArrayBuffer[]>
  retrieveInstanceFramesRendered (options: RenderedOptions & { frameNumbers: number[] }): Promise<ArrayBuffer[]>
  retrieveInstanceThumbnail (options: RenderedOptions): Promise<ArrayBuffer[]>
}
const { api } = require('dicomweb-client') as { api: { DICOMwebClient: new (options: { url: string, headers?: Record<string, string> }) => DicomwebClient } }
const SIZE = 64
const FRAMES = 4
/** stored value of frame k (1-based) of the multi-frame instance, around which its pixels vary */
const frameValue = (k: number): number => 600 * k
/** RescaleIntercept of frame k of the enhanced copy: each frame's own, in its functional groups */
const enhancedIntercept = (k: number): number => -1024 - 300 * (k - 1)
/** pixel noise of the multi-frame instance (0..250): enough that JPEG-LS cannot fit a frame into one 1 KiB fragment */
const noise = (x: number, y: number, k: number): number => (Math.imul(x * 7919 + y * 104729 + k * 31, 2654435761) >>> 0) % 251
const meanNoise = (k: number): number => {
  let sum = 0
  for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) sum += noise(x, y, k)
  return sum / (SIZE * SIZE)
}

/** A compressed or deflated copy, and the uncompressed instance it must render as (for a lossy copy: its own decompression by dcmtk). */
interface Copy { name: string, sopInstanceUID: string, reference: string }

/** Overwrites the native 16-bit pixel data of a generated file, frame by frame, with values of our own. */
async function setPixels (path: string, frames: number, value: (frame: number, x: number, y: number) => number): Promise<void> {
  const parsed = readHeader(path)
  const frame = Buffer.alloc(SIZE * SIZE * 2)
  const file = await open(path, 'r+')
  try {
    for (let k = 1; k <= frames; k++) {
      for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) frame.writeUInt16LE(value(k, x, y), 2 * (y * SIZE + x))
      await file.write(frame, 0, frame.length, parsed.pixelDataOffset! + (k - 1) * frame.length)
    }
  } finally {
    await file.close()
  }
}

/** Grey values of a rendered image, row by row (one channel). */
async function greys (body: ArrayBuffer): Promise<{ width: number, height: number, data: Buffer }> {
  const { data, info } = await sharp(Buffer.from(body)).greyscale().raw().toBuffer({ resolveWithObject: true })
  return { width: info.width, height: info.height, data }
}

const mean = (data: Buffer): number => data.reduce((a, b) => a + b, 0) / data.length

describe('DICOMweb rendered and thumbnail resources', () => {
  let work: string
  let store: StudyStore
  let audit: AuditLog
  let app: FastifyInstance
  let url: string
  let study: GeneratedStudy
  let ramp: GeneratedStudy['instances'][number]
  let multi: GeneratedStudy['instances'][number]
  let sr: GeneratedStudy['instances'][number]
  let pdf: GeneratedStudy['instances'][number]
  const copies: { ramp: Copy[], multi: Copy[] } = { ramp: [], multi: [] }
  let colour: { seriesInstanceUID: string, sopInstanceUID: string }
  let enhanced: { sopInstanceUID: string }
  let call: (path: string, init?: RequestInit) => Promise<Response>

  const instancePath = (i: { sopInstanceUID: string }, seriesOf: { seriesInstanceUID: string } = ramp): string =>
    `/dicomweb/studies/${study.studyInstanceUID}/series/${seriesOf.seriesInstanceUID}/instances/${i.sopInstanceUID}`

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'beeldnet-rendered-'))
    study = await generateStudy(join(work, 'study'), {
      seed: 314,
      reports: { sr: true, pdf: true },
      series: [
        { modality: 'CT', instances: 1, rows: SIZE, columns: SIZE },
        { modality: 'CT', instances: 1, rows: SIZE, columns: SIZE, frames: FRAMES }
      ]
    })
    ;[ramp, multi] = study.instances.filter((i) => !i.isReport) as [typeof ramp, typeof multi]
    sr = study.instances.find((i) => i.isReport && i.modality === 'SR')!
    pdf = study.instances.find((i) => i.isReport && i.modality === 'DOC')!
    // A horizontal ramp: stored value 64 * x (0 .. 4032), HU 64 * x - 1024. Frames around one value each.
    await setPixels(ramp.path, 1, (_k, x) => 64 * x)
    await setPixels(multi.path, FRAMES, (k, x, y) => frameValue(k) + noise(x, y, k))

    const files = study.instances.map((i) => i.path)
    const variants: Array<{ name: string, tool: string, args: string[], lossy?: boolean }> = [
      { name: 'jpeg-lossless', tool: 'dcmcjpeg', args: ['+e1'] },
      { name: 'jpeg-extended', tool: 'dcmcjpeg', args: ['+ee', '+q', '95'], lossy: true },
      { name: 'jpeg-ls', tool: 'dcmcjpls', args: [] },
      { name: 'jpeg-ls-fragmented', tool: 'dcmcjpls', args: ['+fs', '1', '-ot'] },
      { name: 'rle', tool: 'dcmcrle', args: [] },
      { name: 'jpeg-2000', tool: 'gdcmconv', args: ['--j2k'] },
      { name: 'deflated', tool: 'dcmconv', args: ['+td'] },
      { name: 'implicit-vr', tool: 'dcmconv', args: ['+ti'] },
      { name: 'big-endian', tool: 'dcmconv', args: ['+tb'] }
    ]
    let n = 0
    for (const variant of variants) {
      for (const [which, original] of [['ramp', ramp], ['multi', multi]] as const) {
        const out = join(work, `${which}-${variant.name}.dcm`)
        const made = await dcmtk(variant.tool, [...variant.args, original.path, out])
        expect(made.code, `${variant.tool} ${made.stderr}`).toBe(0)
        // Another SOP instance of the same series: the store keeps one copy per SOP Instance UID.
        const sopInstanceUID = `${original.sopInstanceUID}.${++n}`
        expect((await dcmtk('dcmodify', ['-nb', '-m', `(0008,0018)=${sopInstanceUID}`, out])).code).toBe(0)
        files.push(out)
        if (variant.name === 'jpeg-ls-fragmented' && which === 'multi') {
          // Several fragments per frame and an empty offset table: frames are found by their codestreams.
          const items = (await dcmtk('dcmdump', [out])).stdout.split('\n').filter((l) => /^\s+\(fffe,e000\) pi/.test(l))
          expect(items[0]).toMatch(/pi \(no value available\)/)
          expect(items.length).toBeGreaterThan(2 * FRAMES)
        }
        let reference = original.sopInstanceUID
        if (variant.lossy) {
          // dcmcjpeg rescales what it compresses lossily: the reference is what dcmtk decodes it to.
          const decoded = `${out}.decoded`
          expect((await dcmtk('dcmdjpeg', [out, decoded])).code).toBe(0)
          reference = `${original.sopInstanceUID}.${++n}`
          expect((await dcmtk('dcmodify', ['-nb', '-m', `(0008,0018)=${reference}`, decoded])).code).toBe(0)
          files.push(decoded)
        }
        copies[which].push({ name: variant.name, sopInstanceUID, reference })
      }
    }

    // An enhanced-style copy of the multi-frame instance: rescale and window only in functional
    // groups, the slope shared, an intercept per frame (300 lower each frame), frame 2's own window.
    const enhancedFile = join(work, 'multi-enhanced.dcm')
    await copyFile(multi.path, enhancedFile)
    enhanced = { sopInstanceUID: `${multi.sopInstanceUID}.${n + 1}` }
    const groups = ['-e', '(0028,1050)', '-e', '(0028,1051)', '-e', '(0028,1052)', '-e', '(0028,1053)', '-e', '(0028,1054)',
      '-i', '(5200,9229)[0].(0028,9145)[0].(0028,1053)=1',
      '-i', '(5200,9230)[1].(0028,9132)[0].(0028,1050)=1200', '-i', '(5200,9230)[1].(0028,9132)[0].(0028,1051)=2000']
    for (let k = 1; k <= FRAMES; k++) groups.push('-i', `(5200,9230)[${k - 1}].(0028,9145)[0].(0028,1052)=${enhancedIntercept(k)}`)
    expect((await dcmtk('dcmodify', ['-nb', '-m', `(0008,0018)=${enhanced.sopInstanceUID}`, ...groups, enhancedFile])).code).toBe(0)
    files.push(enhancedFile)

    // A colour photograph as dcmtk wraps one: JPEG baseline, YBR_FULL_422, in the same study.
    const photo = join(work, 'photo.jpg')
    const halves = Buffer.alloc(SIZE * SIZE * 3)
    for (let p = 0; p < SIZE * SIZE; p++) halves.set((p % SIZE) < SIZE / 2 ? [220, 30, 30] : [30, 30, 220], 3 * p)
    await sharp(halves, { raw: { width: SIZE, height: SIZE, channels: 3 } }).jpeg({ quality: 95 }).toFile(photo)
    const colourFile = join(work, 'photo.dcm')
    expect((await dcmtk('img2dcm', ['-stf', ramp.path, photo, colourFile])).code).toBe(0)
    // img2dcm takes the patient's name and ID from the study's file, not the issuer of that ID.
    expect((await dcmtk('dcmodify', ['-nb', '-i', `(0010,0021)=${study.patient.issuer}`, colourFile])).code).toBe(0)
    const colourHeader = readHeader(colourFile).dataset
    const uidOf = (t: number): string => colourHeader.get(t)!.value!.toString('latin1').replace(/\0+$/, '')
    colour = { seriesInstanceUID: uidOf(0x0020000E), sopInstanceUID: uidOf(0x00080018) }
    files.push(colourFile)

    const dir = join(work, 'node')
    store = new StudyStore({ dir })
    await store.start()
    const session = store.beginImport()
    for (const path of files) await session.add(path)
    const [result] = await session.commit()
    expect(result?.rejected ?? []).toEqual([])
    audit = new AuditLog(join(dir, 'audit', 'trail.jsonl'))
    await audit.start()
    app = createHttpServer({ store, logger, audit, users: new UserStore(nodePaths(dir).users) }, { nodeName: 'test', peerId: 'test' })
    url = await listenOnLoopback(app)
    const clinician = fetchAs({ dataDir: dir })
    call = async (path, init) => clinician(`${url}${path}`, init)
  })

  afterAll(async () => {
    await app?.close()
    await audit?.stop()
    await store?.stop()
    await rm(work, { recursive: true, force: true })
  })

  async function rendered (path: string, accept = 'image/png'): Promise<{ width: number, height: number, data: Buffer }> {
    const response = await call(path, { headers: { accept } })
    expect(response.status, await response.clone().text()).toBe(200)
    expect(response.headers.get('content-type')).toBe(accept === 'image/png' ? 'image/png' : 'image/jpeg')
    return greys(await response.arrayBuffer())
  }

  async function refusal (path: string, init?: RequestInit): Promise<{ status: number, code: string }> {
    const response = await call(path, init)
    const body = await response.json() as { code: string }
    return { status: response.status, code: body.code }
  }

  it('renders an instance as JPEG by default and as PNG when asked, at its own size', async () => {
    // PS3.18's accept query parameter stands for the Accept header.
    const asked = await call(`${instancePath(ramp)}/rendered?accept=image/png`, { headers: { accept: 'image/jpeg' } })
    expect(asked.headers.get('content-type')).toBe('image/png')
    const jpeg = await call(`${instancePath(ramp)}/rendered`)
    expect(jpeg.status).toBe(200)
    expect(jpeg.headers.get('content-type')).toBe('image/jpeg')
    const jpegMeta = await sharp(Buffer.from(await jpeg.arrayBuffer())).metadata()
    expect([jpegMeta.format, jpegMeta.width, jpegMeta.height]).toEqual(['jpeg', SIZE, SIZE])
    const png = await call(`${instancePath(ramp)}/rendered`, { headers: { accept: 'image/png' } })
    const pngMeta = await sharp(Buffer.from(await png.arrayBuffer())).metadata()
    expect([pngMeta.format, pngMeta.width, pngMeta.height]).toEqual(['png', SIZE, SIZE])
  })

  it('applies the window asked for: below centre - width/2 black, above centre + width/2 white, a rising ramp between', async () => {
    // HU of column x is 64x - 1024; a window 0..1024 HU covers columns 16 to 32.
    const { data, width } = await rendered(`${instancePath(ramp)}/rendered?window=512,1024,linear`)
    const row = [...data.subarray(10 * width, 11 * width)]
    for (let x = 0; x < 16; x++) expect(row[x], `column ${x}`).toBe(0)
    for (let x = 33; x < SIZE; x++) expect(row[x], `column ${x}`).toBe(255)
    for (let x = 17; x < 32; x++) {
      expect(row[x]).toBeGreaterThan(row[x - 1]!)
      // PS3.3 C.11.2.1.2.1: ((x - (c - 0.5)) / (w - 1) + 0.5) * 255
      expect(Math.abs(row[x]! - ((64 * x - 1024 - 511.5) / 1023 + 0.5) * 255)).toBeLessThanOrEqual(1.5)
    }
    // Another window moves the edges: 1536..2560 HU is columns 40 to 56.
    const moved = [...(await rendered(`${instancePath(ramp)}/rendered?window=2048,1024`)).data.subarray(0, SIZE)]
    expect(moved[39]).toBe(0)
    expect(moved[48]).toBeGreaterThan(100)
    expect(moved[48]).toBeLessThan(155)
    expect(moved[57]).toBe(255)
  })

  it('honours the window function: sigmoid is grey at the centre and never quite black or white', async () => {
    const sigmoid = [...(await rendered(`${instancePath(ramp)}/rendered?window=512,1024,sigmoid`)).data.subarray(0, SIZE)]
    expect(Math.abs(sigmoid[24]! - 127)).toBeLessThanOrEqual(2)
    expect(sigmoid[10]).toBeGreaterThan(0)
    expect(sigmoid[40]).toBeLessThan(255)
    const exact = [...(await rendered(`${instancePath(ramp)}/rendered?window=512,1024,linear-exact`)).data.subarray(0, SIZE)]
    expect(exact[15]).toBe(0)
    expect(exact[33]).toBe(255)
  })

  it('scales into the viewport, keeping the aspect ratio, and cuts and flips the source region', async () => {
    const full = await rendered(`${instancePath(ramp)}/rendered?viewport=200,200`, 'image/jpeg')
    expect([full.width, full.height]).toEqual([200, 200])
    const wide = await rendered(`${instancePath(ramp)}/rendered?viewport=100,40`)
    expect([wide.width, wide.height]).toEqual([40, 40])
    // The right quarter of the ramp (HU 2048..3008) under a window 0..1024: all white.
    const right = await rendered(`${instancePath(ramp)}/rendered?viewport=32,32,48,0,16,64&window=512,1024`)
    expect([right.width, right.height]).toEqual([8, 32])
    expect(Math.min(...right.data)).toBe(255)
    // A negative source width flips the ramp: dark on the right.
    const flipped = await rendered(`${instancePath(ramp)}/rendered?viewport=64,64,64,0,-64,64&window=1024,2048`)
    const row = [...flipped.data.subarray(0, SIZE)]
    expect(row[0]).toBeGreaterThan(row[SIZE - 1]!)
  })

  it('renders frame N of a multi-frame instance, each frame its own', async () => {
    const window = 'window=1000,4000' // HU -1000..3000: stored 24..4024
    const means: number[] = []
    for (let k = 1; k <= FRAMES; k++) {
      const { data } = await rendered(`${instancePath(multi, multi)}/frames/${k}/rendered?${window}`)
      const expected = ((frameValue(k) + meanNoise(k) - 1024 - 999.5) / 3999 + 0.5) * 255
      expect(Math.abs(mean(data) - expected), `frame ${k}`).toBeLessThanOrEqual(1.5)
      means.push(mean(data))
    }
    expect(new Set(means.map(Math.round)).size).toBe(FRAMES)
    // The instance itself renders as its first frame.
    expect(mean((await rendered(`${instancePath(multi, multi)}/rendered?${window}`)).data)).toBe(means[0])
  })

  it('renders compressed, deflated, implicit VR and big endian copies as their uncompressed originals', async () => {
    const window = 'window=1000,4000'
    for (const [which, seriesOf] of [['ramp', ramp], ['multi', multi]] as const) {
      for (let k = 1; k <= (which === 'multi' ? FRAMES : 1); k++) {
        for (const copy of copies[which]) {
          const expected = await rendered(`${instancePath({ sopInstanceUID: copy.reference }, seriesOf)}/frames/${k}/rendered?${window}`)
          const { data } = await rendered(`${instancePath(copy, seriesOf)}/frames/${k}/rendered?${window}`)
          const worst = Math.max(...data.map((v, i) => Math.abs(v - expected.data[i]!)))
          expect(worst, `${copy.name} ${which} frame ${k}`).toBeLessThanOrEqual(copy.reference === seriesOf.sopInstanceUID ? 0 : 1)
        }
      }
    }
  })

  it('takes rescale and window from the frame\'s functional groups (enhanced multi-frame), per frame over shared', async () => {
    for (let k = 1; k <= FRAMES; k++) {
      // HU of the enhanced frame k are 300 (k - 1) below the original's: the same image under a window moved as much.
      const shifted = 1000 + enhancedIntercept(1) - enhancedIntercept(k)
      const expected = await rendered(`${instancePath(multi, multi)}/frames/${k}/rendered?window=${shifted},4000`)
      const { data } = await rendered(`${instancePath(enhanced, multi)}/frames/${k}/rendered?window=1000,4000`)
      expect(data.equals(expected.data), `frame ${k}`).toBe(true)
    }
    // Frame 2's own window applies when none is asked for.
    const own = await rendered(`${instancePath(enhanced, multi)}/frames/2/rendered`)
    const expected = await rendered(`${instancePath(multi, multi)}/frames/2/rendered?window=${1200 + enhancedIntercept(1) - enhancedIntercept(2)},2000`)
    expect(own.data.equals(expected.data)).toBe(true)
  })

  it('renders a colour image in colour', async () => {
    const response = await call(`${instancePath(colour, colour)}/rendered`, { headers: { accept: 'image/png' } })
    expect(response.status).toBe(200)
    const { data, info } = await sharp(Buffer.from(await response.arrayBuffer())).raw().toBuffer({ resolveWithObject: true })
    expect([info.width, info.height, info.channels]).toEqual([SIZE, SIZE, 3])
    const pixel = (x: number, y: number): number[] => [...data.subarray(3 * (y * SIZE + x), 3 * (y * SIZE + x) + 3)]
    const [r1, g1, b1] = pixel(8, 32)
    const [r2, g2, b2] = pixel(56, 32)
    expect(r1! - b1!).toBeGreaterThan(120)
    expect(b2! - r2!).toBeGreaterThan(120)
    expect(Math.max(g1!, g2!)).toBeLessThan(80)
  })

  it('gives thumbnails of instances, frames, series and studies, small by default and in the viewport asked for', async () => {
    for (const path of [
      `${instancePath(ramp)}/thumbnail`,
      `${instancePath(multi, multi)}/frames/2/thumbnail`,
      `/dicomweb/studies/${study.studyInstanceUID}/series/${multi.seriesInstanceUID}/thumbnail`,
      `/dicomweb/studies/${study.studyInstanceUID}/thumbnail`
    ]) {
      const image = await rendered(path, 'image/jpeg')
      expect([image.width, image.height], path).toEqual([SIZE, SIZE])
    }
    const sized = await rendered(`${instancePath(ramp)}/thumbnail?viewport=32,32`)
    expect([sized.width, sized.height]).toEqual([32, 32])
    // A thumbnail has no window (PS3.18 ignores parameters a resource does not define): the same image with one.
    const plain = await rendered(`${instancePath(ramp)}/thumbnail`)
    expect((await rendered(`${instancePath(ramp)}/thumbnail?window=40,400&annotation=patient`)).data.equals(plain.data)).toBe(true)
  })

  it('refuses bad parameters with 400 and a code, a frame out of range with 404, a report with 422', async () => {
    const bad = 'BEELDNET_ERR_RENDER_PARAMETER'
    for (const query of ['window=abc', 'window=40', 'window=40,0', 'window=40,400,cubic', 'viewport=0,10', 'viewport=10', 'viewport=64,64,0,0,65,64',
      'viewport=99999,10', 'quality=0', 'quality=high', 'window=1,2&window=3,4']) {
      expect(await refusal(`${instancePath(ramp)}/rendered?${query}`), query).toEqual({ status: 400, code: bad })
    }
    expect(await refusal(`${instancePath(multi, multi)}/frames/1,2/rendered`)).toEqual({ status: 400, code: bad })
    expect(await refusal(`${instancePath(multi, multi)}/frames/${FRAMES + 1}/rendered`)).toEqual({ status: 404, code: 'BEELDNET_ERR_FRAME_NOT_FOUND' })
    expect(await refusal(`${instancePath(multi, multi)}/frames/0/rendered`)).toEqual({ status: 404, code: 'BEELDNET_ERR_FRAME_NOT_FOUND' })
    expect(await refusal(`${instancePath(ramp)}/frames/2/rendered`)).toEqual({ status: 404, code: 'BEELDNET_ERR_FRAME_NOT_FOUND' })
    expect(await refusal(`${instancePath(sr, sr)}/rendered`)).toEqual({ status: 422, code: 'BEELDNET_ERR_NO_PIXEL_DATA' })
    expect(await refusal(`${instancePath(pdf, pdf)}/thumbnail`)).toEqual({ status: 422, code: 'BEELDNET_ERR_NO_PIXEL_DATA' })
    expect(await refusal(`/dicomweb/studies/${study.studyInstanceUID}/series/${sr.seriesInstanceUID}/thumbnail`)).toEqual({ status: 404, code: 'BEELDNET_ERR_NO_IMAGE' })
    expect(await refusal(`${instancePath(ramp)}/rendered`, { headers: { accept: 'image/gif' } })).toEqual({ status: 406, code: 'BEELDNET_ERR_NOT_ACCEPTABLE' })
    expect(await refusal(`${instancePath({ sopInstanceUID: '1.2.3' })}/rendered`)).toEqual({ status: 404, code: 'BEELDNET_ERR_NOT_FOUND' })
    // Patient images: a clinician's login or token, as for every DICOMweb route.
    expect((await fetch(`${url}${instancePath(ramp)}/rendered`)).status).toBe(401)
  })

  it('serves dicomweb-client\'s rendered, rendered frames and thumbnail calls', async () => {
    const client = new api.DICOMwebClient({ url: `${url}/dicomweb`, headers: { authorization: `Bearer ${await tokenFor({ dataDir: join(work, 'node') })}` } })
    const target = { studyInstanceUID: study.studyInstanceUID, seriesInstanceUID: multi.seriesInstanceUID, sopInstanceUID: multi.sopInstanceUID }
    const [png] = await client.retrieveInstanceRendered({ ...target, mediaTypes: [{ mediaType: 'image/png' }], queryParams: { viewport: '32,32' } })
    expect(await sharp(Buffer.from(png!)).metadata()).toMatchObject({ format: 'png', width: 32, height: 32 })
    const [frame] = await client.retrieveInstanceFramesRendered({ ...target, frameNumbers: [3], mediaTypes: [{ mediaType: 'image/jpeg' }], queryParams: { window: '1000,4000' } })
    expect(await sharp(Buffer.from(frame!)).metadata()).toMatchObject({ format: 'jpeg', width: SIZE, height: SIZE })
    const expected = await rendered(`${instancePath(multi, multi)}/frames/3/rendered?window=1000,4000`, 'image/jpeg')
    expect(Math.abs(mean((await greys(frame!)).data) - mean(expected.data))).toBeLessThanOrEqual(0.5)
    const [thumbnail] = await client.retrieveInstanceThumbnail({ ...target, mediaTypes: [{ mediaType: 'image/jpeg' }] })
    expect(await sharp(Buffer.from(thumbnail!)).metadata()).toMatchObject({ format: 'jpeg', width: SIZE, height: SIZE })
  })

  it('records rendered images and thumbnails in the audit trail as a view of the patient, once per caller per study', async () => {
    // The clinician token renders this study throughout this file: one view record for it.
    // A viewer reads a study image by image, and the trail records the study opened, not each
    // image (once per caller per study per 30 minutes, view-records.ts). A new caller's first
    // rendered frame is its record; its thumbnail after it is not another.
    await rendered(`${instancePath(ramp)}/thumbnail`, 'image/jpeg')
    const other = (await new UserStore(nodePaths(join(work, 'node')).users).addToken('second viewer', 'clinician')).token
    for (const path of [`${instancePath(multi, multi)}/frames/3/rendered?quality=50`, `${instancePath(ramp)}/thumbnail`]) {
      const res = await fetch(`${url}${path}`, { headers: { accept: 'image/jpeg', authorization: `Bearer ${other}` } })
      expect(res.status, path).toBe(200)
      await res.arrayBuffer()
    }
    const trail = (await readFile(audit.path, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { event: string, outcome: string, studyInstanceUID?: string, user: { system?: string }, details?: { path?: string } })
    const views = trail.filter((e) => e.event === 'view' && e.studyInstanceUID === study.studyInstanceUID)
    expect(views.filter((e) => e.user.system?.endsWith('(test clinician)') === true)).toHaveLength(1)
    expect(views.filter((e) => e.user.system?.endsWith('(second viewer)') === true)).toMatchObject([
      { outcome: `rendered frame 3 of ${multi.sopInstanceUID}`, details: { path: `${instancePath(multi, multi)}/frames/3/rendered` } }
    ])
  })
})
