import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { nodePaths } from '../../../node/paths.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { fetchAs } from '../../helpers/api-caller.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'

/*
 * A frame of a large multi-frame instance costs one frame's memory, not the instance's, by both
 * routes that draw one: DICOMweb's rendered frames and the web app's series thumbnails. 400 frames
 * of 512 x 512 (200 MiB native, 83 MiB as RLE), drawn while the node's resident memory is watched.
 */

const FRAMES = 400
/** well under either instance: a drawing that read one whole would pass it */
const LIMIT = 64 * 1024 * 1024

/** How far resident memory rose above where it was while `work` ran. */
async function rssGrowth (work: () => Promise<void>): Promise<number> {
  global.gc?.()
  const before = process.memoryUsage().rss
  let peak = before
  const watch = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 2)
  try {
    await work()
  } finally {
    clearInterval(watch)
  }
  return Math.max(peak, process.memoryUsage().rss) - before
}

describe('drawing frames of a large multi-frame instance', () => {
  let work: string
  let cacheDir: string
  let store: StudyStore
  let app: FastifyInstance
  let url: string
  let study: GeneratedStudy
  let call: (path: string) => Promise<Response>
  let small: GeneratedStudy['instances'][number]
  let large: Array<GeneratedStudy['instances'][number]>

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'beeldnet-large-frames-'))
    cacheDir = join(work, 'thumbnails')
    study = await generateStudy(join(work, 'study'), {
      seed: 2718,
      series: [
        // A small series first: the libraries and codecs load on it, not on the large instances.
        { modality: 'CT', instances: 1, rows: 16, columns: 16, transferSyntax: 'rle' },
        { modality: 'CT', instances: 1, rows: 512, columns: 512, frames: FRAMES },
        { modality: 'CT', instances: 1, rows: 512, columns: 512, frames: FRAMES, transferSyntax: 'rle' }
      ]
    })
    ;[small, ...large] = study.instances as [typeof small, ...typeof large]
    const dir = join(work, 'node')
    store = new StudyStore({ dir })
    await store.start()
    const session = store.beginImport()
    for (const i of study.instances) await session.add(i.path)
    await session.commit()
    app = createHttpServer({ store, logger: pino({ level: 'silent' }), users: new UserStore(nodePaths(dir).users) }, { nodeName: 'test', peerId: 'test', thumbnailCacheDir: cacheDir })
    url = await listenOnLoopback(app)
    const clinician = fetchAs({ dataDir: dir })
    call = async (path) => clinician(`${url}${path}`)
  })

  afterAll(async () => {
    await app?.close()
    await store?.stop()
    await rm(work, { recursive: true, force: true })
  })

  const image = async (path: string, side: number, type = 'image/jpeg'): Promise<Buffer> => {
    const response = await call(path)
    expect(response.status, path).toBe(200)
    expect(response.headers.get('content-type')).toBe(type)
    const body = Buffer.from(await response.arrayBuffer())
    const meta = await sharp(body).metadata()
    expect([meta.width, meta.height]).toEqual([side, side])
    return body
  }

  it('renders the middle and last frames by DICOMweb within 64 MiB of resident memory', async () => {
    expect(large.every((i) => i.size > LIMIT)).toBe(true)
    const pathOf = (i: { seriesInstanceUID: string, sopInstanceUID: string }): string => `/dicomweb/studies/${study.studyInstanceUID}/series/${i.seriesInstanceUID}/instances/${i.sopInstanceUID}`
    // The libraries, codecs and a 512 x 512 frame's buffers are set up on the first frames: not the instance's cost.
    for (const i of large) await image(`${pathOf(i)}/frames/1/rendered`, 512)
    const growth = await rssGrowth(async () => {
      for (const i of large) {
        for (const frame of [FRAMES / 2, FRAMES]) await image(`${pathOf(i)}/frames/${frame}/rendered`, 512)
      }
    })
    expect(growth).toBeLessThan(LIMIT)
  })

  it('draws the web app\'s series thumbnails (once, then from the cache) within 64 MiB of resident memory', async () => {
    const thumbnail = async (series: string, side: number): Promise<Buffer> => image(`/api/studies/${study.studyInstanceUID}/series/${series}/thumbnail`, side, 'image/png')
    await thumbnail(small.seriesInstanceUID, 16)
    const drawn: Buffer[] = []
    const growth = await rssGrowth(async () => {
      for (const i of large) drawn.push(await thumbnail(i.seriesInstanceUID, 128))
    })
    expect(growth).toBeLessThan(LIMIT)
    // Cached under each instance's SOP Instance UID, and answered from there the next time.
    expect((await readdir(cacheDir)).sort()).toEqual(study.instances.map((i) => `${i.sopInstanceUID}.png`).sort())
    for (const [k, i] of large.entries()) expect((await thumbnail(i.seriesInstanceUID, 128)).equals(drawn[k]!)).toBe(true)
  })
})
