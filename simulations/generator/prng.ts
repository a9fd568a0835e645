// Seeded PRNG (mulberry32): tiny, fast and good enough for synthetic data. Everything the generator makes
// (UIDs, names, dates, noise) comes from one of these, so the same seed gives byte-identical output.

export interface Prng {
  /** Next unsigned 32-bit integer. */
  u32 (): number
  /** Uniform float in [0, 1). */
  next (): number
  /** Uniform integer in [min, max] (inclusive). */
  int (min: number, max: number): number
  pick<T> (values: readonly T[]): T
  /** An independent generator seeded from this one: lets a frame or a series be made on its own. */
  fork (): Prng
}

export function createPrng (seed: number): Prng {
  let state = seed >>> 0
  const u32 = (): number => {
    state = (state + 0x6D2B79F5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
  const next = (): number => u32() / 4294967296
  return {
    u32,
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (values) => {
      if (values.length === 0) throw new RangeError('pick from an empty list')
      return values[Math.floor(next() * values.length)] as (typeof values)[number]
    },
    fork: () => createPrng(u32())
  }
}
