import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { pruneThumbnails } from '../../../node/imaging/prune.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

const tempDir = useTempDirs()

describe('pruning the thumbnail cache', () => {
  it('removes the thumbnails of instances the store no longer holds, and nothing else', async () => {
    const dir = await tempDir('thumbs')
    for (const name of ['1.2.3.1.png', '1.2.3.2.png', '1.2.3.3.png', 'notes.txt']) await writeFile(join(dir, name), 'x')
    const held = new Set(['1.2.3.1', '1.2.3.3'])
    expect(await pruneThumbnails(dir, async (sop) => held.has(sop))).toBe(1)
    expect((await readdir(dir)).sort()).toEqual(['1.2.3.1.png', '1.2.3.3.png', 'notes.txt'])
    // A node that never rendered one has no cache yet.
    expect(await pruneThumbnails(join(dir, 'absent'), async () => false)).toBe(0)
  })
})
