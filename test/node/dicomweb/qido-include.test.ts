import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { createHttpServer } from '../../../node/api/http-server.ts'
import { nodePaths } from '../../../node/paths.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { AuditLog } from '../../../node/audit/audit-log.ts'
import { headerAttributesOf } from '../../../node/dicomweb/header-attributes.ts'
import { generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { fetchAs, tokenFor } from '../../helpers/api-caller.ts'
import { dcmtk } from '../../helpers/dcmtk.ts'
import { listenOnLoopback } from '../../helpers/listen.ts'

// QIDO-RS includefield beyond the index (read from the stored header, cached) and fuzzy name matching.

const require = createRequire(import.meta.url)
;(globalThis as { XMLHttpRequest?: unknown }).XMLHttpRequest ??= require('xhr2')
type Result = Record<string, { vr: string, Value?: unknown[] }>
interface DicomwebClient {
  searchForStudies (options?: { queryParams?: Record<string, string> }): Promise<Result[]>
  searchForSeries (options: { studyInstanceUID: string, queryParams?: Record<string, string> }): Promise<Result[]>
  searchForInstances (options: { studyInstanceUID: string, seriesInstanceUID?: string, queryParams?: Record<string, string> }): Promise<Result[]>
}
const { api } = require('dicomweb-client') as { api: { DICOMwebClient: new (options: { url: string, headers?: Record<string, string> }) => DicomwebClient } }

const PATIENT_AGE = '00101010'
const PATIENT_WEIGHT = '00101030'
const PROTOCOL_NAME = '00181030'
const IMAGE_TYPE = '00080008'
const PATIENT_NAME = '00100010'
const STUDY_UID = '0020000D'

const value = (attrs: Result, tag: string): unknown => attrs[tag]?.Value?.[0]

/** Adds attributes the index does not keep to every file of a study, as a modality would have written them. */
async function addAttributes (study: GeneratedStudy, age: string): Promise<void> {
  for (const instance of study.instances) {
    const res = await dcmtk('dcmodify', ['-nb', '-i', `(0010,1010)=${age}`, '-i', '(0018,1030)=Thorax routine', instance.path])
    expect(res.code, res.stderr).toBe(0)
  }
}

async function importStudy (store: StudyStore, study: GeneratedStudy): Promise<void> {
  const session = store.beginImport()
  for (const instance of study.instances) await session.add(instance.path)
  await session.commit()
}

describe('QIDO-RS beyond the index', () => {
  let dir: string
  let store: StudyStore
  let audit: AuditLog
  let app: FastifyInstance
  let url: string
  let client: DicomwebClient
  let call: (url: string, init?: RequestInit) => Promise<Response>
  let muller: GeneratedStudy
  let jansen: GeneratedStudy

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'beeldnet-qido-include-'))
    muller = await generateStudy(join(dir, 'muller'), {
      seed: 91,
      patient: { name: 'Müller^Hans', id: '9100001' },
      series: [{ modality: 'CT', instances: 2, rows: 16, columns: 16 }],
      reports: { sr: true }
    })
    await addAttributes(muller, '045Y')
    jansen = await generateStudy(join(dir, 'jansen'), {
      seed: 92,
      patient: { name: 'Jansen^Piet', id: '9100002' },
      series: [{ modality: 'MR', instances: 1, rows: 16, columns: 16 }]
    })
    store = new StudyStore({ dir: join(dir, 'node') })
    await store.start()
    audit = new AuditLog(join(dir, 'node', 'audit', 'trail.jsonl'))
    await audit.start()
    app = createHttpServer({ store, logger: pino({ level: 'silent' }), audit, users: new UserStore(nodePaths(join(dir, 'node')).users) }, { nodeName: 'test', peerId: 'test' })
    url = await listenOnLoopback(app)
    const token = await tokenFor({ dataDir: join(dir, 'node') })
    client = new api.DICOMwebClient({ url: `${url}/dicomweb`, headers: { authorization: `Bearer ${token}` } })
    call = fetchAs({ dataDir: join(dir, 'node') })
    await importStudy(store, muller)
    await importStudy(store, jansen)
  })

  afterAll(async () => {
    await app.close()
    await audit.stop()
    await store.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('returns an attribute that is not indexed, at study, series and instance level, from the stored file', async () => {
    const studies = await client.searchForStudies({ queryParams: { PatientID: '9100001', includefield: 'PatientAge' } })
    expect(studies).toHaveLength(1)
    expect(value(studies[0]!, PATIENT_AGE)).toBe('045Y')

    const series = await client.searchForSeries({ studyInstanceUID: muller.studyInstanceUID, queryParams: { Modality: 'CT', includefield: 'ProtocolName,00101010' } })
    expect(series).toHaveLength(1)
    expect(value(series[0]!, PROTOCOL_NAME)).toBe('Thorax routine')
    expect(value(series[0]!, PATIENT_AGE)).toBe('045Y')

    const instances = await client.searchForInstances({ studyInstanceUID: muller.studyInstanceUID, queryParams: { includefield: 'ImageType' } })
    const images = instances.filter((i) => i[IMAGE_TYPE] !== undefined)
    expect(images).toHaveLength(2)
    expect(images[0]![IMAGE_TYPE]!.Value).toEqual(['ORIGINAL', 'PRIMARY', 'AXIAL'])

    // Raw HTTP: an empty matching key only asks for the attribute back; no warning for what is returned.
    const raw = await call(`${url}/dicomweb/studies?PatientID=9100001&PatientAge=`)
    expect(raw.status).toBe(200)
    expect(raw.headers.get('warning')).toBeNull()
    expect(value((await raw.json() as Result[])[0]!, PATIENT_AGE)).toBe('045Y')
  })

  it('leaves out an attribute the file does not have, without a warning; warns only for one of a deeper level', async () => {
    const res = await call(`${url}/dicomweb/studies?PatientID=9100002&includefield=PatientAge,PatientWeight`)
    expect(res.status).toBe(200)
    expect(res.headers.get('warning')).toBeNull()
    const [study] = await res.json() as Result[]
    expect(study![PATIENT_AGE]).toBeUndefined()
    expect(study![PATIENT_WEIGHT]).toBeUndefined()

    const deeper = await call(`${url}/dicomweb/studies?PatientID=9100001&includefield=ImageType`)
    expect(deeper.headers.get('warning')).toMatch(/^299 beeldnet "not study-level attributes, so not returned: ImageType"$/)
    expect((await deeper.json() as Result[])[0]![IMAGE_TYPE]).toBeUndefined()
  })

  it('returns every attribute of the level with includefield=all, and none of a deeper level', async () => {
    const [study] = await client.searchForStudies({ queryParams: { PatientID: '9100001', includefield: 'all' } })
    expect(value(study!, PATIENT_AGE)).toBe('045Y')
    expect(study![PROTOCOL_NAME]).toBeUndefined()
    expect(study![IMAGE_TYPE]).toBeUndefined()
    const [series] = await client.searchForSeries({ studyInstanceUID: muller.studyInstanceUID, queryParams: { Modality: 'CT', includefield: 'all' } })
    expect(value(series!, PROTOCOL_NAME)).toBe('Thorax routine')
    expect(series![IMAGE_TYPE]).toBeUndefined()
    const instances = await client.searchForInstances({ studyInstanceUID: muller.studyInstanceUID, queryParams: { includefield: 'all' } })
    const image = instances.find((i) => i[IMAGE_TYPE] !== undefined)!
    expect(value(image, PATIENT_AGE)).toBe('045Y')
    expect(value(image, PROTOCOL_NAME)).toBe('Thorax routine')
    // The header only: never the pixel data.
    expect(image['7FE00010']).toBeUndefined()
  })

  it('matches person names case- and accent-insensitively with fuzzymatching=true, and says nothing about it', async () => {
    const uids = async (query: string): Promise<unknown[]> => {
      const res = await call(`${url}/dicomweb/studies?${query}`)
      expect(res.headers.get('warning')).toBeNull()
      return (await res.json() as Result[]).map((s) => value(s, STUDY_UID))
    }
    expect(await uids('PatientName=muller&fuzzymatching=true')).toEqual([muller.studyInstanceUID])
    expect(await uids(`PatientName=${encodeURIComponent('MÜLLER^hans')}&fuzzymatching=true`)).toEqual([muller.studyInstanceUID])
    expect(await uids('PatientName=hans&fuzzymatching=true')).toEqual([muller.studyInstanceUID])
    expect(await uids('PatientName=jansen*&fuzzymatching=true')).toEqual([jansen.studyInstanceUID])
    expect(await uids('PatientName=JANS?N^PIET&fuzzymatching=true')).toEqual([jansen.studyInstanceUID])
    // Without it, accents count and a name is matched whole.
    expect(await uids('PatientName=muller^hans')).toEqual([])
    expect(await uids('PatientName=hans')).toEqual([])
    const [found] = await client.searchForStudies({ queryParams: { PatientName: 'muller', fuzzymatching: 'true' } })
    expect(value(found!, PATIENT_NAME)).toEqual({ Alphabetic: 'Müller^Hans' })
  })

  it('never serves the cached attributes of a study deleted since, nor of the one stored under its UIDs after', async () => {
    const before = await client.searchForStudies({ queryParams: { PatientID: '9100001', includefield: 'PatientAge' } })
    expect(value(before[0]!, PATIENT_AGE)).toBe('045Y')
    const cache = headerAttributesOf(store)
    const entries = await store.index.getEntries(muller.studyInstanceUID)
    expect(cache.usage.entries).toBeGreaterThan(0)
    const cachedImage = entries!.instances.find((i) => !i.isReport)!
    expect(await cache.of(cachedImage)).toBeDefined()

    await store.deleteStudy(muller.studyInstanceUID)
    expect(await cache.of(cachedImage)).toBeUndefined()
    expect(await client.searchForStudies({ queryParams: { PatientID: '9100001', includefield: 'PatientAge' } })).toEqual([])

    // The same study comes back with other header bytes: the new value, not the cached one.
    await addAttributes(muller, '046Y')
    await importStudy(store, muller)
    const after = await client.searchForStudies({ queryParams: { PatientID: '9100001', includefield: 'PatientAge' } })
    expect(value(after[0]!, PATIENT_AGE)).toBe('046Y')
    const [series] = await client.searchForSeries({ studyInstanceUID: muller.studyInstanceUID, queryParams: { Modality: 'CT', includefield: 'PatientAge' } })
    expect(value(series!, PATIENT_AGE)).toBe('046Y')
  })
})
