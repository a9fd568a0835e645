import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { InboxEntry } from '../../protocol/api/inbox.ts'
import type { LocalNetworkNode } from '../../simulations/scenarios/local-network.ts'
import { networkFetch, useLocalNetwork } from '../helpers/local-network.ts'
import { VIEWER_PATIENT, cineInstance, compressedInstances, deliverByPush, importInto, largeSeries, measurementPhantom, pushStudy } from '../helpers/viewer-samples.ts'

/*
 * The viewer fixtures reach a node the way the viewer's browser test needs them: imported at A,
 * pushed to B over the real exchange, complete in B's inbox as a study received from A.
 */

describe('the viewer fixtures, pushed between two nodes', () => {
  const suite = useLocalNetwork('viewer-samples-push', 2)

  it('arrive complete in the receiver\'s inbox, from the sender\'s hospital, with the note', async () => {
    const [a, b] = suite.nodes as [LocalNetworkNode, LocalNetworkNode]
    const phantom = await measurementPhantom(join(suite.dir, 'fixtures'))
    const [delivered] = await deliverByPush(a, b, phantom.files, { note: 'meetfantoom voor de viewer' })
    expect(delivered).toMatchObject({ studyInstanceUID: phantom.studyInstanceUID })

    const atB = await b.node.store.getStudy(phantom.studyInstanceUID)
    expect(atB.study.numberOfInstances).toBe(phantom.slices)
    expect(atB.study.patient).toMatchObject({ id: VIEWER_PATIENT.id, bsn: VIEWER_PATIENT.bsn })
    const { transfers } = await (await networkFetch(`${b.url}/api/inbox`)).json() as { transfers: InboxEntry[] }
    expect(transfers.find((t) => t.transferId === delivered!.transferId)).toMatchObject({
      direction: 'incoming', state: 'complete', studyInstanceUID: phantom.studyInstanceUID, note: 'meetfantoom voor de viewer', institution: { ura: a.ura }
    })

    // A fourth study of the one patient to one hospital in a day needs a confirmation (limit 3): pushStudy gives it.
    const others = [await compressedInstances(join(suite.dir, 'fixtures')), await cineInstance(join(suite.dir, 'fixtures')), await largeSeries(join(suite.dir, 'fixtures'), 2)]
    await importInto(a, others.flatMap((s) => s.files))
    for (const study of others) await pushStudy(a, b, study.studyInstanceUID)
    for (const study of others) expect((await b.node.store.getStudy(study.studyInstanceUID)).study.numberOfInstances).toBe(study.files.length)
  })
})
