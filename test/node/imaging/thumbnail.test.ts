import { mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { createThumbnailer } from '../../../node/imaging/thumbnail.ts'
import { nodePaths } from '../../../node/paths.ts'
import type { InstanceRecord } from '../../../node/store/records.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { fetchAs } from '../../helpers/api-caller.ts'
import { dcmtk } from '../../helpers/dcmtk.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
const EXPLICIT_LE = '1.2.840.10008.1.2.1'
const IMPLICIT_LE = '1.2.840.10008.1.2'
const RLE = '1.2.840.10008.1.2.5'
const JPEG_BASELINE = '1.2.840.10008.1.2.4.50'
const DEFLATED = '1.2.840.10008.1.2.1.99'

describe('series thumbnails on the node API', () => {
  let work: string
  let cacheDir: string
  let store: StudyStore
  let app: FastifyInstance
  let url: string
  let study: GeneratedStudy
  const logLines: Array<{ msg?: string, sopInstanceUID?: string }> = []

  const dataDir = (): string => join(work, 'node')
  const seriesOf = (modality: string, transferSyntaxUID: string): string =>
    study.instances.find((i) => i.modality === modality && i.transferSyntaxUID === transferSyntaxUID)!.seriesInstanceUID
  const thumbnailUrl = (series: string, studyUID = study.studyInstanceUID): string => `${url}/api/studies/${studyUID}/series/${series}/thumbnail`
  const get = async (series: string): Promise<Response> => fetchAs({ dataDir: dataDir() })(thumbnailUrl(series))
  const png = async (res: Response): Promise<Buffer> => {
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('image/png')
    expect(res.headers.get('cache-control')).toBe('private, max-age=86400')
    const body = Buffer.from(await res.arrayBuffer())
    expect(body.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true)
    return body
  }
  /** Width, height and how many different grey values (first channel) the decoded PNG holds. */
  const look = async (body: Buffer): Promise<{ width: number, height: number, values: number }> => {
    const { data, info } = await sharp(body).raw().toBuffer({ resolveWithObject: true })
    const values = new Set<number>()
    for (let i = 0; i < data.length; i += info.channels) values.add(data[i]!)
    return { width: info.width, height: info.height, values: values.size }
  }
  /** The instance the thumbnail of a series is drawn from: the middle one by InstanceNumber. */
  const middleOf = async (series: string): Promise<InstanceRecord> => {
    const images = (await store.getStudy(study.studyInstanceUID)).instances
      .filter((i) => i.seriesInstanceUID === series)
      .sort((a, b) => a.number! - b.number!)
    return images[Math.floor(images.length / 2)]!
  }
  const renders = (sopInstanceUID: string): number => logLines.filter((l) => l.msg === 'thumbnail rendered' && l.sopInstanceUID === sopInstanceUID).length
  const cacheListing = async (): Promise<string[]> => (await readdir(cacheDir).catch(() => [])).sort()

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'beeldnet-thumbnails-'))
    cacheDir = join(work, 'thumbnails')
    study = await generateStudy(join(work, 'src'), {
      seed: 131,
      series: [
        { modality: 'CT', instances: 3, rows: 32, columns: 64 },
        // No window in the dataset (US): drawn with a min/max window; larger than a thumbnail.
        { modality: 'US', instances: 1 },
        { modality: 'MR', instances: 2, rows: 48, columns: 48, transferSyntax: 'rle' },
        // The generator's JPEG is a stand-in codestream that nothing can decode.
        { modality: 'CR', instances: 1, rows: 32, columns: 32, transferSyntax: 'jpeg-baseline' },
        { modality: 'CT', instances: 1, rows: 40, columns: 30, part10: false },
        // Deflated by dcmconv before it is imported.
        { modality: 'DX', instances: 1, rows: 36, columns: 52 },
        // A multi-frame instance whose file is larger than one frame drawn as RGBA.
        { modality: 'MR', instances: 1, rows: 32, columns: 32, frames: 40 }
      ],
      reports: { sr: true }
    })
    store = new StudyStore({ dir: dataDir() })
    await store.start()
    const session = store.beginImport()
    for (const i of study.instances) {
      if (i.modality !== 'DX') { await session.add(i.path); continue }
      const deflated = `${i.path}.deflated`
      expect((await dcmtk('dcmconv', ['+td', i.path, deflated])).code).toBe(0)
      await session.add(deflated)
    }
    await session.commit()
    const logger = pino({ level: 'debug' }, { write: (line: string) => { logLines.push(JSON.parse(line) as { msg?: string, sopInstanceUID?: string }) } })
    app = createHttpServer({ store, logger, users: new UserStore(nodePaths(dataDir()).users) }, { nodeName: 'test', peerId: 'test', thumbnailCacheDir: cacheDir })
    url = await listenOnLoopback(app)
  })

  afterAll(async () => {
    await app.close()
    await store.stop()
    await rm(work, { recursive: true, force: true })
  })

  it('draws the middle image of a series as a PNG within 128 x 128, keeping its aspect ratio, and caches it', async () => {
    const series = seriesOf('CT', EXPLICIT_LE)
    const body = await png(await get(series))
    const seen = await look(body)
    // 64 wide, 32 high: within 128 x 128, 2:1 as the series, and not enlarged.
    expect(seen).toMatchObject({ width: 64, height: 32 })
    expect(seen.values).toBeGreaterThan(1)
    const middle = await middleOf(series)
    expect(middle.number).toBe(2)
    expect((await readFile(join(cacheDir, `${middle.sopInstanceUID}.png`))).equals(body)).toBe(true)
    expect(renders(middle.sopInstanceUID)).toBe(1)
  })

  it('answers from the cache without touching the stored file, and renders again only when the cache file is gone', async () => {
    const series = seriesOf('CT', EXPLICIT_LE)
    const middle = await middleOf(series)
    const first = await readFile(join(cacheDir, `${middle.sopInstanceUID}.png`))
    const stored = store.blobs.pathOf(middle.sha256)
    await rename(stored, `${stored}.aside`)
    try {
      expect((await png(await get(series))).equals(first)).toBe(true)
      expect(renders(middle.sopInstanceUID)).toBe(1)
      // Without the cache the render path has to read the file, which is gone: no partial file is left.
      await rm(join(cacheDir, `${middle.sopInstanceUID}.png`))
      const res = await get(series)
      expect(res.status).toBe(500)
      expect((await res.json() as { code: string }).code).toBe('BEELDNET_ERR_STORE_FILE_MISSING')
      expect((await cacheListing()).filter((n) => n.startsWith('.') || n.startsWith(middle.sopInstanceUID))).toEqual([])
    } finally {
      await rename(`${stored}.aside`, stored)
    }
    expect((await png(await get(series))).equals(first)).toBe(true)
    expect(renders(middle.sopInstanceUID)).toBe(2)
  })

  it('scales a large image down and windows an image whose dataset has no window by its min/max', async () => {
    const seen = await look(await png(await get(seriesOf('US', EXPLICIT_LE)))) // 640 x 480
    expect(seen).toMatchObject({ width: 128, height: 96 })
    expect(seen.values).toBeGreaterThan(16)
  })

  it('decodes compressed pixel data (RLE Lossless), rendering once for concurrent requests', async () => {
    const series = seriesOf('MR', RLE)
    const bodies = await Promise.all(Array.from({ length: 6 }, async () => png(await get(series))))
    for (const b of bodies) expect(b.equals(bodies[0]!)).toBe(true)
    const seen = await look(bodies[0]!)
    expect(seen).toMatchObject({ width: 48, height: 48 })
    expect(seen.values).toBeGreaterThan(1)
    expect(renders((await middleOf(series)).sopInstanceUID)).toBe(1)
  })

  it('draws an instance stored as a bare dataset (no preamble or File Meta)', async () => {
    const seen = await look(await png(await get(seriesOf('CT', IMPLICIT_LE))))
    expect(seen).toMatchObject({ width: 30, height: 40 })
    expect(seen.values).toBeGreaterThan(1)
  })

  it('draws a deflated instance (inflated up to its first frame, not refused) and caches it', async () => {
    const series = seriesOf('DX', EXPLICIT_LE)
    const middle = await middleOf(series)
    expect(middle.transferSyntaxUID).toBe(DEFLATED)
    const body = await png(await get(series))
    const seen = await look(body)
    expect(seen).toMatchObject({ width: 52, height: 36 })
    expect(seen.values).toBeGreaterThan(1)
    expect((await readFile(join(cacheDir, `${middle.sopInstanceUID}.png`))).equals(body)).toBe(true)
    expect((await png(await get(series))).equals(body)).toBe(true)
    expect(renders(middle.sopInstanceUID)).toBe(1)
  })

  it('refuses pixel data it cannot decode with a code, and caches nothing for it', async () => {
    const series = seriesOf('CR', JPEG_BASELINE)
    const res = await get(series)
    expect(res.status).toBe(422)
    const body = await res.json() as { code: string, message: string }
    expect(body.code).toBe('BEELDNET_ERR_THUMBNAIL_DECODE')
    expect(body.message).toContain(JPEG_BASELINE)
    const middle = await middleOf(series)
    expect((await cacheListing()).filter((n) => n.startsWith('.') || n.startsWith(middle.sopInstanceUID))).toEqual([])
  })

  it('answers 404 with a code for a report series, an unknown series and an unknown study', async () => {
    const sr = study.instances.find((i) => i.modality === 'SR')!.seriesInstanceUID
    const cases: Array<[string, string, string]> = [
      [sr, study.studyInstanceUID, 'BEELDNET_ERR_NO_IMAGE'],
      ['1.2.3.4.5', study.studyInstanceUID, 'BEELDNET_ERR_NOT_FOUND'],
      [sr, '1.2.3.4.6', 'BEELDNET_ERR_STUDY_NOT_FOUND']
    ]
    for (const [series, studyUID, code] of cases) {
      const res = await fetchAs({ dataDir: dataDir() })(thumbnailUrl(series, studyUID))
      expect(res.status).toBe(404)
      expect((await res.json() as { code: string }).code).toBe(code)
    }
  })

  it('needs a login or token', async () => {
    const res = await fetch(thumbnailUrl(seriesOf('CT', EXPLICIT_LE)))
    expect(res.status).toBe(401)
    expect((await res.json() as { code: string }).code).toBe('BEELDNET_ERR_UNAUTHENTICATED')
  })

  it('refuses a frame whose drawing is above the limit from the index alone, before reading it; the file\'s size is no limit', async () => {
    const series = seriesOf('US', EXPLICIT_LE)
    const middle = await middleOf(series)
    const limited = (maxRgbaBytes: number): ReturnType<typeof createThumbnailer> =>
      createThumbnailer({ store, logger: pino({ level: 'silent' }) }, { cacheDir: join(work, 'limited'), maxRgbaBytes })
    // The file itself is out of reach: reading it would fail with another code.
    const stored = store.blobs.pathOf(middle.sha256)
    await rename(stored, `${stored}.aside`)
    try {
      await expect(limited(640 * 480 * 4 - 1).thumbnail(study.studyInstanceUID, series))
        .rejects.toMatchObject({ code: 'BEELDNET_ERR_THUMBNAIL_TOO_LARGE', message: expect.stringContaining('640 x 480 pixels') })
    } finally {
      await rename(`${stored}.aside`, stored)
    }
    // A multi-frame file larger than the limit whose frame, drawn, is within it renders: only its first frame is read.
    const multi = seriesOf('MR', EXPLICIT_LE)
    const record = await middleOf(multi)
    expect(record.frames).toBe(40)
    expect(record.size).toBeGreaterThan(32 * 32 * 4 * 10)
    const seen = await look(await limited(32 * 32 * 4).thumbnail(study.studyInstanceUID, multi))
    expect(seen).toMatchObject({ width: 32, height: 32 })
    expect(seen.values).toBeGreaterThan(1)
  })
})
