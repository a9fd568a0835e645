import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { nodePaths } from '../../../node/paths.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { fetchAs } from '../../helpers/api-caller.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'

/*
 * A rendered frame of a large multi-frame instance costs one frame's memory, not the instance's:
 * 400 frames of 512 x 512 (200 MiB native, 83 MiB as RLE), their last frames rendered while the
 * node's resident memory is watched.
 */

const FRAMES = 400
/** well under either instance: a render that read one whole would pass it */
const LIMIT = 64 * 1024 * 1024

describe('rendered frames of a large instance', () => {
  let work: string
  let store: StudyStore
  let app: FastifyInstance
  let url: string
  let study: GeneratedStudy
  let call: (path: string) => Promise<Response>

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'beeldnet-rendered-large-'))
    study = await generateStudy(join(work, 'study'), {
      seed: 2718,
      series: [
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
    app = createHttpServer({ store, logger: pino({ level: 'silent' }), users: new UserStore(nodePaths(dir).users) }, { nodeName: 'test', peerId: 'test' })
    url = await listenOnLoopback(app)
    const clinician = fetchAs({ dataDir: dir })
    call = async (path) => clinician(`${url}${path}`)
  })

  afterAll(async () => {
    await app?.close()
    await store?.stop()
    await rm(work, { recursive: true, force: true })
  })

  it('renders the last frames of 200 MiB native and 83 MiB RLE instances within 64 MiB of resident memory', async () => {
    const paths = study.instances.map((i) => `/dicomweb/studies/${i.studyInstanceUID}/series/${i.seriesInstanceUID}/instances/${i.sopInstanceUID}`)
    expect(study.instances.map((i) => i.size).every((size) => size > LIMIT)).toBe(true)
    const render = async (path: string): Promise<void> => {
      const response = await call(path)
      expect(response.status, path).toBe(200)
      const meta = await sharp(Buffer.from(await response.arrayBuffer())).metadata()
      expect([meta.width, meta.height]).toEqual([512, 512])
    }
    // The libraries and codecs load on the first render: that is not the instance's cost.
    for (const path of paths) await render(`${path}/frames/1/rendered`)
    global.gc?.()
    const before = process.memoryUsage().rss
    let peak = before
    const watch = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 2)
    try {
      for (const path of paths) {
        for (const frame of [FRAMES / 2, FRAMES]) await render(`${path}/frames/${frame}/rendered`)
      }
    } finally {
      clearInterval(watch)
    }
    peak = Math.max(peak, process.memoryUsage().rss)
    expect(peak - before).toBeLessThan(LIMIT)
  })
})
