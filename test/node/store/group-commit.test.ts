import { afterEach, describe, expect, it } from 'vitest'
import { StudyStore, type CommitResult } from '../../../node/store/study-store.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { until } from '../../helpers/patience.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

/*
 * Group commit: instances committed one by one (as C-STORE and STOW-RS do) while another commit is
 * being made durable are made durable together: one synced index batch and one fsync per touched
 * directory for the lot, and none is answered before that. Counted through the store's own
 * counters, never by timing.
 */

const tempDir = useTempDirs()
const open: StudyStore[] = []

afterEach(async () => {
  for (const store of open.splice(0)) await store.stop().catch(() => {})
})

async function study (seed: number, instances: number): Promise<GeneratedStudy> {
  return generateStudy(await tempDir('src'), {
    seed,
    patient: { id: `G${seed}`, issuer: 'HOSP-A', name: 'Visser^Piet' },
    series: [{ modality: 'CT', instances, rows: 16, columns: 16 }]
  })
}

/** A store whose first index commit waits until `release()`; `held()` says when it is waiting. */
async function heldStore (failFor?: string): Promise<{ store: StudyStore, release: () => void, held: () => boolean }> {
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  let holding = false
  let first = true
  const store = new StudyStore({
    dir: await tempDir('node'),
    beforeIndexCommit: async (uid) => {
      if (uid === failFor) throw new Error('the index is gone for this study')
      if (!first) return
      first = false
      holding = true
      await gate
    }
  })
  await store.start()
  open.push(store)
  return { store, release, held: () => holding }
}

/** Commits one file in its own import session, as a C-STORE does; `answered` is set once it resolves. */
function commitOne (store: StudyStore, path: string): { result: Promise<CommitResult>, answered: () => boolean } {
  let answered = false
  const result = (async () => {
    const session = store.beginImport()
    await session.add(path)
    const [r] = await session.commit()
    answered = true
    return r!
  })()
  return { result, answered: () => answered }
}

describe('group commit', () => {
  it('commits arriving while another is made durable go into one index batch together, and none is answered before it is written', async () => {
    const { store, release, held } = await heldStore()
    const s = await study(71_001, 9)
    const [firstFile, ...rest] = s.instances.map((i) => i.path)
    const first = commitOne(store, firstFile!)
    await until(held, 'the first commit to reach its index write')
    const batchesBefore = store.index.stats.batches
    const others = rest.map((path) => commitOne(store, path))
    await until(() => store.commitsPending.waiting === rest.length, `the other ${rest.length} commits to wait for the next group`)
    expect(store.commitsPending.committing).toBe(1)
    expect([first, ...others].some((c) => c.answered())).toBe(false)
    expect(store.index.stats.batches).toBe(batchesBefore)

    release()
    const results = await Promise.all([first, ...others].map(async (c) => c.result))
    expect(results.map((r) => r.stored)).toEqual(Array(9).fill(1))
    // Two groups: the held one and one for the eight that waited; one index batch each.
    expect(store.groupCommits).toEqual({ groups: 2, items: 9, largestGroup: 8 })
    expect(store.index.stats.batches).toBe(batchesBefore + 2)
    const entries = await store.getStudy(s.studyInstanceUID)
    expect(entries.study.numberOfInstances).toBe(9)
    expect(entries.instances.map((i) => i.sopInstanceUID).sort()).toEqual(s.instances.map((i) => i.sopInstanceUID).sort())
  })

  it('syncs each directory a group touched once, however many of its files went there', async () => {
    const { store, release, held } = await heldStore()
    const s = await study(71_002, 12)
    const first = commitOne(store, s.instances[0]!.path)
    await until(held, 'the first commit to reach its index write')
    const syncsBefore = store.blobs.stats.directorySyncs
    const others = s.instances.slice(1).map((i) => commitOne(store, i.path))
    await until(() => store.commitsPending.waiting === others.length, 'the other commits to wait for the next group')
    release()
    await Promise.all([first, ...others].map(async (c) => c.result))
    const firstSop = s.instances[0]!.sopInstanceUID
    const shas = (await store.getStudy(s.studyInstanceUID)).instances.filter((i) => i.sopInstanceUID !== firstSop).map((i) => i.sha256)
    const leaves = new Set(shas.map((sha) => sha.slice(0, 4)))
    const parents = new Set(shas.map((sha) => sha.slice(0, 2)))
    // Each leaf once, each new fan-out parent once, the blobs/ root once: never three per file.
    expect(store.blobs.stats.directorySyncs - syncsBefore).toBeLessThanOrEqual(leaves.size + parents.size + 1)
    expect(store.blobs.stats.directorySyncs - syncsBefore).toBeGreaterThanOrEqual(leaves.size)
  })

  it('a commit of a SOP instance already waiting goes into a later group and is judged against the earlier copy', async () => {
    const { store, release, held } = await heldStore()
    const s = await study(71_003, 3)
    const [a, b, c] = s.instances.map((i) => i.path)
    const first = commitOne(store, a!)
    await until(held, 'the first commit to reach its index write')
    // One after another, so they wait in this order.
    const second = commitOne(store, b!)
    await until(() => store.commitsPending.waiting === 1, 'the second commit to wait')
    const again = commitOne(store, b!)
    await until(() => store.commitsPending.waiting === 2, 'the repeat to wait')
    const third = commitOne(store, c!)
    await until(() => store.commitsPending.waiting === 3, 'three commits to wait')
    release()
    const [r1, r2, r3, r4] = await Promise.all([first.result, second.result, again.result, third.result])
    expect([r1!.outcomes[0]!.outcome, r2!.outcomes[0]!.outcome, r3!.outcomes[0]!.outcome, r4!.outcomes[0]!.outcome]).toEqual(['stored', 'stored', 'kept', 'stored'])
    // The held group, the group up to the repeat, and the repeat with what came after it.
    expect(store.groupCommits.groups).toBe(3)
    expect((await store.getStudy(s.studyInstanceUID)).study.numberOfInstances).toBe(3)
  })

  it('a study whose commit fails in a group fails alone: the other studies of the group are stored', async () => {
    const bad = await study(71_005, 2)
    const { store, release, held } = await heldStore(bad.studyInstanceUID)
    const good = await study(71_004, 3)
    const first = commitOne(store, good.instances[0]!.path)
    await until(held, 'the first commit to reach its index write')
    const goodRest = good.instances.slice(1).map((i) => commitOne(store, i.path))
    const bads = bad.instances.map((i) => commitOne(store, i.path))
    await until(() => store.commitsPending.waiting === 4, 'four commits to wait')
    release()
    for (const c of [first, ...goodRest]) expect((await c.result).stored).toBe(1)
    for (const c of bads) await expect(c.result).rejects.toThrow('the index is gone for this study')
    expect(store.groupCommits.largestGroup).toBe(4)
    expect((await store.getStudy(good.studyInstanceUID)).study.numberOfInstances).toBe(3)
    await expect(store.getStudy(bad.studyInstanceUID)).rejects.toMatchObject({ code: 'BEELDNET_ERR_STUDY_NOT_FOUND' })
    // The failed study's files were removed again: nothing on disk the index does not know.
    expect((await store.fsck()).orphans).toEqual([])
  })
})
