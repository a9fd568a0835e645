import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { generateStudy } from '../../../simulations/generator/index.ts'
import { networkFetch, restartWithConfig, useLocalNetwork } from '../../helpers/local-network.ts'

/* The push sanity rule: many studies of one patient to one hospital in a day need a person to confirm. */

describe('sending many studies of one patient', () => {
  const suite = useLocalNetwork('bulk-send', 2)

  it('needs confirmation past the limit; other patients and confirmed sends go', async () => {
    const [a, b] = suite.nodes as [NonNullable<typeof suite.nodes[0]>, NonNullable<typeof suite.nodes[0]>]
    await restartWithConfig(suite, a, [[['transfers', 'bulkPatientLimit'], 2]])
    const patient = { id: 'BULK-1', issuer: 'AMC', name: 'Bakker^Jan' }
    const studies = []
    for (const seed of [501, 502, 503]) studies.push(await generateStudy(join(suite.dir, `p${seed}`), { seed, patient, series: [{ modality: 'CR', instances: 1, rows: 16, columns: 16 }] }))
    const other = await generateStudy(join(suite.dir, 'other'), { seed: 504, patient: { id: 'OTHER-1', issuer: 'AMC' }, series: [{ modality: 'CR', instances: 1, rows: 16, columns: 16 }] })
    const session = a.node.store.beginImport()
    for (const s of [...studies, other]) for (const i of s.instances) await session.add(i.path)
    await session.commit()
    const send = async (uid: string, confirmBulk?: boolean): Promise<{ status: number, body: { code?: string, message?: string } }> => {
      const res = await networkFetch(`${a.url}/api/transfers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ studyInstanceUID: uid, to: { ura: b.ura, department: 'RAD' }, reason: 'verwijzing', ...(confirmBulk === undefined ? {} : { confirmBulk }) }) })
      return { status: res.status, body: await res.json() as { code?: string, message?: string } }
    }
    expect((await send(studies[0]!.studyInstanceUID)).status).toBe(201)
    expect((await send(studies[1]!.studyInstanceUID)).status).toBe(201)
    // The same study again is not another study of the patient.
    expect((await send(studies[1]!.studyInstanceUID)).status).toBe(201)
    const third = await send(studies[2]!.studyInstanceUID)
    expect(third).toMatchObject({ status: 409, body: { code: 'BEELDNET_ERR_CONFIRM_BULK', message: expect.stringContaining('study 3 of this patient') } })
    expect((await send(other.studyInstanceUID)).status).toBe(201)
    expect((await send(studies[2]!.studyInstanceUID, true)).status).toBe(201)
  })
})
