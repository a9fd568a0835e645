import { describe, expect, it } from 'vitest'
import { isUploadName, planUpload, type DicomdirContents } from '../../../node/dicom/media-plan.ts'

/* The plan of an uploaded folder: what `node import` would take when walking the same folder on disk. */

const ids = (...paths: string[]): DicomdirContents => ({ ids: paths.map((p) => p.split('\\')), refused: [] })

describe('planUpload', () => {
  it('takes what a DICOMDIR lists, found whatever case or ;1 the medium shows, and names what it lists that is not there', () => {
    const names = ['dvd/dicomdir', 'dvd/dicom/img2;1', 'dvd/dicom/img1;1', 'dvd/autorun.inf', 'dvd/viewer/viewer.exe', 'dvd/dicom/stray']
    const plan = planUpload(names, new Map([['dvd/dicomdir', ids('DICOM\\IMG1', 'DICOM\\IMG2', 'DICOM\\IMG3')]]))
    expect(plan.files).toEqual(['dvd/dicom/img1;1', 'dvd/dicom/img2;1'])
    expect(plan.missing).toEqual(['dvd/DICOM/IMG3'])
    expect(plan.warnings.join('\n')).toMatch(/dvd\/dicomdir lists 1 file\(s\) that are not on the medium/)
    expect(plan.warnings.join('\n')).toMatch(/dvd: 1 file\(s\) on the medium are not in its DICOMDIR.*dvd\/dicom\/stray/)
  })

  it('lets the first DICOMDIR on the way down stand for its folder, and walks folders without one', () => {
    const names = ['all/DICOMDIR', 'all/A/1', 'all/inner/DICOMDIR', 'all/inner/2', 'loose/b.dcm', 'loose/a.dcm']
    const plan = planUpload(names, new Map([['all/DICOMDIR', ids('A\\1', 'INNER\\2')], ['all/inner/DICOMDIR', ids('3')]]))
    expect(plan.files).toEqual(['all/A/1', 'all/inner/2', 'loose/a.dcm', 'loose/b.dcm'])
    expect(plan.missing).toEqual([])
  })

  it('imports the folder\'s files when its DICOMDIR cannot be read, and never a path that climbs out', () => {
    const plan = planUpload(['m/DICOMDIR', 'm/x'], new Map([['m/DICOMDIR', { error: 'BEELDNET_ERR_DICOM_TRUNCATED' }]]))
    expect(plan.files).toEqual(['m/DICOMDIR', 'm/x'])
    expect(plan.warnings).toEqual(['m/DICOMDIR could not be read (BEELDNET_ERR_DICOM_TRUNCATED); importing the folder\'s files instead'])
    const climbing = planUpload(['m/DICOMDIR'], new Map([['m/DICOMDIR', { ids: [], refused: ['..\\etc\\passwd'] }]]))
    expect(climbing).toMatchObject({ files: [], missing: ['m/../etc/passwd'] })
    for (const bad of ['../x', '/etc/passwd', 'a//b', 'a/./b', 'a\\b', '']) expect(isUploadName(bad), bad).toBe(false)
    expect(isUploadName('dvd/DICOM/IMG1;1')).toBe(true)
  })
})
