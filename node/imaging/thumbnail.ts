import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import PQueue from 'p-queue'
import type { Logger } from 'pino'
import { removeLeftoverTemps, writeFileAtomic } from '../directory/atomic-file.ts'
import type { InstanceRecord } from '../store/records.ts'
import type { StudyStore } from '../store/study-store.ts'
import { NoImageError, SeriesNotFoundError, ThumbnailTooLargeError } from './errors.ts'
import { renderStoredFrame } from './stored-frame-image.ts'

/*
 * Series thumbnails for the web app: the series' middle image drawn small, rendered once and
 * kept as <cacheDir>/<SOP Instance UID>.png. The index is asked first on every request, so a
 * deleted study's thumbnail is never served, and a stored file is only read on a cache miss.
 * Its first frame alone is read and drawn, as DICOMweb's thumbnails are (stored-frame-image.ts),
 * so an instance of any size or encoding costs one frame's memory.
 */

export interface ThumbnailerComponents {
  store: StudyStore
  logger: Logger
}

export interface ThumbnailerInit {
  /** where rendered thumbnails are kept; created on first use */
  cacheDir: string
  /** longest side of a thumbnail in pixels (default 128) */
  maxSide?: number
  /** largest frame drawn, as RGBA bytes (default 64 MiB) */
  maxRgbaBytes?: number
  /** renders at a time, each holding one frame and its drawing in memory (default 2) */
  concurrency?: number
}

export interface Thumbnailer {
  /** The PNG of a series' thumbnail, from the cache or rendered now. */
  thumbnail: (studyInstanceUID: string, seriesInstanceUID: string) => Promise<Buffer>
}

export const DEFAULT_MAX_RGBA_BYTES = 64 * 1024 * 1024

class CachingThumbnailer implements Thumbnailer {
  private readonly store: StudyStore
  private readonly logger: Logger
  private readonly cacheDir: string
  private readonly maxSide: number
  private readonly maxRgbaBytes: number
  private readonly queue: PQueue
  /** one load (cache read or render) per SOP Instance UID at a time; concurrent callers share it */
  private readonly inFlight = new Map<string, Promise<Buffer>>()
  private cacheReady: Promise<void> | undefined

  constructor (components: ThumbnailerComponents, init: ThumbnailerInit) {
    this.store = components.store
    this.logger = components.logger
    this.cacheDir = init.cacheDir
    this.maxSide = init.maxSide ?? 128
    this.maxRgbaBytes = init.maxRgbaBytes ?? DEFAULT_MAX_RGBA_BYTES
    this.queue = new PQueue({ concurrency: init.concurrency ?? 2 })
  }

  async thumbnail (studyInstanceUID: string, seriesInstanceUID: string): Promise<Buffer> {
    const instance = await this.middleImage(studyInstanceUID, seriesInstanceUID)
    const uid = instance.sopInstanceUID
    let load = this.inFlight.get(uid)
    if (load === undefined) {
      load = this.load(instance).finally(() => this.inFlight.delete(uid))
      this.inFlight.set(uid, load)
    }
    return load
  }

  /** The image instance in the middle of the series: by InstanceNumber where indexed, else in stored order. */
  private async middleImage (studyInstanceUID: string, seriesInstanceUID: string): Promise<InstanceRecord> {
    const entries = await this.store.getStudy(studyInstanceUID)
    if (!entries.series.some((s) => s.seriesInstanceUID === seriesInstanceUID)) throw new SeriesNotFoundError(studyInstanceUID, seriesInstanceUID)
    const middle = middleImageOf(entries.instances.filter((i) => i.seriesInstanceUID === seriesInstanceUID))
    if (middle === undefined) throw new NoImageError(seriesInstanceUID)
    // Refused from the index alone, before a byte of the file is read: the file's size does not
    // matter (one frame is read), the frame's drawing does.
    const rgba = middle.rows! * middle.columns! * 4
    if (rgba > this.maxRgbaBytes) throw new ThumbnailTooLargeError(middle.sopInstanceUID, `${middle.columns} x ${middle.rows} pixels, ${rgba} bytes drawn, the limit is ${this.maxRgbaBytes}`)
    return middle
  }

  private async load (instance: InstanceRecord): Promise<Buffer> {
    const path = join(this.cacheDir, `${instance.sopInstanceUID}.png`)
    try {
      return await readFile(path)
    } catch (err) {
      // Anything but "not there yet" (an unreadable cache file) is drawn again and replaced.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.logger.warn({ err, sopInstanceUID: instance.sopInstanceUID }, 'thumbnail cache file unreadable; rendering again')
    }
    const png = await this.queue.add(async () => this.render(instance))
    try {
      await this.prepareCache()
      await writeFileAtomic(path, png)
    } catch (err) {
      // A full or read-only disk costs a render next time, not this answer; writeFileAtomic leaves no partial file.
      this.logger.warn({ err, sopInstanceUID: instance.sopInstanceUID }, 'thumbnail not cached')
    }
    return png
  }

  private async render (instance: InstanceRecord): Promise<Buffer> {
    const started = performance.now()
    const { bytes: png } = await renderStoredFrame(this.store.blobs.pathOf(instance.sha256), instance, 1, { format: 'png', maxSide: this.maxSide })
    this.logger.debug({ sopInstanceUID: instance.sopInstanceUID, ms: Math.round(performance.now() - started), bytes: png.length }, 'thumbnail rendered')
    return png
  }

  /** The cache directory, created on first use; temp files of writes cut short by a crash are dropped. */
  private async prepareCache (): Promise<void> {
    this.cacheReady ??= (async () => {
      await mkdir(this.cacheDir, { recursive: true, mode: 0o700 })
      await removeLeftoverTemps(this.cacheDir)
    })().catch((err: unknown) => {
      this.cacheReady = undefined
      throw err
    })
    await this.cacheReady
  }
}

export function createThumbnailer (components: ThumbnailerComponents, init: ThumbnailerInit): Thumbnailer {
  return new CachingThumbnailer(components, init)
}

/**
 * The image in the middle of these instances, by InstanceNumber where indexed, else in stored order:
 * what a series' thumbnail shows, in the web app and by DICOMweb alike.
 */
export function middleImageOf (instances: InstanceRecord[]): InstanceRecord | undefined {
  const images = instances
    .filter((i) => !i.isReport && (i.rows ?? 0) > 0 && (i.columns ?? 0) > 0)
    // A stable sort: unnumbered instances keep their stored order, after the numbered ones.
    .sort((a, b) => (a.number ?? Infinity) - (b.number ?? Infinity) || 0)
  return images[Math.floor(images.length / 2)]
}
