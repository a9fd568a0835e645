import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { BeeldnetNode } from '../../node/beeldnet-node.ts'
import { nodePaths } from '../../node/paths.ts'
import type { ExportRecord } from '../../node/reconcile/export-store.ts'
import { freePort } from '../../simulations/bench/processes.ts'
import { createPrng, generateBsn, generateStudy, type GeneratedStudy } from '../../simulations/generator/index.ts'
import { tokenFor } from '../helpers/api-caller.ts'
import { dcmtk } from '../helpers/dcmtk.ts'
import { restartWithConfig, useLocalNetwork } from '../helpers/local-network.ts'
import { useOrthancs, type Orthanc } from '../helpers/orthanc.ts'
import { until } from '../helpers/patience.ts'
import { nextEvent } from '../node/transfers/helpers.ts'

/*
 * Two hospitals, each with a real PACS (Orthanc) beside its node, connected as hospital IT connects
 * them: Orthanc A sends a study to node A under a routing AE title, node A sends it on to node B,
 * node B reconciles it to its own patient (by BSN) and exports it to Orthanc B. Orthanc B also
 * finds and retrieves studies at node B with its DICOMweb client, and with C-FIND and C-MOVE; the
 * PACSes re-send, send compressed studies, and one (Orthanc C) takes only uncompressed ones.
 */

const JPEG_LOSSLESS = '1.2.840.10008.1.2.4.70'
const LITTLE_ENDIAN = ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2']

/** JPEG lossless copies (dcmcjpeg's default) of a generated study's files, named beside them. */
async function jpegCopies (study: GeneratedStudy): Promise<string[]> {
  return Promise.all(study.instances.map(async (instance) => {
    const out = `${instance.path}.jpeg.dcm`
    const run = await dcmtk('dcmcjpeg', [instance.path, out])
    if (run.code !== 0) throw new Error(`dcmcjpeg ${instance.path}: ${run.stderr}`)
    return out
  }))
}

/** An attribute's value as Orthanc's DICOMweb client gives QIDO answers (its own JSON: Value is the value, not a list). */
type OrthancQidoItem = Record<string, { Name: string, Value?: unknown }>
const value = (item: OrthancQidoItem, tag: string): string => String(item[tag]?.Value)

/** The study Orthanc A sends, of a patient hospital B knows by BSN as B-0077. */
const ROUTED = { seed: 1401, patientId: 'A-1401', bsn: generateBsn(createPrng(1401)), localId: 'B-0077', localIssuer: 'HOSP_B', localAccession: 'B-ACC-9' }

describe('Orthanc, a real PACS, on both sides of the network', () => {
  const suite = useLocalNetwork('orthanc', 2)
  const startOrthanc = useOrthancs()
  let nodeA: BeeldnetNode
  let nodeB: BeeldnetNode
  let pacsA: Orthanc
  let pacsB: Orthanc
  /** a PACS that accepts only uncompressed transfer syntaxes */
  let pacsC: Orthanc
  /** node B's own sample studies (the network gave it two) */
  let heldByB: string[]

  beforeAll(async () => {
    const [a, b] = suite.nodes as [NonNullable<typeof suite.nodes[0]>, NonNullable<typeof suite.nodes[0]>]
    heldByB = b.sampleStudies
    // Each PACS's DICOM port is chosen first, so each node can be given its PACS as a destination.
    const pacsPortA = await freePort()
    const pacsPortB = await freePort()
    const pacsPortC = await freePort()
    nodeA = await restartWithConfig(suite, a, [
      [['dimse', 'enabled'], true],
      [['dimse', 'port'], 0],
      [['dimse', 'acceptCalling'], ['ORTHANC_A']],
      [['dimse', 'destinations'], [{ aeTitle: 'ORTHANC_A', host: '127.0.0.1', port: pacsPortA }]],
      [['routing', 'rules'], [{ calledAeTitle: 'TO_B', to: { ura: b.ura, department: 'RAD' }, reason: 'verwijzing' }]]
    ])
    await writeFile(join(b.dataDir, 'patients.csv'), `bsn,patientId,issuer,accessionNumber\n${ROUTED.bsn},${ROUTED.localId},${ROUTED.localIssuer},${ROUTED.localAccession}\n`)
    nodeB = await restartWithConfig(suite, b, [
      [['dimse', 'enabled'], true],
      [['dimse', 'port'], 0],
      [['dimse', 'acceptCalling'], ['ORTHANC_B', 'ORTHANC_C']],
      [['dimse', 'destinations'], [{ aeTitle: 'ORTHANC_B', host: '127.0.0.1', port: pacsPortB }, { aeTitle: 'ORTHANC_C', host: '127.0.0.1', port: pacsPortC }]],
      [['pacs', 'destination'], 'ORTHANC_B'],
      [['pacs', 'forward'], 'auto'],
      [['pacs', 'mappingFile'], 'patients.csv'],
      // A failed export is tried again each second here (30 s, doubling, by default).
      [['pacs', 'exportBackoffSeconds'], 1],
      [['pacs', 'exportBackoffMaxSeconds'], 1]
    ])
    pacsA = await startOrthanc({
      dir: join(suite.dir, 'orthanc-a'),
      aeTitle: 'ORTHANC_A',
      dicomPort: pacsPortA,
      modalities: { 'beeldnet-to-b': { aeTitle: 'TO_B', port: nodeA.dimse!.port }, beeldnet: { aeTitle: nodeA.config.dimse.aeTitle, port: nodeA.dimse!.port } }
    })
    pacsB = await startOrthanc({
      dir: join(suite.dir, 'orthanc-b'),
      aeTitle: 'ORTHANC_B',
      dicomPort: pacsPortB,
      modalities: { beeldnet: { aeTitle: nodeB.config.dimse.aeTitle, port: nodeB.dimse!.port } },
      // The node's DICOMweb takes an API token of a clinician, as any integration calls it.
      dicomWebServers: { beeldnet: { url: `${nodeB.url}/dicomweb`, headers: { Authorization: `Bearer ${await tokenFor(b, 'clinician')}` } } }
    })
    pacsC = await startOrthanc({
      dir: join(suite.dir, 'orthanc-c'),
      aeTitle: 'ORTHANC_C',
      dicomPort: pacsPortC,
      acceptCompressed: false,
      modalities: { beeldnet: { aeTitle: nodeB.config.dimse.aeTitle, port: nodeB.dimse!.port } }
    })
  })

  /** An Orthanc's instances of a study (none when it does not hold it). */
  const instancesIn = async (pacs: Orthanc, studyInstanceUID: string): Promise<Array<{ ID: string, MainDicomTags: Record<string, string> }>> => {
    const [study] = await pacs.findStudy(studyInstanceUID)
    return study === undefined ? [] : pacs.rest('GET', `/studies/${study.ID}/instances`)
  }
  const instancesInB = async (studyInstanceUID: string): Promise<Array<{ ID: string }>> => instancesIn(pacsB, studyInstanceUID)
  /** The transfer syntax Orthanc received an instance in. */
  const syntaxIn = async (pacs: Orthanc, id: string): Promise<string> => (await pacs.bytes(`/instances/${id}/metadata/TransferSyntax`)).toString('latin1')
  /** The store-duplicate records of node A's audit trail for a study. */
  const duplicatesAtA = async (studyInstanceUID: string): Promise<Array<{ outcome: string, details: { transferSyntaxUID: string } }>> =>
    (await readFile(nodePaths(suite.nodes[0]!.dataDir).auditTrail, 'utf8')).split('\n').filter((line) => line !== '')
      .map((line) => JSON.parse(line) as { event: string, studyInstanceUID?: string, outcome: string, details: { transferSyntaxUID: string } })
      .filter((r) => r.event === 'store-duplicate' && r.studyInstanceUID === studyInstanceUID)

  it('routes a study from PACS A through both nodes into PACS B, reconciled to B\'s patient id, issuer and accession', async () => {
    const study: GeneratedStudy = await generateStudy(join(suite.dir, 'routed'), {
      seed: ROUTED.seed,
      patient: { id: ROUTED.patientId, issuer: 'HOSP_A', bsn: ROUTED.bsn },
      accession: 'ACC1401',
      description: 'CT thorax',
      series: [{ modality: 'CT', instances: 3, rows: 32, columns: 32 }]
    })
    // PACS A holds the study and sends it to its node under the routing AE title (a C-STORE of Orthanc's own).
    for (const instance of study.instances) expect((await pacsA.upload(instance.path)).Status).toBe('Success')
    const [inA] = await pacsA.findStudy(study.studyInstanceUID)
    const arrived = nextEvent(nodeB.exchange, 'study-complete', (e) => e.studyInstanceUID === study.studyInstanceUID, 'the routed study complete at node B')
    const stored = await pacsA.rest('POST', '/modalities/beeldnet-to-b/store', { Resources: [inA!.ID], Synchronous: true })
    expect(stored).toMatchObject({ FailedInstancesCount: 0, InstancesCount: 3 })
    await arrived
    expect((await nodeB.store.getStudy(study.studyInstanceUID)).study.numberOfInstances).toBe(3)

    // Node B exports it to PACS B by itself, under B's patient id, issuer and accession; the UIDs unchanged.
    await until(async () => (await instancesInB(study.studyInstanceUID)).length === 3, 'the routed study in Orthanc B with its 3 instances')
    const [inB] = await pacsB.findStudy(study.studyInstanceUID)
    expect(inB!.PatientMainDicomTags).toMatchObject({ PatientID: ROUTED.localId })
    expect(inB!.MainDicomTags).toMatchObject({ AccessionNumber: ROUTED.localAccession, StudyInstanceUID: study.studyInstanceUID })
    for (const { ID } of await instancesInB(study.studyInstanceUID)) {
      const tags = await pacsB.rest<Record<string, string>>('GET', `/instances/${ID}/simplified-tags`)
      expect(tags).toMatchObject({ PatientID: ROUTED.localId, IssuerOfPatientID: ROUTED.localIssuer })
      expect(study.instances.map((i) => i.sopInstanceUID)).toContain(tags.SOPInstanceUID)
    }
  })

  it('keeps node B\'s export while PACS B is down and delivers it, reconciled, once PACS B is back', async () => {
    const study = await generateStudy(join(suite.dir, 'pacs-down'), {
      seed: 1408,
      patient: { id: 'A-1408', issuer: 'HOSP_A', bsn: ROUTED.bsn },
      series: [{ modality: 'CT', instances: 2, rows: 32, columns: 32 }]
    })
    const exportOf = async (): Promise<ExportRecord | undefined> => (await nodeB.pacs.exports.list()).find((r) => r.studyInstanceUID === study.studyInstanceUID)
    await pacsB.stop()
    for (const instance of study.instances) await pacsA.upload(instance.path)
    const arrived = nextEvent(nodeB.exchange, 'study-complete', (e) => e.studyInstanceUID === study.studyInstanceUID, 'the routed study complete at node B')
    const [inA] = await pacsA.findStudy(study.studyInstanceUID)
    expect(await pacsA.rest('POST', '/modalities/beeldnet-to-b/store', { Resources: [inA!.ID], Synchronous: true })).toMatchObject({ FailedInstancesCount: 0 })
    await arrived

    // While the PACS is down the export waits for its next attempt, and says why.
    await until(async () => ((await exportOf())?.attempts ?? 0) >= 2, 'node B to try the export to the stopped PACS twice')
    expect(await exportOf()).toMatchObject({ state: expect.stringMatching(/^(queued|sending)$/), lastError: { code: 'BEELDNET_ERR_PACS_UNREACHABLE' } })

    pacsB = await startOrthanc(pacsB.init)
    await until(async () => (await exportOf())?.state === 'complete', 'the export to PACS B complete once it is back')
    const [inB] = await pacsB.findStudy(study.studyInstanceUID)
    expect(inB!.PatientMainDicomTags).toMatchObject({ PatientID: ROUTED.localId })
    expect(await instancesIn(pacsB, study.studyInstanceUID)).toHaveLength(2)
  })

  it('lets PACS B find a study at node B and retrieve it with its DICOMweb client (QIDO-RS, WADO-RS)', async () => {
    const uid = heldByB[0]!
    const held = await nodeB.store.getStudy(uid)
    expect(await instancesInB(uid)).toEqual([])

    const found = await pacsB.rest<OrthancQidoItem[]>('POST', '/dicom-web/servers/beeldnet/qido', { Uri: '/studies', Arguments: { StudyInstanceUID: uid } })
    expect(found).toHaveLength(1)
    expect(value(found[0]!, '0020000D')).toBe(uid)
    expect(value(found[0]!, '00100020')).toBe(held.study.patient.id)
    // NumberOfStudyRelatedInstances is there too, but Orthanc 1.10's client shows an IS given as a JSON
    // number (as PS3.18 F.2.3 has it, and as Orthanc's own DICOMweb server gives it too) without its
    // value: the instances are counted below instead.
    expect(found[0]!['00201208']?.Name).toBe('NumberOfStudyRelatedInstances')
    // Its client's plain GET: the study's series (QIDO-RS) and metadata (WADO-RS), as the node answers them.
    type DicomJson = Array<Record<string, { Value?: unknown[] }>>
    const series = await pacsB.rest<DicomJson>('POST', '/dicom-web/servers/beeldnet/get', { Uri: `/studies/${uid}/series` })
    expect(series.map((s) => s['0020000E']?.Value?.[0]).sort()).toEqual([...new Set(held.instances.map((i) => i.seriesInstanceUID))].sort())
    const metadata = await pacsB.rest<DicomJson>('POST', '/dicom-web/servers/beeldnet/get', { Uri: `/studies/${uid}/metadata` })
    expect(metadata.map((m) => m['00080018']?.Value?.[0]).sort()).toEqual(held.instances.map((i) => i.sopInstanceUID).sort())

    const retrieved = await pacsB.rest('POST', '/dicom-web/servers/beeldnet/retrieve', { Resources: [{ Study: uid }] })
    expect(retrieved).toMatchObject({ ReceivedInstancesCount: String(held.instances.length) })
    expect((await instancesInB(uid)).length).toBe(held.instances.length)
  })

  it('lets PACS B find a study at node B by C-FIND and fetch it by C-MOVE to itself', async () => {
    const uid = heldByB[1]!
    const held = await nodeB.store.getStudy(uid)
    expect(await instancesInB(uid)).toEqual([])

    const query = await pacsB.rest<{ ID: string }>('POST', '/modalities/beeldnet/query', { Level: 'Study', Query: { StudyInstanceUID: uid, PatientID: '', NumberOfStudyRelatedInstances: '' } })
    expect(await pacsB.rest('GET', `/queries/${query.ID}/answers`)).toHaveLength(1)
    const answer = await pacsB.rest('GET', `/queries/${query.ID}/answers/0/content?simplify`)
    expect(answer).toMatchObject({ StudyInstanceUID: uid, PatientID: held.study.patient.id, NumberOfStudyRelatedInstances: String(held.instances.length) })

    await pacsB.rest('POST', `/queries/${query.ID}/retrieve`, { TargetAet: 'ORTHANC_B', Synchronous: true })
    expect((await instancesInB(uid)).length).toBe(held.instances.length)
  })

  it('answers PACS B\'s C-FIND at patient, series and image level, and its C-MOVE of one series and of one instance', async () => {
    const study = await generateStudy(join(suite.dir, 'levels'), { seed: 1407, series: [{ modality: 'CT', instances: 2, rows: 32, columns: 32 }, { modality: 'CT', instances: 3, rows: 32, columns: 32 }] })
    const session = nodeB.store.beginImport()
    for (const instance of study.instances) await session.add(instance.path)
    await session.commit()
    const [first, second] = [...new Set(study.instances.map((i) => i.seriesInstanceUID))] as [string, string]
    const answersTo = async (level: string, query: Record<string, string>): Promise<{ id: string, answers: Array<Record<string, string>> }> => {
      const { ID } = await pacsB.rest<{ ID: string }>('POST', '/modalities/beeldnet/query', { Level: level, Query: query })
      return { id: ID, answers: await pacsB.rest('GET', `/queries/${ID}/answers?expand&simplify`) }
    }
    expect((await answersTo('Patient', { PatientID: study.patient.id, PatientName: '' })).answers).toEqual([expect.objectContaining({ PatientID: study.patient.id })])
    const series = await answersTo('Series', { StudyInstanceUID: study.studyInstanceUID, SeriesInstanceUID: '', NumberOfSeriesRelatedInstances: '' })
    expect(series.answers.map((a) => [a.SeriesInstanceUID, a.NumberOfSeriesRelatedInstances]).sort()).toEqual([[first, '2'], [second, '3']].sort())
    const images = await answersTo('Instance', { StudyInstanceUID: study.studyInstanceUID, SeriesInstanceUID: second, SOPInstanceUID: '' })
    expect(images.answers.map((a) => a.SOPInstanceUID).sort()).toEqual(study.instances.filter((i) => i.seriesInstanceUID === second).map((i) => i.sopInstanceUID).sort())

    // One series by C-MOVE of a series-level answer, then one instance of the other by a C-MOVE of its own.
    const firstAnswer = series.answers.findIndex((a) => a.SeriesInstanceUID === first)
    await pacsB.rest('POST', `/queries/${series.id}/answers/${firstAnswer}/retrieve`, { TargetAet: 'ORTHANC_B', Synchronous: true })
    expect((await instancesIn(pacsB, study.studyInstanceUID)).length).toBe(2)
    const one = study.instances.find((i) => i.seriesInstanceUID === second)!
    await pacsB.rest('POST', '/modalities/beeldnet/move', { Level: 'Instance', Resources: [{ StudyInstanceUID: study.studyInstanceUID, SeriesInstanceUID: second, SOPInstanceUID: one.sopInstanceUID }], TargetAet: 'ORTHANC_B', Synchronous: true })
    const held = await instancesIn(pacsB, study.studyInstanceUID)
    expect(held.map((i) => i.MainDicomTags.SOPInstanceUID).sort()).toEqual([...study.instances.filter((i) => i.seriesInstanceUID === first).map((i) => i.sopInstanceUID), one.sopInstanceUID].sort())
  })

  it('answers success to PACS A\'s re-sends, as stored and recompressed, and keeps its one copy', async () => {
    const study = await generateStudy(join(suite.dir, 'resent'), { seed: 1404, series: [{ modality: 'CT', instances: 2, rows: 32, columns: 32 }] })
    for (const instance of study.instances) await pacsA.upload(instance.path)
    const send = async (): Promise<unknown> => {
      const [inA] = await pacsA.findStudy(study.studyInstanceUID)
      return pacsA.rest('POST', '/modalities/beeldnet/store', { Resources: [inA!.ID], Synchronous: true })
    }
    expect(await send()).toMatchObject({ FailedInstancesCount: 0, InstancesCount: 2 })
    expect(await send()).toMatchObject({ FailedInstancesCount: 0, InstancesCount: 2 })
    // The PACS recompresses its archive (JPEG lossless) and sends the study once more.
    await pacsA.rest('DELETE', `/studies/${(await pacsA.findStudy(study.studyInstanceUID))[0]!.ID}`)
    for (const path of await jpegCopies(study)) await pacsA.upload(path)
    expect(await send()).toMatchObject({ FailedInstancesCount: 0, InstancesCount: 2 })

    const held = await nodeA.store.getStudy(study.studyInstanceUID)
    expect(held.instances.map((i) => i.transferSyntaxUID)).toEqual(['1.2.840.10008.1.2.1', '1.2.840.10008.1.2.1'])
    // The trail is written beside the answer, not before it.
    await until(async () => (await duplicatesAtA(study.studyInstanceUID)).length === 4, 'node A\'s audit trail to record the 4 copies it kept')
    const duplicates = await duplicatesAtA(study.studyInstanceUID)
    expect(duplicates.map((d) => d.outcome.split(' ')[0])).toEqual(['kept', 'kept', 'kept', 'kept'])
    expect(duplicates.map((d) => d.details.transferSyntaxUID)).toEqual(['1.2.840.10008.1.2.1', '1.2.840.10008.1.2.1', JPEG_LOSSLESS, JPEG_LOSSLESS])
  })

  it('takes a JPEG lossless study from PACS B and gives it back by DICOMweb as stored, frame for frame', async () => {
    const study = await generateStudy(join(suite.dir, 'jpeg-b'), { seed: 1405, series: [{ modality: 'MR', instances: 2, rows: 32, columns: 32 }] })
    for (const path of await jpegCopies(study)) await pacsB.upload(path)
    const framesBefore = new Map<string, Buffer>()
    for (const { ID, MainDicomTags } of await instancesIn(pacsB, study.studyInstanceUID)) framesBefore.set(MainDicomTags.SOPInstanceUID!, await pacsB.bytes(`/instances/${ID}/frames/0/raw`))
    const [inB] = await pacsB.findStudy(study.studyInstanceUID)
    expect(await pacsB.rest('POST', '/modalities/beeldnet/store', { Resources: [inB!.ID], Synchronous: true })).toMatchObject({ FailedInstancesCount: 0, InstancesCount: 2 })
    expect((await nodeB.store.getStudy(study.studyInstanceUID)).instances.map((i) => i.transferSyntaxUID)).toEqual([JPEG_LOSSLESS, JPEG_LOSSLESS])

    await pacsB.rest('DELETE', `/studies/${inB!.ID}`)
    expect(await pacsB.rest('POST', '/dicom-web/servers/beeldnet/retrieve', { Resources: [{ Study: study.studyInstanceUID }] })).toMatchObject({ ReceivedInstancesCount: '2' })
    const back = await instancesIn(pacsB, study.studyInstanceUID)
    expect(back).toHaveLength(2)
    for (const { ID, MainDicomTags } of back) {
      expect(await syntaxIn(pacsB, ID)).toBe(JPEG_LOSSLESS)
      expect((await pacsB.bytes(`/instances/${ID}/frames/0/raw`)).equals(framesBefore.get(MainDicomTags.SOPInstanceUID!)!)).toBe(true)
    }
  })

  // Issue 14 point 2: a PACS that accepts only uncompressed syntaxes gets a JPEG lossless study decoded
  // (node/transcode), frame by frame as it streams.
  it('sends a compressed study by C-MOVE to a PACS that accepts only uncompressed, decoded to Little Endian', async () => {
    const study = await generateStudy(join(suite.dir, 'jpeg-c'), { seed: 1406, series: [{ modality: 'CT', instances: 2, rows: 32, columns: 32 }] })
    const session = nodeB.store.beginImport()
    for (const path of await jpegCopies(study)) await session.add(path)
    await session.commit()
    const query = await pacsC.rest<{ ID: string }>('POST', '/modalities/beeldnet/query', { Level: 'Study', Query: { StudyInstanceUID: study.studyInstanceUID } })
    expect(await pacsC.rest('GET', `/queries/${query.ID}/answers`)).toHaveLength(1)
    await pacsC.rest('POST', `/queries/${query.ID}/retrieve`, { TargetAet: 'ORTHANC_C', Synchronous: true })
    const received = await instancesIn(pacsC, study.studyInstanceUID)
    expect(received).toHaveLength(2)
    for (const { ID, MainDicomTags } of received) {
      expect(LITTLE_ENDIAN).toContain(await syntaxIn(pacsC, ID))
      // Lossless: the decoded frame is the generated one (a 32x32 16-bit frame, the file's last element).
      const original = await readFile(study.instances.find((i) => i.sopInstanceUID === MainDicomTags.SOPInstanceUID)!.path)
      expect((await pacsC.bytes(`/instances/${ID}/frames/0/raw`)).equals(original.subarray(original.length - 32 * 32 * 2))).toBe(true)
    }
  })

  // Orthanc's STOW-RS client (orthanc-dicomweb 1.7) sends a multipart boundary of 73 characters, over
  // RFC 2046's 70: the node must take it as PACSes send it.
  it('lets PACS B store a study at node B with its DICOMweb client (STOW-RS)', async () => {
    const study = await generateStudy(join(suite.dir, 'stowed'), { seed: 1402, series: [{ modality: 'MR', instances: 2, rows: 32, columns: 32 }] })
    let orthancStudy = ''
    for (const instance of study.instances) orthancStudy = (await pacsB.upload(instance.path)).ParentStudy
    await pacsB.rest('POST', '/dicom-web/servers/beeldnet/stow', { Resources: [orthancStudy], Synchronous: true })
    expect((await nodeB.store.getStudy(study.studyInstanceUID)).study.numberOfInstances).toBe(2)
  })
})
