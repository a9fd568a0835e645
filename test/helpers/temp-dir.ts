import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach } from 'vitest'

/** A fresh temp directory per call, removed after the test that made it. */
export function useTempDirs (): (label?: string) => Promise<string> {
  const made: string[] = []
  afterEach(async () => {
    for (const dir of made.splice(0)) await rm(dir, { recursive: true, force: true })
  })
  return async (label = 'beeldnet') => {
    const dir = await mkdtemp(join(tmpdir(), `${label}-`))
    made.push(dir)
    return dir
  }
}
