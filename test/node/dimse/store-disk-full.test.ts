import { describe, expect, it } from 'vitest'
import type { DiskRefusal } from '../../../node/store/disk-space.ts'
import { generateStudy } from '../../../simulations/generator/index.ts'
import { dcmtk } from '../../helpers/dcmtk.ts'
import { useDimseStoreNodes } from '../../helpers/dimse-store-node.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

/*
 * dcmtk's storescu into a node whose disk is full (statfs injected: the disk presented as nearly
 * full): each instance is answered A700 "Refused: Out of Resources" (BEELDNET_ERR_DISK_FULL in the
 * Error Comment and the log) and nothing is stored; once space is freed the same instances are taken.
 */

const tempDir = useTempDirs()
const startDimseStoreNode = useDimseStoreNodes()
const GiB = 1024 ** 3
describe('C-STORE into a node whose disk is full', () => {
  it('answers A700 Refused: Out of Resources with BEELDNET_ERR_DISK_FULL, stores nothing, and takes the instances once space is freed', async () => {
    const dir = await tempDir('node')
    let free = 100 * 1024 ** 2
    const { store, service } = await startDimseStoreNode(dir, { space: { statfs: async () => ({ bsize: 4096, bavail: Math.floor(free / 4096), blocks: 200 * GiB / 4096 }) } })
    const refusals: DiskRefusal[] = []
    store.space.on('refused', (r) => refusals.push(r))
    const study = await generateStudy(await tempDir('src'), { seed: 951, patient: { id: 'F951', issuer: 'HOSP-A', name: 'Smit^Els' }, series: [{ modality: 'CT', instances: 2, rows: 32, columns: 32 }] })
    const send = async (): Promise<string> => {
      const r = await dcmtk('storescu', ['-v', '--no-halt', '-aet', 'PACS', '-aec', 'BEELDNET', '127.0.0.1', String(service.port), ...study.instances.map((i) => i.path)])
      return r.stdout + r.stderr
    }

    const refused = await send()
    expect([...refused.matchAll(/Received Store Response \(([^)]*)\)/g)].map((m) => m[1])).toEqual(['Refused: OutOfResources', 'Refused: OutOfResources'])
    expect(refusals.map((r) => r.route)).toEqual(['c-store', 'c-store'])
    expect(await store.index.getStudy(study.studyInstanceUID)).toBeUndefined()

    free = 50 * GiB
    const taken = await send()
    expect([...taken.matchAll(/Received Store Response \(([^)]*)\)/g)].map((m) => m[1])).toEqual(['Success', 'Success'])
    expect((await store.getStudy(study.studyInstanceUID)).instances).toHaveLength(2)
  })
})
