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
 * The web app's series thumbnail of a large multi-frame instance reads one frame, as DICOMweb's
 * rendered frames do: 300 frames of 512 x 512 (150 MiB native, ~60 MiB as RLE), each drawn and
 * cached while the node's resident memory is watched. Instances this size were refused before.
 */

const FRAMES = 300
/** well under the native instance: a render that read it whole would pass it */
const LIMIT = 64 * 1024 * 1024

describe('series thumbnails of a large multi-frame instance', () => {
  let work: string
  let cacheDir: string
  let store: StudyStore
  let app: FastifyInstance
  let url: string
  let study: GeneratedStudy
  let call: (path: string) => Promise<Response>

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'beeldnet-thumbnail-large-'))
    cacheDir = join(work, 'thumbnails')
    study = await generateStudy(join(work, 'study'), {
      seed: 1414,
      series: [
        // A small series first: the libraries and codecs load on it, not on the large instances.
        { modality: 'CT', instances: 1, rows: 16, columns: 16, transferSyntax: 'rle' },
        { modality: 'CT', instances: 1, rows: 512, columns: 512, frames: FRAMES },
        { modality: 'CT', instances: 1, rows: 512, columns: 512, frames: FRAMES, transferSyntax: 'rle' }
      ]
    })
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

  it('draws them (once, then from the cache) within 64 MiB of resident memory', async () => {
    const [small, ...large] = study.instances
    expect(large[0]!.size).toBeGreaterThan(2 * LIMIT)
    const thumbnail = async (series: string, side: number): Promise<Buffer> => {
      const response = await call(`/api/studies/${study.studyInstanceUID}/series/${series}/thumbnail`)
      expect(response.status, series).toBe(200)
      expect(response.headers.get('content-type')).toBe('image/png')
      const body = Buffer.from(await response.arrayBuffer())
      const meta = await sharp(body).metadata()
      expect([meta.width, meta.height]).toEqual([side, side])
      return body
    }
    await thumbnail(small!.seriesInstanceUID, 16)
    global.gc?.()
    const before = process.memoryUsage().rss
    let peak = before
    const watch = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 2)
    const drawn: Buffer[] = []
    try {
      for (const i of large) drawn.push(await thumbnail(i.seriesInstanceUID, 128))
    } finally {
      clearInterval(watch)
    }
    peak = Math.max(peak, process.memoryUsage().rss)
    expect(peak - before).toBeLessThan(LIMIT)
    // Cached under each instance's SOP Instance UID, and answered from there the next time.
    expect((await readdir(cacheDir)).sort()).toEqual(study.instances.map((i) => `${i.sopInstanceUID}.png`).sort())
    for (const [k, i] of large.entries()) expect((await thumbnail(i.seriesInstanceUID, 128)).equals(drawn[k]!)).toBe(true)
  })
})
