import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { readHeader } from '../../../node/dicom/dataset-reader.ts'
import { Tags } from '../../../node/dicom/tags.ts'
import { startStorescp, type Storescp } from '../../helpers/dcmtk.ts'
import { networkFetch, restartWithConfig, useLocalNetwork } from '../../helpers/local-network.ts'

/*
 * The whole way in: hospital A pushes a study to hospital B over libp2p, and B forwards it at once
 * (pacs.forward auto) to its PACS, a real storescp, under B's own patient id found by BSN.
 */

describe('a study from a peer into the local PACS', () => {
  const suite = useLocalNetwork('forward', 2)
  let pacs: Storescp | undefined
  afterAll(async () => { await pacs?.stop() })

  it('arrives in the PACS reconciled to the local patient, original ids kept, UIDs unchanged', async () => {
    const [a, b] = suite.nodes as [NonNullable<typeof suite.nodes[0]>, NonNullable<typeof suite.nodes[0]>]
    const uid = a.sampleStudies[0]!
    const sent = await a.node.store.getStudy(uid)
    const bsn = sent.study.patient.bsn
    expect(bsn).toBeDefined()

    await mkdir(join(suite.dir, 'pacs'))
    pacs = await startStorescp('B_PACS', join(suite.dir, 'pacs'))
    await writeFile(join(b.dataDir, 'patients.csv'), `bsn,patientId,issuer\n${bsn},LOCAL-77,${b.name.slice(0, 20)}\n`)
    await restartWithConfig(suite, b, [
      [['dimse', 'destinations'], [{ aeTitle: 'B_PACS', host: '127.0.0.1', port: pacs.port }]],
      [['pacs', 'destination'], 'B_PACS'],
      [['pacs', 'forward'], 'auto'],
      [['pacs', 'mappingFile'], 'patients.csv']
    ])

    const res = await networkFetch(`${a.url}/api/transfers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ studyInstanceUID: uid, to: { ura: b.ura, department: 'RAD' }, reason: 'verwijzing' }) })
    expect(res.status).toBe(201)
    const files = await pacs.settled(sent.instances.length)
    expect(files).toHaveLength(sent.instances.length)
    for (const name of files) {
      const { dataset } = readHeader(join(suite.dir, 'pacs', name))
      const value = (t: number): string => dataset.get(t)?.value?.toString('latin1').replace(/[\0 ]+$/, '') ?? ''
      expect(value(Tags.PatientID)).toBe('LOCAL-77')
      expect(value(Tags.StudyInstanceUID)).toBe(uid)
      expect(sent.instances.map((i) => i.sopInstanceUID)).toContain(value(Tags.SOPInstanceUID))
      const others = dataset.get(Tags.OtherPatientIDsSequence)!.items!
      expect(others.some((item) => item.get(Tags.PatientID)?.value?.toString('latin1').replace(/[\0 ]+$/, '') === sent.study.patient.id)).toBe(true)
    }
  })
})
