import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readHeader, type Dataset } from '../../../node/dicom/dataset-reader.ts'
import { Tags } from '../../../node/dicom/tags.ts'
import { PacsExporter } from '../../../node/reconcile/pacs-export.ts'
import { MappingTableLookup } from '../../../node/reconcile/patient-lookup.ts'
import { StudyStore } from '../../../node/store/study-store.ts'
import { createPrng, generateBsn, generateStudy, type GeneratedStudy } from '../../../simulations/generator/index.ts'
import { dcmtk, startStorescp, type Storescp } from '../../helpers/dcmtk.ts'

/*
 * The export to the local PACS of a compressed study, when the PACS accepts only uncompressed
 * syntaxes (storescp's default): each instance is decoded as it streams, with the reconciled header
 * (the local patient id and accession), and its pixel data is what dcmdjpls decodes.
 */

const text = (ds: Dataset | undefined, t: number): string | undefined => ds?.get(t)?.value?.toString('latin1').replace(/[\0 ]+$/, '')

describe('exporting a compressed study to a PACS that takes only uncompressed', () => {
  let work: string
  let store: StudyStore
  let pacs: Storescp
  let study: GeneratedStudy
  const decoded = new Map<string, Buffer>()

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'beeldnet-export-decoded-'))
    study = await generateStudy(join(work, 'study'), { seed: 1416, patient: { id: 'AMC-7001', issuer: 'AMC', bsn: generateBsn(createPrng(1416)) }, accession: 'AMC88', series: [{ modality: 'CT', instances: 2, rows: 32, columns: 32, frames: 3 }] })
    store = new StudyStore({ dir: join(work, 'node') })
    await store.start()
    const session = store.beginImport()
    for (const [n, instance] of study.instances.entries()) {
      const compressed = join(work, `${n}.jls.dcm`)
      const reference = join(work, `${n}.ref.dcm`)
      expect((await dcmtk('dcmcjpls', [instance.path, compressed])).code).toBe(0)
      expect((await dcmtk('dcmdjpls', [compressed, reference])).code).toBe(0)
      const header = readHeader(reference)
      decoded.set(instance.sopInstanceUID, (await readFile(reference)).subarray(header.pixelDataOffset!, header.pixelDataOffset! + header.pixelDataLength!))
      await session.add(compressed)
    }
    await session.commit()
    await writeFile(join(work, 'patients.csv'), `bsn,patientId,issuer,accessionNumber\n${study.patient.bsn},ISA-0077,ISALA,ISA901\n`)
    await mkdir(join(work, 'pacs'))
    pacs = await startStorescp('PLAIN_PACS', join(work, 'pacs'))
  })

  afterAll(async () => {
    await pacs?.stop()
    await store?.stop()
    await rm(work, { recursive: true, force: true })
  })

  it('decodes each instance as it streams, under the reconciled header', async () => {
    const exporter = new PacsExporter({ store, lookup: new MappingTableLookup(join(work, 'patients.csv')), logger: pino({ level: 'silent' }) },
      { aeTitle: 'BEELDNET', destinations: [{ aeTitle: 'PLAIN_PACS', host: '127.0.0.1', port: pacs.port }] })
    const outcome = await exporter.export({ studyInstanceUID: study.studyInstanceUID, destination: 'PLAIN_PACS', source: 'Amsterdam UMC' })
    expect(outcome).toMatchObject({ status: 'sent', completed: study.instances.length, failed: 0 })
    const files = await pacs.settled(study.instances.length)
    expect(files).toHaveLength(study.instances.length)
    for (const name of files) {
      const path = join(work, 'pacs', name)
      const header = readHeader(path)
      expect(header.transferSyntaxUID).toBe('1.2.840.10008.1.2.1')
      expect(text(header.dataset, Tags.PatientID)).toBe('ISA-0077')
      expect(text(header.dataset, Tags.AccessionNumber)).toBe('ISA901')
      const sop = text(header.dataset, Tags.SOPInstanceUID)!
      const pixels = (await readFile(path)).subarray(header.pixelDataOffset!, header.pixelDataOffset! + header.pixelDataLength!)
      expect(pixels.equals(decoded.get(sop)!)).toBe(true)
    }
  })
})
