import { describe, expect, it } from 'vitest'
import { verifyManifest } from '../../../protocol/exchange/manifest.ts'
import { buildManifest, buildSignedManifest } from '../../../node/transfers/manifest.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { makeIdentity, openStore, RECEIVER_URA, SENDER_URA, smallStudy, storeWithStudy, useCleanup } from './helpers.ts'

const tempDir = useTempDirs()
const onStop = useCleanup()

describe('building the offer manifest from the store', () => {
  it('lists every stored instance with its size and hash, reports flagged and first, then images by series and number', async () => {
    const store = await openStore(await tempDir(), onStop)
    const study = await storeWithStudy(store, await tempDir('src'), smallStudy(11))
    const identity = await makeIdentity()
    const init = {
      sender: { ura: SENDER_URA, peerId: identity.peerId },
      destination: { ura: RECEIVER_URA, department: 'RAD' },
      reason: 'second opinion',
      created: new Date('2026-10-20T10:00:00Z'),
      transferId: 'fixed-transfer-id-00001'
    }
    const manifest = await buildManifest({ store }, study.studyInstanceUID, init)
    expect(manifest).toMatchObject({
      transferId: 'fixed-transfer-id-00001',
      created: '2026-10-20T10:00:00.000Z',
      note: '',
      study: {
        studyInstanceUID: study.studyInstanceUID,
        patient: { name: 'de Vries^Anna', id: 'P11', issuer: 'HOSP-A', bsn: '123456782', birthDate: '19711203', sex: 'F' },
        accessionNumber: 'ACC11',
        date: '20261020',
        modalities: ['CT', 'DOC', 'SR']
      }
    })
    const stored = (await store.getStudy(study.studyInstanceUID)).instances
    expect(manifest.instances).toHaveLength(7)
    for (const entry of manifest.instances) {
      const record = stored.find((r) => r.sopInstanceUID === entry.sopInstanceUID)!
      expect(entry).toEqual({
        sopClassUID: record.sopClassUID,
        sopInstanceUID: record.sopInstanceUID,
        seriesInstanceUID: record.seriesInstanceUID,
        size: record.size,
        sha256: record.sha256,
        report: record.isReport
      })
    }
    expect(manifest.instances.map((i) => i.report)).toEqual([true, true, false, false, false, false, false])
    const images = manifest.instances.filter((i) => !i.report).map((i) => stored.find((r) => r.sopInstanceUID === i.sopInstanceUID)!)
    const entries = await store.getStudy(study.studyInstanceUID)
    const seriesNumber = new Map(entries.series.map((x) => [x.seriesInstanceUID, x.number ?? 0]))
    const expected = [...images].sort((a, b) => (seriesNumber.get(a.seriesInstanceUID)! - seriesNumber.get(b.seriesInstanceUID)!) || (a.number ?? 0) - (b.number ?? 0))
    expect(new Set(seriesNumber.values()).size).toBeGreaterThan(2)
    expect(images).toEqual(expected)

    const signed = await buildSignedManifest({ store, signer: identity.privateKey }, study.studyInstanceUID, init)
    expect(verifyManifest(signed, { peerId: identity.peerId }).manifest).toEqual(manifest)
  })

  it('refuses a study the store does not have', async () => {
    const store = await openStore(await tempDir(), onStop)
    await expect(buildManifest({ store }, '1.2.3.4', {
      sender: { ura: SENDER_URA, peerId: 'x' }, destination: { ura: RECEIVER_URA, department: 'RAD' }, reason: 'r'
    })).rejects.toMatchObject({ code: 'BEELDNET_ERR_STUDY_NOT_FOUND' })
  })
})
