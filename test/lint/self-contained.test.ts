import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'

/*
 * A clone carries what its code rests on: no comment or document points to a file outside the
 * repository (the team's shared notes are copied into docs/). Names are built here so this file
 * does not match itself.
 */

const root = join(import.meta.dirname, '..', '..')
const OUTSIDE = [['FIELD', 'NOTES'].join('-'), ['ARCHITECTURE', 'md'].join('.'), ['..', 'shared', ''].join('/')]
const FOLDERS = ['bin', 'docs', 'node', 'protocol', 'registry', 'simulations', 'test', 'types', 'web/src', '.ci']

async function filesUnder (dir: string): Promise<string[]> {
  const entries = await readdir(join(root, dir), { withFileTypes: true, recursive: true }).catch(() => [])
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)).filter((f) => !/\.(png|jpe?g|dcm|br)$/.test(f))
}

describe('the repository is self-contained', () => {
  it('no source comment or document points outside the repository', async () => {
    const files = [join(root, 'README.md'), ...(await Promise.all(FOLDERS.map(filesUnder))).flat()]
    expect(files.length).toBeGreaterThan(100)
    const pointers: string[] = []
    for (const file of files) {
      const text = await readFile(file, 'utf8')
      for (const [n, line] of text.split('\n').entries()) {
        if (OUTSIDE.some((o) => line.includes(o))) pointers.push(`${relative(root, file)}:${n + 1}: ${line.trim()}`)
      }
    }
    expect(pointers).toEqual([])
  })
})
