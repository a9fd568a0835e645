import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDimseService, type DimseService } from '../../../node/dimse/dimse-service.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { dcmtk } from '../../helpers/dcmtk.ts'

// C-FIND answers keys the index does not keep (PatientAge, ProtocolName, ImageType) from the stored header, as QIDO-RS does.

describe('C-FIND keys beyond the index, asked by findscu', () => {
  let work: string
  let store: StudyStore
  let service: DimseService
  let study: GeneratedStudy
  let bare: GeneratedStudy

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'beeldnet-find-header-'))
    study = await generateStudy(join(work, 'src'), {
      seed: 93,
      patient: { name: 'Bakker^Eva', id: '9300001' },
      series: [{ modality: 'CT', instances: 2, rows: 16, columns: 16 }]
    })
    for (const instance of study.instances) {
      const res = await dcmtk('dcmodify', ['-nb', '-i', '(0010,1010)=062Y', '-i', '(0018,1030)=Abdomen', instance.path])
      expect(res.code, res.stderr).toBe(0)
    }
    bare = await generateStudy(join(work, 'bare'), { seed: 94, patient: { name: 'Smit^Jan', id: '9300002' }, series: [{ modality: 'MR', instances: 1, rows: 16, columns: 16 }] })
    store = new StudyStore({ dir: join(work, 'node') })
    await store.start()
    for (const s of [study, bare]) {
      const session = store.beginImport()
      for (const instance of s.instances) await session.add(instance.path)
      await session.commit()
    }
    service = createDimseService({ store, logger: pino({ level: 'silent' }) }, {
      enabled: true, host: '127.0.0.1', port: 0, aeTitle: 'BEELDNET', acceptCalling: ['MODALITY'], destinations: []
    })
    await service.start()
  })

  afterAll(async () => {
    await service.stop()
    await store.stop()
    await rm(work, { recursive: true, force: true })
  })

  async function findDumps (name: string, keys: string[]): Promise<string[]> {
    const out = join(work, name)
    await mkdir(out)
    const found = await dcmtk('findscu', ['-S', '-aet', 'MODALITY', '-aec', 'BEELDNET', '-X', '-od', out, ...keys.flatMap((k) => ['-k', k]), '127.0.0.1', String(service.port)])
    expect(found.code, found.stderr).toBe(0)
    const files = (await readdir(out)).sort()
    return Promise.all(files.map(async (f) => (await dcmtk('dcmdump', [join(out, f)])).stdout))
  }

  it('answers PatientAge at study level, ProtocolName at series level and ImageType at image level from the files', async () => {
    const [studyAnswer, ...others] = await findDumps('study', ['QueryRetrieveLevel=STUDY', 'PatientID=9300001', 'PatientAge', 'StudyInstanceUID'])
    expect(others).toHaveLength(0)
    expect(studyAnswer).toMatch(/\(0010,1010\) AS \[062Y\]/)

    const [seriesAnswer] = await findDumps('series', ['QueryRetrieveLevel=SERIES', `StudyInstanceUID=${study.studyInstanceUID}`, 'SeriesInstanceUID', 'ProtocolName'])
    expect(seriesAnswer).toMatch(/\(0018,1030\) LO \[Abdomen\]/)

    const images = await findDumps('images', ['QueryRetrieveLevel=IMAGE', `StudyInstanceUID=${study.studyInstanceUID}`, 'SOPInstanceUID', 'ImageType'])
    expect(images).toHaveLength(2)
    for (const dump of images) expect(dump).toMatch(/\(0008,0008\) CS \[ORIGINAL\\PRIMARY\\AXIAL\]/)
  })

  it('answers a key the files do not have as an empty attribute, as C-FIND requires', async () => {
    const [answer] = await findDumps('find-bare', ['QueryRetrieveLevel=STUDY', 'PatientID=9300002', 'PatientAge'])
    expect(answer).toMatch(/\(0010,1010\) AS \(no value available\)/)
  })
})
