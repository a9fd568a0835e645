import type { Level } from 'level'
import { StoreLockedError } from '../errors.ts'

/** Opens a level database; another process holding it is BEELDNET_ERR_STORE_LOCKED, not a stack trace. */
export async function openLevel (db: Level<string, unknown>): Promise<void> {
  try {
    await db.open()
  } catch (err) {
    if ((err as { cause?: { code?: string } }).cause?.code === 'LEVEL_LOCKED') throw new StoreLockedError(db.location)
    throw err
  }
}
