import { describe, expect, it } from 'vitest'
import { PullRequest } from '../../../protocol/exchange/pull.ts'
import { QueryRequest } from '../../../protocol/exchange/query.ts'
import { requestSignatureProblem, signRequest } from '../../../protocol/exchange/request-signature.ts'
import { makeIdentity } from '../../node/transfers/helpers.ts'

const requester = { clinician: { name: 'dr. B. de Boer', uzi: '987654321', role: '01.015' }, purpose: 'treatment' as const }

describe('signed queries and pulls', () => {
  it('holds for the node that signed it, at the institution it was meant for, around the time it was signed', async () => {
    const node = await makeIdentity()
    const now = new Date('2026-11-26T10:00:00Z')
    const query = await signRequest({ type: 'beeldnet/query' as const, requester, criteria: { bsn: '111222333', limit: 10 } }, '01000471', node.privateKey, now)
    expect(QueryRequest.parse(query)).toEqual(query)
    expect(requestSignatureProblem(query, { peerId: node.peerId }, '01000471', new Date('2026-11-26T10:05:00Z'))).toBeUndefined()

    const pull = await signRequest({ type: 'beeldnet/pull' as const, requestId: 'r'.repeat(26), studyInstanceUID: '1.2.3', requester, deliverTo: 'RAD' }, '01000471', node.privateKey, now)
    expect(requestSignatureProblem(PullRequest.parse(pull), { peerId: node.peerId }, '01000471', now)).toBeUndefined()
  })

  it('fails for another clinician put in, another sender, another audience, or a stale request', async () => {
    const node = await makeIdentity()
    const other = await makeIdentity()
    const now = new Date('2026-11-26T10:00:00Z')
    const query = await signRequest({ type: 'beeldnet/query' as const, requester, criteria: { bsn: '111222333', limit: 10 } }, '01000471', node.privateKey, now)
    const swapped = { ...query, requester: { ...requester, clinician: { ...requester.clinician, uzi: '123456789' } } }
    expect(requestSignatureProblem(swapped, { peerId: node.peerId }, '01000471', now)).toMatch(/not signed by the node/)
    expect(requestSignatureProblem(query, { peerId: other.peerId }, '01000471', now)).toMatch(/not signed by the node/)
    expect(requestSignatureProblem(query, { peerId: node.peerId }, '01002154', now)).toMatch(/signed for URA 01000471/)
    expect(requestSignatureProblem(query, { peerId: node.peerId }, '01000471', new Date('2026-11-26T10:30:00Z'))).toMatch(/more than 10 minutes/)
  })
})
