import { rename } from 'node:fs/promises'
import { join } from 'node:path'
import { fsyncPath } from '../../store/durable-fs.ts'
import { GroupCommitter, GroupItemFailure } from '../../store/group-commit.ts'
import type { TransferStore, VerifiedInstance } from '../transfer-store.ts'

/*
 * The last step of receiving an instance, done for several at once: each checked temp file is
 * renamed into its transfer's incoming directory, each directory touched is fsynced once, and the
 * verified records of the whole group go in one synced write. An instance counts as verified (and
 * is not asked for again) only once all three are durable. Instances of all sessions share the
 * groups, so many small instances arriving together pay for durability once, not each.
 */

export interface KeptInstance {
  /** the staged, synced and checked file */
  tmpPath: string
  /** its transfer's incoming directory (it exists, and is durable in its parent) */
  dir: string
  peerId: string
  transferId: string
  instance: VerifiedInstance
}

export type VerifiedKeeper = GroupCommitter<KeptInstance, void>

/** Instances one group holds at most: each receive session keeps up to 32 finishing. */
const MAX_GROUP = 64

export function createVerifiedKeeper (transfers: Pick<TransferStore, 'addVerifiedMany'>): VerifiedKeeper {
  return new GroupCommitter<KeptInstance, void>({
    maxItems: MAX_GROUP,
    commit: async (group) => {
      const results: Array<undefined | GroupItemFailure> = []
      const kept: KeptInstance[] = []
      for (const item of group) {
        try {
          await rename(item.tmpPath, join(item.dir, item.instance.sha256))
          kept.push(item)
          results.push(undefined)
        } catch (err) {
          results.push(new GroupItemFailure(err))
        }
      }
      for (const dir of new Set(kept.map((k) => k.dir))) await fsyncPath(dir)
      if (kept.length > 0) await transfers.addVerifiedMany(kept.map(({ peerId, transferId, instance }) => ({ peerId, transferId, instance })))
      return results
    }
  })
}
