import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

/*
 * releaseStartMemory, in a Node process of its own (as bin/beeldnet runs a node, with --expose-gc,
 * or without it): what starting left in the heap is collected, or nothing happens.
 */

const run = promisify(execFile)
const MODULE = join(import.meta.dirname, '..', '..', 'node', 'start-memory.ts')

/** Leaves 64 MB of dropped objects in the old generation, then calls releaseStartMemory. */
const SCRIPT = `
const { releaseStartMemory } = await import(${JSON.stringify(MODULE)})
let garbage = []
for (let i = 0; i < 64; i++) garbage.push(new Array(128 * 1024).fill(i + 0.5))
garbage = undefined
const before = process.memoryUsage().heapUsed
const collected = releaseStartMemory()
const after = process.memoryUsage().heapUsed
process.stdout.write(JSON.stringify({ collected, before, after }))
`

async function runWith (flags: string[]): Promise<{ collected: boolean, before: number, after: number }> {
  const { stdout } = await run(process.execPath, [...flags, '--input-type=module', '--eval', SCRIPT])
  return JSON.parse(stdout) as { collected: boolean, before: number, after: number }
}

describe('releaseStartMemory', () => {
  it('collects what was dropped when Node exposes its collector (bin/beeldnet)', async () => {
    const { collected, before, after } = await runWith(['--expose-gc'])
    expect(collected).toBe(true)
    // 64 arrays of 128 Ki doubles (1 MiB each) were dropped: they are gone.
    expect(before - after).toBeGreaterThan(48 * 1024 * 1024)
  })

  it('does nothing without --expose-gc', async () => {
    const { collected } = await runWith([])
    expect(collected).toBe(false)
  })
})
