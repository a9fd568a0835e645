/*
 * How far one transfer is, from either end: instances and bytes the receiver holds, bytes on the
 * wire for the instance in flight, the rate over a recent window and the time left at that rate.
 */

export interface ProgressSnapshot {
  instancesDone: number
  instancesTotal: number
  bytesDone: number
  bytesTotal: number
  /** bytes per second over the last window; 0 before any bytes moved */
  rate: number
  /** seconds left at the current rate; null while the rate is unknown */
  etaSeconds: number | null
}

export interface ProgressMeterInit {
  instancesTotal: number
  bytesTotal: number
  /** the rate is averaged over this many milliseconds (default 10000) */
  windowMs?: number
}

export interface ProgressMeter {
  /**
   * an instance the receiver holds (verified now, or held before); counts once per SHA-256. Its
   * bytes stop counting as in flight: other instances may still be on the wire.
   */
  markDone: (sha256: string, size: number) => boolean
  isDone: (sha256: string) => boolean
  /** bytes moved on the wire (counted towards the rate, and as progress of the instance in flight) */
  addBytes: (bytes: number) => void
  /** forget the bytes in flight of an instance that failed */
  resetPartial: (bytes: number) => void
  snapshot: () => ProgressSnapshot
}

export function createProgressMeter (now: () => number, init: ProgressMeterInit): ProgressMeter {
  const windowMs = init.windowMs ?? 10_000
  const done = new Set<string>()
  let doneBytes = 0
  let partial = 0
  let moved = 0
  // (time, total bytes moved) samples; the oldest one inside the window gives the rate.
  const samples: Array<[number, number]> = [[now(), 0]]

  return {
    markDone (sha256, size) {
      if (done.has(sha256)) return false
      done.add(sha256)
      doneBytes += size
      partial = Math.max(0, partial - size)
      return true
    },
    isDone: (sha256) => done.has(sha256),
    addBytes (bytes) {
      partial += bytes
      moved += bytes
      const t = now()
      samples.push([t, moved])
      while (samples.length > 2 && samples[1]![0] <= t - windowMs) samples.shift()
    },
    resetPartial (bytes) { partial = Math.max(0, partial - bytes) },
    snapshot () {
      const t = now()
      const [t0, m0] = samples[0]!
      const elapsed = (t - t0) / 1000
      const rate = elapsed > 0 ? (moved - m0) / elapsed : 0
      const bytesDone = Math.min(init.bytesTotal, doneBytes + partial)
      const left = init.bytesTotal - bytesDone
      return {
        instancesDone: done.size,
        instancesTotal: init.instancesTotal,
        bytesDone,
        bytesTotal: init.bytesTotal,
        rate,
        etaSeconds: left === 0 ? 0 : rate > 0 ? left / rate : null
      }
    }
  }
}

/** True at most once per `intervalMs`: keeps progress events to a rate a UI can use. */
export function createThrottle (now: () => number, intervalMs: number): () => boolean {
  let last = -Infinity
  return () => {
    const t = now()
    if (t - last < intervalMs) return false
    last = t
    return true
  }
}
