import type { Logger } from 'pino'
import { pruneThumbnails } from './imaging/prune.ts'
import type { Startable } from './lifecycle.ts'
import type { StudyStore } from './store/study-store.ts'
import type { Exchange } from './transfers/exchange.ts'

/*
 * The retention sweep: the node is an exchange point, not the archive. Runs at start and then every
 * interval; stop waits for a sweep under way, so the store and the queue are not closed under it.
 */

export interface RetentionComponents {
  store: StudyStore
  exchange: Pick<Exchange, 'incoming'>
  logger: Logger
}

export interface RetentionInit {
  /** studies (and unfinished incoming transfers) untouched for this long go */
  retentionDays: number
  intervalMinutes: number
  /** where thumbnails of studies no longer held are removed from */
  thumbnailCacheDir: string
}

class RetentionSweep implements Startable {
  private readonly components: RetentionComponents
  private readonly init: RetentionInit
  private timer: NodeJS.Timeout | undefined
  private run: Promise<void> = Promise.resolve()

  constructor (components: RetentionComponents, init: RetentionInit) {
    this.components = components
    this.init = init
  }

  async start (): Promise<void> {
    if (this.timer !== undefined) return
    this.timer = setInterval(() => { this.sweep() }, this.init.intervalMinutes * 60_000)
    // The sweep alone must never keep a process alive.
    this.timer.unref()
    this.sweep()
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    await this.run
  }

  private sweep (): void {
    const { store, exchange, logger } = this.components
    this.run = this.run.then(async () => {
      // Incoming transfers nobody resumed for as long go first: their holds then no longer keep studies.
      const expired = await exchange.incoming.expire(this.init.retentionDays * 86_400_000)
      if (expired.length > 0) logger.info({ expired: expired.map((t) => t.transferId) }, 'unfinished incoming transfers expired')
      const { purged, keptHeld } = await store.purgeExpired(this.init.retentionDays)
      if (purged.length > 0 || keptHeld.length > 0) {
        logger.info({ purged: purged.map((s) => s.studyInstanceUID), keptHeld }, 'retention sweep')
      }
      const thumbnails = await pruneThumbnails(this.init.thumbnailCacheDir, async (sop) => await store.index.getSopLocation(sop) !== undefined)
      if (thumbnails > 0) logger.info({ thumbnails }, 'thumbnails of studies no longer held removed')
    }).catch((err: unknown) => { logger.error({ err }, 'retention sweep failed') })
  }
}

export function createRetentionSweep (components: RetentionComponents, init: RetentionInit): Startable {
  return new RetentionSweep(components, init)
}
