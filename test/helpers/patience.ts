/*
 * How tests wait: for a state or an event, never for a wall-clock budget a loaded machine misses.
 * A wait still ends (a test that hangs must fail), but only after PATIENCE_MS, and it then says
 * what it waited for. Two busy cores make a scenario several times slower; they do not make it wrong.
 */

/** How long any one wait lasts before it fails saying what it waited for. */
export const PATIENCE_MS = 120_000

/** How long one test (or hook) may take in all: several waits, each well inside PATIENCE_MS. */
export const TEST_BUDGET_MS = 5 * 60_000

/** Waits until `check` holds, looking again every `everyMs`; fails with `what` after `timeoutMs`. */
export async function until (check: () => boolean | Promise<boolean>, what: string, timeoutMs = PATIENCE_MS, everyMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`waited ${Math.round(timeoutMs / 1000)} s for ${what}; it did not happen`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}
