import { setTimeout as delay } from 'node:timers/promises'

/** Time as transfers see it: injected so tests decide when a retry is due without waiting. */
export interface Clock {
  /** milliseconds since the epoch */
  now: () => number
  /** resolves after `ms`, or rejects with the signal's reason when it aborts first */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>
  /** a number in [0, 1): the jitter in retry delays */
  random: () => number
}

export const systemClock: Clock = {
  now: () => Date.now(),
  // unref: a retry waiting for its time should not keep a finished CLI process alive.
  sleep: async (ms, signal) => { await delay(ms, undefined, { signal, ref: false }) },
  random: () => Math.random()
}
