import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach } from 'vitest'
import { AuditLog } from '../../node/audit/audit-log.ts'
import { createDimseService, type DimseService } from '../../node/dimse/dimse-service.ts'
import { StudyStore, type StudyStoreInit } from '../../node/store/study-store.ts'

/*
 * A study store with its audit trail and its DIMSE service (AE title BEELDNET, calling AE PACS
 * accepted) on a free loopback port: what a PACS's storescu talks to, without the rest of a node.
 * Call it after useTempDirs(): vitest runs later afterEach hooks first, so these stop before their
 * directories are removed.
 */

export interface DimseStoreNode { store: StudyStore, audit: AuditLog, service: DimseService }

export function useDimseStoreNodes (): (dir: string, storeInit?: Omit<StudyStoreInit, 'dir'>) => Promise<DimseStoreNode> {
  const started: DimseStoreNode[] = []
  afterEach(async () => {
    for (const { service, audit, store } of started.splice(0)) {
      await service.stop()
      await audit.stop()
      await store.stop()
    }
  })
  return async (dir, storeInit = {}) => {
    const store = new StudyStore({ dir, ...storeInit })
    await store.start()
    const audit = new AuditLog(join(dir, 'audit', 'trail.jsonl'))
    await audit.start()
    const service = createDimseService({ store, logger: pino({ level: 'silent' }), audit }, {
      enabled: true, host: '127.0.0.1', port: 0, aeTitle: 'BEELDNET', acceptCalling: ['PACS'], destinations: []
    })
    await service.start()
    started.push({ store, audit, service })
    return { store, audit, service }
  }
}
