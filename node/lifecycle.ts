import type { Logger } from 'pino'

/*
 * One start/stop contract for every long-lived part of the node, as js-libp2p's components have.
 * The parts start in dependency order and stop in reverse. A part whose start throws has undone its
 * own partial work (it is not stopped); the parts started before it are stopped, so a failed start
 * leaves no port, lock or timer behind.
 */

export interface Startable {
  /** Resolves once the part runs. A start that throws leaves nothing of the part running. */
  start (signal?: AbortSignal): Promise<void>
  /** Releases what start took. */
  stop (): Promise<void>
}

export interface NamedPart {
  /** shown in logs and error reports: 'store', 'http', ... */
  readonly name: string
  readonly part: Startable
}

export interface LifecycleComponents {
  /** stop failures are reported here: they never replace the error that made a start fail */
  logger: Logger
}

export interface LifecycleInit {
  /** in dependency order: each part may use the ones before it */
  parts: readonly NamedPart[]
}

export interface Lifecycle extends Startable {
  /** the parts running now, in start order */
  readonly running: readonly string[]
}

/** A part that only has something to do at start (a one-off step between two parts). */
export function startOnly (start: (signal?: AbortSignal) => Promise<void>): Startable {
  return { start, stop: async () => {} }
}

/**
 * A part made only when its turn to start comes, from the parts started before it. Needed where
 * making already opens something: a level database opens itself as soon as it is made, so one made
 * early would hold its lock even if an earlier part failed and it never started.
 */
export function madeAtStart (make: () => Startable): Startable {
  let made: Startable | undefined
  return {
    async start (signal) {
      if (made !== undefined) return
      const part = make()
      await part.start(signal)
      made = part
    },
    async stop () {
      const part = made
      made = undefined
      await part?.stop()
    }
  }
}

class PartsInOrder implements Lifecycle {
  private readonly logger: Logger
  private readonly parts: readonly NamedPart[]
  private readonly started: NamedPart[] = []
  private starting: Promise<void> | undefined

  constructor (components: LifecycleComponents, init: LifecycleInit) {
    this.logger = components.logger
    this.parts = init.parts
  }

  get running (): readonly string[] {
    return this.started.map((p) => p.name)
  }

  async start (signal?: AbortSignal): Promise<void> {
    // A second start while starting or running is the same start.
    this.starting ??= this.startInOrder(signal)
    await this.starting
  }

  private async startInOrder (signal?: AbortSignal): Promise<void> {
    try {
      for (const named of this.parts) {
        signal?.throwIfAborted()
        await named.part.start(signal)
        this.started.push(named)
      }
    } catch (err) {
      const failed = this.parts[this.started.length]?.name
      this.logger.error({ err, part: failed, stopping: this.running.toReversed() }, `${failed ?? 'a part'} did not start: stopping the parts already started`)
      await this.stopStarted()
      this.starting = undefined
      throw err
    }
  }

  /** Every started part in reverse, each one tried even if one before it threw; the first error is rethrown. */
  async stop (): Promise<void> {
    await this.starting?.catch(() => {})
    this.starting = undefined
    const errors = await this.stopStarted()
    if (errors.length > 0) throw errors[0]
  }

  private async stopStarted (): Promise<unknown[]> {
    const errors: unknown[] = []
    // Taken off the list first: a second stop finds nothing left to stop.
    for (const named of this.started.splice(0).reverse()) {
      try {
        await named.part.stop()
      } catch (err) {
        this.logger.error({ err, part: named.name }, `${named.name} did not stop cleanly`)
        errors.push(err)
      }
    }
    return errors
  }
}

export function createLifecycle (components: LifecycleComponents, init: LifecycleInit): Lifecycle {
  return new PartsInOrder(components, init)
}
