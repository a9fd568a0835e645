import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { generateStudy } from '../../../simulations/generator/index.ts'
import { networkFetch, useLocalNetwork } from '../../helpers/local-network.ts'
import { nextEvent } from '../transfers/helpers.ts'
import { samplePdf } from '../../helpers/sample-pdf.ts'

/*
 * A study goes to another hospital before its report is written; the radiologist attaches the PDF
 * later and sends again: only the report travels, and it joins the study the receiver already has.
 */

describe('a report that follows its study', () => {
  const suite = useLocalNetwork('late-report', 2)

  it('joins the study at the receiver, sent alone', async () => {
    const [a, b] = suite.nodes as [NonNullable<typeof suite.nodes[0]>, NonNullable<typeof suite.nodes[0]>]
    const study = await generateStudy(join(suite.dir, 'study'), { seed: 131, series: [{ modality: 'MR', instances: 4, rows: 32, columns: 32 }] })
    const session = a.node.store.beginImport()
    for (const i of study.instances) await session.add(i.path)
    await session.commit()
    const send = async (): Promise<string> => {
      const res = await networkFetch(`${a.url}/api/transfers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ studyInstanceUID: study.studyInstanceUID, to: { ura: b.ura, department: 'RAD' }, reason: 'verwijzing' }) })
      expect(res.status).toBe(201)
      return (await res.json() as { transferId: string }).transferId
    }

    const first = await send()
    await nextEvent(a.node.exchange, 'study-complete', (e) => e.transferId === first)
    expect((await b.node.store.getStudy(study.studyInstanceUID)).study.numberOfReports).toBe(0)

    const pdf = samplePdf('Verslag volgt: geen afwijkingen')
    const attached = await networkFetch(`${a.url}/api/studies/${study.studyInstanceUID}/reports?title=Verslag`, { method: 'POST', headers: { 'content-type': 'application/pdf' }, body: pdf })
    expect(attached.status).toBe(201)
    const report = await attached.json() as { sopInstanceUID: string }

    // Which stored files the sender reads for the second push: only the report's.
    const opened: string[] = []
    const open = a.node.store.openInstance.bind(a.node.store)
    a.node.store.openInstance = (record, options) => { opened.push(record.sha256); return open(record, options) }
    try {
      const arrived = nextEvent(b.node.exchange, 'report-arrived', (e) => e.studyInstanceUID === study.studyInstanceUID)
      const second = await send()
      await nextEvent(a.node.exchange, 'study-complete', (e) => e.transferId === second)
      await arrived
    } finally {
      a.node.store.openInstance = open
    }
    const reportSha = (await a.node.store.getStudy(study.studyInstanceUID)).instances.find((i) => i.sopInstanceUID === report.sopInstanceUID)!.sha256
    expect(opened).toEqual([reportSha])

    const atB = await b.node.store.getStudy(study.studyInstanceUID)
    expect(atB.study.numberOfInstances).toBe(5)
    expect(atB.study.numberOfReports).toBe(1)
    const served = Buffer.from(await (await networkFetch(`${b.url}/api/studies/${study.studyInstanceUID}/reports/${report.sopInstanceUID}`)).arrayBuffer())
    expect(served.equals(pdf)).toBe(true)
  })
})
