import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { generateStudy } from '../../../simulations/generator/index.ts'
import { dcmtk } from '../../helpers/dcmtk.ts'
import { restartWithConfig, useLocalNetwork } from '../../helpers/local-network.ts'
import { nextEvent } from '../transfers/helpers.ts'

/*
 * The PACS at hospital A stores a study to A's node under the AE title of a routing rule; A sends
 * it on to hospital B by itself. The same study stored under the node's own AE title stays put.
 */

describe('routing what the PACS stores to another hospital', () => {
  const suite = useLocalNetwork('routing', 2)

  it('sends a study stored to a routing AE title on to its hospital, and nothing else', async () => {
    const [a, b] = suite.nodes as [NonNullable<typeof suite.nodes[0]>, NonNullable<typeof suite.nodes[0]>]
    const restarted = await restartWithConfig(suite, a, [
      [['dimse', 'enabled'], true],
      [['dimse', 'port'], 0],
      [['dimse', 'acceptCalling'], ['PACS']],
      [['routing', 'rules'], [{ calledAeTitle: 'TO_B', to: { ura: b.ura, department: 'RAD' }, reason: 'verwijzing' }]]
    ])
    const port = String(restarted.dimse!.port)

    const routed = await generateStudy(join(suite.dir, 'routed'), { seed: 111, series: [{ modality: 'CT', instances: 3, rows: 32, columns: 32 }] })
    const kept = await generateStudy(join(suite.dir, 'kept'), { seed: 112, series: [{ modality: 'CT', instances: 2, rows: 32, columns: 32 }] })
    const arrived = nextEvent(b.node.exchange, 'study-complete', (e) => e.studyInstanceUID === routed.studyInstanceUID, 'the routed study complete at B')
    expect((await dcmtk('storescu', ['-aet', 'PACS', '-aec', 'BEELDNET', '127.0.0.1', port, ...kept.instances.map((i) => i.path)])).code).toBe(0)
    expect((await dcmtk('storescu', ['-aet', 'PACS', '-aec', 'TO_B', '127.0.0.1', port, ...routed.instances.map((i) => i.path)])).code).toBe(0)
    await arrived

    const atB = await b.node.store.getStudy(routed.studyInstanceUID)
    expect(atB.study.numberOfInstances).toBe(3)
    const { outgoing } = await restarted.exchange.list()
    expect(outgoing.map((r) => r.studyInstanceUID)).toContain(routed.studyInstanceUID)
    expect(outgoing.map((r) => r.studyInstanceUID)).not.toContain(kept.studyInstanceUID)
    expect((await restarted.store.getStudy(kept.studyInstanceUID)).study.numberOfInstances).toBe(2)
    // A caller the config does not know is still refused, whatever AE title it calls.
    expect((await dcmtk('echoscu', ['-aet', 'STRANGER', '-aec', 'TO_B', '127.0.0.1', port])).code).not.toBe(0)
  })
})
