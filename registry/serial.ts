/** Runs async jobs one after another: the workflow's check-then-write steps never interleave. */
export interface Serial {
  <T>(job: () => Promise<T>): Promise<T>
  /** resolves when every job queued so far has settled */
  idle (): Promise<void>
}

export function createSerial (): Serial {
  let tail: Promise<unknown> = Promise.resolve()
  const run = <T>(job: () => Promise<T>): Promise<T> => {
    const next = tail.then(job)
    tail = next.catch(() => {})
    return next
  }
  run.idle = async (): Promise<void> => { await tail }
  return run
}
