import { describe, expect, it } from 'vitest'
import { middleImageOf } from '../../../node/imaging/thumbnail.ts'
import type { InstanceRecord } from '../../../node/store/records.ts'

/*
 * The one rule for the image a series' thumbnail shows, used by the web app's thumbnails and by
 * DICOMweb's series and study thumbnails: the middle image by InstanceNumber, not in stored order.
 */

function image (sopInstanceUID: string, number: number | undefined, extra: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    sopInstanceUID, seriesInstanceUID: '1.2.3', studyInstanceUID: '1.2', sopClassUID: '1.2.840.10008.5.1.4.1.1.2',
    sha256: sopInstanceUID, size: 1, transferSyntaxUID: '1.2.840.10008.1.2.1', part10: true,
    rows: 8, columns: 8, frames: 1, isReport: false, ...(number === undefined ? {} : { number }), ...extra
  } as InstanceRecord
}

describe('the middle image of a series', () => {
  it('is the middle by InstanceNumber, whatever the stored order (the order of UIDs, say)', () => {
    // stored in UID order 1.10, 1.11, 1.9: by number 9, 10, 11 the middle is 1.10, by stored order 1.11
    const stored = [image('1.10', 10), image('1.11', 11), image('1.9', 9)]
    expect(middleImageOf(stored)?.sopInstanceUID).toBe('1.10')
  })

  it('puts unnumbered images after the numbered ones in stored order, and skips reports and images without a size', () => {
    const stored = [image('1.1', undefined), image('1.2', 2), image('1.sr', 1, { isReport: true }), image('1.3', 3), image('1.0', 1, { rows: 0 }), image('1.4', undefined)]
    // images: 1.2 (2), 1.3 (3), then 1.1, 1.4 unnumbered: the middle of four is the third
    expect(middleImageOf(stored)?.sopInstanceUID).toBe('1.1')
    expect(middleImageOf([image('1.sr', 1, { isReport: true })])).toBeUndefined()
  })
})
