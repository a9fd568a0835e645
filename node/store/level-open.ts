import type { Level } from 'level'
import { StoreLockedError } from '../errors.ts'

/**
 * Memory for a node's level databases (each): they hold records of a few hundred bytes, so
 * LevelDB's defaults (8 MiB block cache, 4 MiB write buffer) buy nothing but resident memory,
 * which the 200 MB bound of a node moving a study cannot spare.
 */
export const LEVEL_MEMORY_OPTIONS = { cacheSize: 1024 * 1024, writeBufferSize: 1024 * 1024 } as const

/** Opens a level database; another process holding it is BEELDNET_ERR_STORE_LOCKED, not a stack trace. */
export async function openLevel (db: Level<string, unknown>): Promise<void> {
  try {
    await db.open()
  } catch (err) {
    if ((err as { cause?: { code?: string } }).cause?.code === 'LEVEL_LOCKED') throw new StoreLockedError(db.location)
    throw err
  }
}
