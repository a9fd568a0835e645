import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { freePort } from '../../simulations/bench/processes.ts'
import { createPrng, generateBsn, generateStudy, type GeneratedStudy } from '../../simulations/generator/index.ts'
import { tokenFor } from '../helpers/api-caller.ts'
import { restartWithConfig, useLocalNetwork } from '../helpers/local-network.ts'
import { useOrthancs, type Orthanc } from '../helpers/orthanc.ts'
import { until } from '../helpers/patience.ts'
import { nextEvent } from '../node/transfers/helpers.ts'

/*
 * Two hospitals, each with a real PACS (Orthanc) beside its node, as hospital IT connects them:
 * Orthanc A sends a study to node A under a routing AE title, node A sends it on to node B, node B
 * reconciles it to its own patient (by BSN) and exports it to Orthanc B. Orthanc B then finds and
 * retrieves studies at node B with its DICOMweb client, and with C-FIND and C-MOVE.
 */

/** An attribute's value as Orthanc's DICOMweb client gives QIDO answers (its own JSON: Value is the value, not a list). */
type OrthancQidoItem = Record<string, { Name: string, Value?: unknown }>
const value = (item: OrthancQidoItem, tag: string): string => String(item[tag]?.Value)

describe('Orthanc, a real PACS, on both sides of the network', () => {
  const suite = useLocalNetwork('orthanc', 2)
  const startOrthanc = useOrthancs()

  it('routes a study from PACS A through both nodes into PACS B under B\'s patient id, and PACS B finds and retrieves it by DICOMweb and C-MOVE', async () => {
    const [a, b] = suite.nodes as [NonNullable<typeof suite.nodes[0]>, NonNullable<typeof suite.nodes[0]>]
    const study: GeneratedStudy = await generateStudy(join(suite.dir, 'study'), {
      seed: 1401,
      patient: { id: 'A-1401', issuer: 'HOSP_A', bsn: generateBsn(createPrng(1401)) },
      accession: 'ACC1401',
      description: 'CT thorax',
      series: [{ modality: 'CT', instances: 3, rows: 32, columns: 32 }]
    })

    // Each PACS's DICOM port is chosen first, so each node can be given its PACS as a destination.
    const pacsPortA = await freePort()
    const pacsPortB = await freePort()
    const nodeA = await restartWithConfig(suite, a, [
      [['dimse', 'enabled'], true],
      [['dimse', 'port'], 0],
      [['dimse', 'acceptCalling'], ['ORTHANC_A']],
      [['dimse', 'destinations'], [{ aeTitle: 'ORTHANC_A', host: '127.0.0.1', port: pacsPortA }]],
      [['routing', 'rules'], [{ calledAeTitle: 'TO_B', to: { ura: b.ura, department: 'RAD' }, reason: 'verwijzing' }]]
    ])
    await writeFile(join(b.dataDir, 'patients.csv'), `bsn,patientId,issuer,accessionNumber\n${study.patient.bsn},B-0077,HOSP_B,B-ACC-9\n`)
    const nodeB = await restartWithConfig(suite, b, [
      [['dimse', 'enabled'], true],
      [['dimse', 'port'], 0],
      [['dimse', 'acceptCalling'], ['ORTHANC_B']],
      [['dimse', 'destinations'], [{ aeTitle: 'ORTHANC_B', host: '127.0.0.1', port: pacsPortB }]],
      [['pacs', 'destination'], 'ORTHANC_B'],
      [['pacs', 'forward'], 'auto'],
      [['pacs', 'mappingFile'], 'patients.csv']
    ])

    const pacsA: Orthanc = await startOrthanc({
      dir: join(suite.dir, 'orthanc-a'),
      aeTitle: 'ORTHANC_A',
      dicomPort: pacsPortA,
      modalities: { 'beeldnet-to-b': { aeTitle: 'TO_B', port: nodeA.dimse!.port } }
    })
    const pacsB: Orthanc = await startOrthanc({
      dir: join(suite.dir, 'orthanc-b'),
      aeTitle: 'ORTHANC_B',
      dicomPort: pacsPortB,
      modalities: { beeldnet: { aeTitle: nodeB.config.dimse.aeTitle, port: nodeB.dimse!.port } },
      // The node's DICOMweb takes an API token of a clinician, as any integration calls it.
      dicomWebServers: { beeldnet: { url: `${nodeB.url}/dicomweb`, headers: { Authorization: `Bearer ${await tokenFor(b, 'clinician')}` } } }
    })

    // PACS A holds the study and sends it to the node under the routing AE title (a C-STORE of Orthanc's own).
    for (const instance of study.instances) expect((await pacsA.upload(instance.path)).Status).toBe('Success')
    const [inA] = await pacsA.findStudy(study.studyInstanceUID)
    const arrived = nextEvent(nodeB.exchange, 'study-complete', (e) => e.studyInstanceUID === study.studyInstanceUID, 'the routed study complete at node B')
    const stored = await pacsA.rest<{ FailedInstancesCount: number, InstancesCount: number }>('POST', '/modalities/beeldnet-to-b/store', { Resources: [inA!.ID], Synchronous: true })
    expect(stored).toMatchObject({ FailedInstancesCount: 0, InstancesCount: 3 })
    await arrived
    expect((await nodeB.store.getStudy(study.studyInstanceUID)).study.numberOfInstances).toBe(3)

    // Node B exports it to PACS B by itself, under B's patient id, issuer and accession; the UIDs unchanged.
    await until(async () => (await pacsB.findStudy(study.studyInstanceUID)).length === 1 &&
      (await pacsB.rest<string[]>('GET', `/studies/${(await pacsB.findStudy(study.studyInstanceUID))[0]!.ID}/instances`)).length === 3,
    'the study in Orthanc B with its 3 instances')
    const [inB] = await pacsB.findStudy(study.studyInstanceUID)
    expect(inB!.PatientMainDicomTags).toMatchObject({ PatientID: 'B-0077' })
    expect(inB!.MainDicomTags).toMatchObject({ AccessionNumber: 'B-ACC-9', StudyInstanceUID: study.studyInstanceUID })
    const tags = await pacsB.rest<Record<string, string>>('GET', `/instances/${(await pacsB.rest<Array<{ ID: string }>>('GET', `/studies/${inB!.ID}/instances`))[0]!.ID}/simplified-tags`)
    expect(tags).toMatchObject({ PatientID: 'B-0077', IssuerOfPatientID: 'HOSP_B' })
    expect(study.instances.map((i) => i.sopInstanceUID)).toContain(tags.SOPInstanceUID)

    // PACS B forgets it; its DICOMweb client finds it at node B (QIDO-RS) and retrieves it (WADO-RS).
    await pacsB.rest('DELETE', `/studies/${inB!.ID}`)
    expect(await pacsB.findStudy(study.studyInstanceUID)).toEqual([])
    const found = await pacsB.rest<OrthancQidoItem[]>('POST', '/dicom-web/servers/beeldnet/qido', { Uri: '/studies', Arguments: { StudyInstanceUID: study.studyInstanceUID } })
    expect(found).toHaveLength(1)
    expect(value(found[0]!, '0020000D')).toBe(study.studyInstanceUID)
    // The node holds the study as sent; only the export to the PACS is reconciled.
    expect(value(found[0]!, '00100020')).toBe('A-1401')
    // (NumberOfStudyRelatedInstances is there too, but Orthanc 1.10's client shows an IS given as a JSON
    // number, as PS3.18 F.2.3 has it and the node sends it, without its value: counted below instead.)
    expect(found[0]!['00201208']?.Name).toBe('NumberOfStudyRelatedInstances')
    expect(await pacsB.rest('POST', '/dicom-web/servers/beeldnet/retrieve', { Resources: [{ Study: study.studyInstanceUID }] })).toMatchObject({ ReceivedInstancesCount: '3' })
    const [byDicomWeb] = await pacsB.findStudy(study.studyInstanceUID)
    expect(byDicomWeb).toBeDefined()
    expect(await pacsB.rest<unknown[]>('GET', `/studies/${byDicomWeb!.ID}/instances`)).toHaveLength(3)

    // Again by DIMSE: PACS B's C-FIND at node B finds it, its C-MOVE to itself brings it back.
    await pacsB.rest('DELETE', `/studies/${byDicomWeb!.ID}`)
    const query = await pacsB.rest<{ ID: string }>('POST', '/modalities/beeldnet/query', { Level: 'Study', Query: { StudyInstanceUID: study.studyInstanceUID, PatientID: '', NumberOfStudyRelatedInstances: '' } })
    const answers = await pacsB.rest<string[]>('GET', `/queries/${query.ID}/answers`)
    expect(answers).toHaveLength(1)
    const answer = await pacsB.rest<Record<string, string>>('GET', `/queries/${query.ID}/answers/0/content?simplify`)
    expect(answer).toMatchObject({ StudyInstanceUID: study.studyInstanceUID, PatientID: 'A-1401', NumberOfStudyRelatedInstances: '3' })
    await pacsB.rest('POST', `/queries/${query.ID}/retrieve`, { TargetAet: 'ORTHANC_B', Synchronous: true })
    const [byCMove] = await pacsB.findStudy(study.studyInstanceUID)
    expect(byCMove).toBeDefined()
    expect(await pacsB.rest<unknown[]>('GET', `/studies/${byCMove!.ID}/instances`)).toHaveLength(3)
    // Not asserted, and open: what PACS B pulls itself (DICOMweb, C-MOVE) carries hospital A's patient
    // id, not B's; only the node's own export reconciles.
  })
})
