import { describe, expect, it } from 'vitest'
import { readDirectoryRecords } from '../../../node/dicom/dicomdir.ts'
import { describeDicomdir, mergePatients } from '../../../node/dicom/media-overview.ts'
import { writeMediaLayout } from '../../../simulations/generator/index.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

/* What a DICOMDIR says is on a medium: patients (with a BSN when it is their id), their studies, and each file's study. */

const tempDir = useTempDirs()

describe('describeDicomdir', () => {
  it('reads patients in their character set, a BSN given as the patient id, studies with their series and files', async () => {
    const dvd = await tempDir('dvd')
    const { dicomdirPath, studies } = await writeMediaLayout(dvd, [
      { seed: 1, patient: { name: 'Çelik^Ayşe', id: '999990019', issuer: 'NLMINBIZA', charset: 'utf8' }, description: 'Echo hart', series: [{ modality: 'US', instances: 1, rows: 16, columns: 16 }, { modality: 'US', instances: 2, rows: 16, columns: 16 }] },
      { seed: 2, patient: { name: 'Jansen^Piet', id: '1234567' }, series: [{ modality: 'CR', instances: 1, rows: 16, columns: 16 }] }
    ])
    const listing = describeDicomdir(readDirectoryRecords(dicomdirPath))
    expect(listing.patients).toMatchObject([
      { name: 'Çelik^Ayşe', id: '999990019', issuer: 'NLMINBIZA', bsn: '999990019', studies: [{ studyInstanceUID: studies[0]!.studyInstanceUID, description: 'Echo hart', modalities: ['US'], series: 2, instances: 3 }] },
      { name: 'Jansen^Piet', id: '1234567', studies: [{ studyInstanceUID: studies[1]!.studyInstanceUID, modalities: ['CR'], series: 1, instances: 1 }] }
    ])
    expect(listing.patients[1]!.bsn).toBeUndefined()
    // File IDs as a medium may show them: upper case.
    expect(listing.studyOfFile.get('DICOM/PAT00002/STU00001/SER00001/IMG00001')).toBe(studies[1]!.studyInstanceUID)
    expect(listing.studyOfFile.size).toBe(4)

    // Two DICOMDIRs listing the same patient and study are one patient, one study.
    const merged = mergePatients([listing.patients, listing.patients.slice(1)])
    expect(merged.map((p) => p.studies.map((s) => s.instances))).toEqual([[3], [2]])
  })
})
