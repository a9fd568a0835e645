import { createReadStream } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { DiskSpace, type DiskRefusal, type Statfs } from '../../../node/store/disk-space.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { generateStudy } from '../../../simulations/generator/index.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { smallStudy, useCleanup } from '../transfers/helpers.ts'

/*
 * Admission by disk space, on its own: a disk that statfs presents as nearly full (the statfs is
 * injected; the bytes are counted as a real statfs gives them), promises to transfers under way, the
 * quota, and an ENOSPC from the blob writer (its test seam) turned into BEELDNET_ERR_DISK_FULL with
 * nothing partial left.
 */

const tempDir = useTempDirs()
const cleanup = useCleanup()
const MiB = 1024 ** 2

/** A disk of 4 KiB blocks with `free()` bytes free now. */
function fakeDisk (free: () => number): Statfs {
  return async () => ({ bsize: 4096, bavail: Math.floor(free() / 4096), blocks: 1_000_000 })
}

describe('disk space admission', () => {
  it('promises bytes to concurrent offers: ten at once do not each see the same free space', async () => {
    const space = new DiskSpace({ storedBytes: async () => 0 }, { dir: '/', minFreeBytes: 100 * MiB, statfs: fakeDisk(() => 135 * MiB) })
    const refused: DiskRefusal[] = []
    space.on('refused', (r) => refused.push(r))
    // 35 MiB above the reserve: three offers of 10 MiB fit, the other seven are refused.
    const offers = await Promise.allSettled(Array.from({ length: 10 }, async (_, i) => space.reserve(10 * MiB, `offer ${i}`)))
    const kept = offers.filter((o) => o.status === 'fulfilled').map((o) => o.value)
    expect(kept).toHaveLength(3)
    expect(space.reservedBytes).toBe(30 * MiB)
    const failures = offers.filter((o) => o.status === 'rejected').map((o) => o.reason as { code: string, message: string })
    expect(failures).toHaveLength(7)
    expect(failures.every((e) => e.code === 'BEELDNET_ERR_DISK_FULL')).toBe(true)
    expect(failures[0]!.message).toMatch(/promised to transfers under way/)
    expect(refused.map((r) => r.route)).toEqual(Array(7).fill('transfer'))
    expect(await space.problem()).toMatchObject({ code: 'BEELDNET_ERR_DISK_FULL', neededBytes: 10 * MiB })

    // Bytes written are on the disk, which statfs shows from then on: that part of a promise ends.
    kept[0]!.written(4 * MiB)
    expect(space.reservedBytes).toBe(26 * MiB)
    kept[1]!.release()
    kept[1]!.release()
    expect(space.reservedBytes).toBe(16 * MiB)
    // 35 - 16 = 19 MiB fit above the reserve: the refusal no longer holds, and health clears.
    expect(await space.problem()).toBeUndefined()
    await space.reserve(10 * MiB, 'one more')
    await expect(space.reserve(10 * MiB, 'and another')).rejects.toMatchObject({ code: 'BEELDNET_ERR_DISK_FULL' })
  })

  it('keeps stored and promised bytes within the quota, and admits again once stored bytes go', async () => {
    let stored = 90 * MiB
    const space = new DiskSpace({ storedBytes: async () => stored }, { dir: '/', minFreeBytes: 0, maxBytes: 100 * MiB, statfs: fakeDisk(() => 10_000 * MiB) })
    const first = await space.reserve(6 * MiB, 'first')
    await expect(space.reserve(6 * MiB, 'second')).rejects.toThrow(/of the 100.0 MiB allowed \(store\.maxBytes\)/)
    // Written but not committed: still counted against the quota (it is not in the index yet).
    first.written(6 * MiB)
    await expect(space.admit(5 * MiB, 'an instance', 'stow')).rejects.toMatchObject({ code: 'BEELDNET_ERR_DISK_FULL' })
    stored = 40 * MiB
    await space.admit(5 * MiB, 'an instance', 'stow')
    expect(await space.problem()).toBeUndefined()
  })

  it('an ENOSPC from the blob writer is BEELDNET_ERR_DISK_FULL, its partial file is gone, and the store keeps what it held', async () => {
    const dir = await tempDir('disk-space-enospc')
    let failAfter = Infinity
    let written = 0
    const store = new StudyStore({
      dir,
      beforeBlobWrite: (bytes) => {
        written += bytes
        if (written > failAfter) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' })
      }
    })
    await store.start()
    cleanup(async () => store.stop())
    const held = await generateStudy(await tempDir('held'), smallStudy(801))
    const session = store.beginImport()
    for (const i of held.instances) await session.add(i.path)
    await session.commit()
    const before = await store.getStudy(held.studyInstanceUID)

    const big = await generateStudy(await tempDir('big'), smallStudy(802, { series: [{ modality: 'CT', instances: 1, rows: 512, columns: 512 }], reports: { sr: false, pdf: false } }))
    failAfter = written + 64 * 1024
    const refused: DiskRefusal[] = []
    store.space.on('refused', (r) => refused.push(r))
    const next = store.beginImport({ via: 'c-store' })
    await expect(next.add(createReadStream(big.instances[0]!.path, { highWaterMark: 16 * 1024 }))).rejects.toMatchObject({ code: 'BEELDNET_ERR_DISK_FULL' })
    expect(refused).toMatchObject([{ code: 'BEELDNET_ERR_DISK_FULL', route: 'write' }])
    expect(await readdir(join(dir, 'store', 'tmp'))).toEqual([])
    expect(await store.getStudy(held.studyInstanceUID)).toEqual(before)
    for (const i of before.instances) expect(await store.blobs.check(i.sha256)).toBe('ok')
    expect(await store.index.getStudy(big.studyInstanceUID)).toBeUndefined()
  })
})
