import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ERROR_STATUS } from '../../protocol/error-status.ts'

const root = join(import.meta.dirname, '..', '..')

async function sourceFiles (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(join(root, dir), { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.ts')) out.push(join(entry.parentPath, entry.name))
  }
  return out
}

async function codesInSource (): Promise<Set<string>> {
  const codes = new Set<string>()
  for (const file of [...await sourceFiles('node'), ...await sourceFiles('protocol'), ...await sourceFiles('registry')]) {
    if (file.endsWith('error-status.ts')) continue
    for (const m of (await readFile(file, 'utf8')).matchAll(/'(BEELDNET_ERR_[A-Z0-9_]+)'/g)) codes.add(m[1]!)
  }
  return codes
}

describe('error codes', () => {
  it('every code raised in the source has an HTTP status, and the table lists no dead codes', async () => {
    const codes = await codesInSource()
    expect(codes.size).toBeGreaterThan(10)
    expect([...codes].filter((c) => ERROR_STATUS[c] === undefined)).toEqual([])
    expect(Object.keys(ERROR_STATUS).filter((c) => !codes.has(c))).toEqual([])
  })

  it('docs/errors.md documents every code with the same status', async () => {
    const doc = await readFile(join(root, 'docs', 'errors.md'), 'utf8')
    const documented = new Map([...doc.matchAll(/^\| `(BEELDNET_ERR_[A-Z0-9_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])]))
    expect(Object.fromEntries(documented)).toEqual(ERROR_STATUS)
  })
})
