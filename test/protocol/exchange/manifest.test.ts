import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { acceptAnswer, declineAnswer, parseAnswer } from '../../../protocol/exchange/answer.ts'
import { MAX_INSTANCES, newTransferId } from '../../../protocol/exchange/common.ts'
import {
  manifestHash, reportsFirst, signManifest, summariseManifest, verifyManifest, type Manifest, type ManifestInstance
} from '../../../protocol/exchange/manifest.ts'
import { signReceipt, verifyReceipt, type Receipt } from '../../../protocol/exchange/receipt.ts'
import { makeIdentity } from '../../node/transfers/helpers.ts'

const sha = (): string => randomBytes(32).toString('hex')

function instance (n: number, report = false): ManifestInstance {
  return { sopClassUID: '1.2.840.10008.5.1.4.1.1.2', sopInstanceUID: `1.2.3.4.${n}`, seriesInstanceUID: '1.2.3.5', size: 1000 + n, sha256: sha(), report }
}

function manifestFor (senderPeerId: string, instances: ManifestInstance[] = [instance(1), instance(2, true), instance(3)]): Manifest {
  return {
    type: 'beeldnet/push-manifest',
    transferId: newTransferId(),
    created: '2026-10-20T10:00:00.000Z',
    sender: { ura: '11111111', peerId: senderPeerId },
    destination: { ura: '22222222', department: 'RAD' },
    note: 'graag beoordelen',
    reason: 'verwijzing',
    study: {
      studyInstanceUID: '1.2.3',
      patient: { name: 'de Vries^Anna', id: 'P1', issuer: 'HOSP-A', bsn: '123456782', birthDate: '19711203', sex: 'F' },
      date: '20261020',
      time: '101500',
      accessionNumber: 'ACC1',
      description: 'CT thorax',
      referringPhysician: '',
      studyId: '1',
      modalities: ['CT', 'SR']
    },
    instances
  }
}

describe('push manifest', () => {
  it('round-trips: signed by the sender, verified against its peer id, same hash on both ends', async () => {
    const sender = await makeIdentity()
    const signed = await signManifest(manifestFor(sender.peerId), sender.privateKey)
    const wire = JSON.parse(JSON.stringify(signed)) as unknown
    const verified = verifyManifest(wire, { peerId: sender.peerId })
    expect(verified.manifest).toEqual(signed.signed)
    expect(verified.hash).toBe(manifestHash(signed))
    expect(summariseManifest(verified.manifest)).toEqual({ instances: 3, reports: 1, series: 1, bytes: 3006 })
  })

  it('refuses a tampered manifest, one signed by another key, and one naming another sender, each with its code', async () => {
    const sender = await makeIdentity()
    const other = await makeIdentity()
    const signed = await signManifest(manifestFor(sender.peerId), sender.privateKey)

    const tampered = structuredClone(signed)
    tampered.signed.study.patient.id = 'P2'
    expect(() => verifyManifest(tampered, { peerId: sender.peerId })).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_MANIFEST_FORGED' }))

    const swapped = structuredClone(signed)
    swapped.signed.instances[0]!.sha256 = sha()
    expect(() => verifyManifest(swapped, { peerId: sender.peerId })).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_MANIFEST_FORGED' }))

    const forged = await signManifest(manifestFor(sender.peerId), other.privateKey)
    expect(() => verifyManifest(forged, { peerId: sender.peerId })).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_MANIFEST_FORGED' }))

    // A peer passing on a manifest another node signed: the connection's peer is not the sender.
    expect(() => verifyManifest(signed, { peerId: other.peerId })).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_SIGNER_MISMATCH' }))
  })

  it('is strict and bounded: unknown fields, duplicates, bad hashes and too many instances are schema errors', async () => {
    const sender = await makeIdentity()
    const good = await signManifest(manifestFor(sender.peerId), sender.privateKey)
    const check = (mutate: (m: { signed: Record<string, unknown> }) => void): void => {
      const copy = structuredClone(good) as unknown as { signed: Record<string, unknown> }
      mutate(copy)
      expect(() => verifyManifest(copy, { peerId: sender.peerId })).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_SCHEMA' }))
    }
    check((m) => { m.signed.extra = 1 })
    check((m) => { (m.signed.study as Record<string, unknown>).photo = 'x' })
    check((m) => { (m.signed.instances as ManifestInstance[])[1]!.sopInstanceUID = '1.2.3.4.1' })
    check((m) => { (m.signed.instances as ManifestInstance[])[1]!.sha256 = (m.signed.instances as ManifestInstance[])[0]!.sha256 })
    check((m) => { (m.signed.instances as ManifestInstance[])[0]!.sha256 = 'ABC' })
    check((m) => { (m.signed.instances as ManifestInstance[])[0]!.size = -1 })
    check((m) => { m.signed.note = 'x'.repeat(4001) })
    check((m) => { m.signed.instances = [] })
    await expect(signManifest({ ...manifestFor(sender.peerId), transferId: 'short' }, sender.privateKey)).rejects.toMatchObject({ code: 'BEELDNET_ERR_SCHEMA' })
  })

  it('takes a study of MAX_INSTANCES instances and refuses one more', async () => {
    const sender = await makeIdentity()
    const many = Array.from({ length: MAX_INSTANCES }, (_, n) => ({ ...instance(n), sha256: n.toString(16).padStart(64, '0') }))
    const signed = await signManifest(manifestFor(sender.peerId, many), sender.privateKey)
    expect(verifyManifest(signed, { peerId: sender.peerId }).manifest.instances).toHaveLength(MAX_INSTANCES)
    signed.signed.instances.push({ ...instance(MAX_INSTANCES), sha256: 'f'.repeat(64) })
    expect(() => verifyManifest(signed, { peerId: sender.peerId })).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_SCHEMA' }))
  })

  it('orders reports first, keeping the order within each group', () => {
    const list = [instance(1), instance(2, true), instance(3), instance(4, true)]
    expect(reportsFirst(list).map((i) => i.sopInstanceUID)).toEqual(['1.2.3.4.2', '1.2.3.4.4', '1.2.3.4.1', '1.2.3.4.3'])
  })
})

describe('answer', () => {
  it('parses accept and decline, and refuses an unknown reason', () => {
    const accept = acceptAnswer(newTransferId(), sha(), [sha()])
    expect(parseAnswer(JSON.parse(JSON.stringify(accept)))).toEqual(accept)
    const decline = declineAnswer(newTransferId(), sha(), 'unknown-department', 'wij hebben geen afdeling KNO')
    expect(parseAnswer(decline)).toEqual(decline)
    expect(() => parseAnswer({ ...decline, reason: 'because' })).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_SCHEMA' }))
    expect(() => parseAnswer({ ...accept, have: ['nope'] })).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_SCHEMA' }))
  })
})

describe('receipt', () => {
  async function setup (): Promise<{ manifest: Manifest, hash: string, receipt: Receipt, receiver: Awaited<ReturnType<typeof makeIdentity>> }> {
    const sender = await makeIdentity()
    const receiver = await makeIdentity()
    const signed = await signManifest(manifestFor(sender.peerId), sender.privateKey)
    const hash = manifestHash(signed)
    const receipt: Receipt = {
      type: 'beeldnet/push-receipt',
      transferId: signed.signed.transferId,
      manifestHash: hash,
      receiver: { ura: '22222222', peerId: receiver.peerId },
      studyInstanceUID: '1.2.3',
      instances: signed.signed.instances.map((i) => i.sha256),
      committed: '2026-10-20T10:05:00.000Z'
    }
    return { manifest: signed.signed, hash, receipt, receiver }
  }

  it('verifies against the receiving peer and the transfer it closes', async () => {
    const { manifest, hash, receipt, receiver } = await setup()
    const signed = await signReceipt(receipt, receiver.privateKey)
    expect(verifyReceipt(JSON.parse(JSON.stringify(signed)), { peerId: receiver.peerId, manifest, manifestHash: hash }).receipt).toEqual(receipt)
  })

  it('refuses forged, mismatched and incomplete receipts with their codes', async () => {
    const { manifest, hash, receipt, receiver } = await setup()
    const stranger = await makeIdentity()
    const check = { peerId: receiver.peerId, manifest, manifestHash: hash }
    const code = (value: unknown, c = check): string | undefined => {
      try {
        verifyReceipt(value, c)
        return undefined
      } catch (err) {
        return (err as { code?: string }).code
      }
    }
    const signed = await signReceipt(receipt, receiver.privateKey)
    const altered = structuredClone(signed)
    altered.signed.committed = '2026-10-21T10:05:00.000Z'
    expect(code(altered)).toBe('BEELDNET_ERR_RECEIPT_FORGED')
    expect(code(await signReceipt(receipt, stranger.privateKey))).toBe('BEELDNET_ERR_RECEIPT_FORGED')
    expect(code(signed, { ...check, peerId: stranger.peerId })).toBe('BEELDNET_ERR_SIGNER_MISMATCH')
    expect(code(await signReceipt({ ...receipt, transferId: newTransferId() }, receiver.privateKey))).toBe('BEELDNET_ERR_RECEIPT_MISMATCH')
    expect(code(await signReceipt({ ...receipt, manifestHash: sha() }, receiver.privateKey))).toBe('BEELDNET_ERR_RECEIPT_MISMATCH')
    expect(code(await signReceipt({ ...receipt, studyInstanceUID: '1.2.4' }, receiver.privateKey))).toBe('BEELDNET_ERR_RECEIPT_MISMATCH')
    expect(code(await signReceipt({ ...receipt, receiver: { ura: '33333333', peerId: receiver.peerId } }, receiver.privateKey))).toBe('BEELDNET_ERR_RECEIPT_MISMATCH')
    expect(code(await signReceipt({ ...receipt, instances: [...receipt.instances, sha()] }, receiver.privateKey))).toBe('BEELDNET_ERR_RECEIPT_MISMATCH')
    expect(code(await signReceipt({ ...receipt, instances: receipt.instances.slice(1) }, receiver.privateKey))).toBe('BEELDNET_ERR_RECEIPT_INCOMPLETE')
    expect(code({ ...signed, extra: true })).toBe('BEELDNET_ERR_SCHEMA')
  })
})
