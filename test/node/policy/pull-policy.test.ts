import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { networkFetch, restartWithConfig, useLocalNetwork } from '../../helpers/local-network.ts'
import { sendPullDecision } from '../../../node/transfers/pull/pull-protocol.ts'
import { PROTOCOLS } from '../../../protocol/p2p/ids.ts'
import { nextEvent } from '../transfers/helpers.ts'

/*
 * Hospital B pulls from hospital A under A's rules: allowed at once, queued until someone at A
 * approves (or refuses, with a reason), refused without the patient's consent and allowed with it,
 * per requesting department. The queue survives a restart of A; every decision is in A's trail.
 */

const clinician = { name: 'dr. B. de Boer', uzi: '987654321', role: '01.015' }

async function post (url: string, body: unknown): Promise<{ status: number, body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await networkFetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.status, body: await res.json() }
}

describe('pull policy: allow, queue for approval, refuse, consent', () => {
  const suite = useLocalNetwork('pull-policy', 2)

  it('decides every pull by the rules, keeps the queue across a restart, and records each decision', async () => {
    const [a, b] = suite.nodes as [NonNullable<typeof suite.nodes[0]>, NonNullable<typeof suite.nodes[0]>]
    await restartWithConfig(suite, a, [[['policy', 'pull'], [
      { ura: b.ura, purposes: ['treatment'], decision: 'allow' },
      { ura: b.ura, purposes: ['second-opinion'], decision: 'queue' },
      { ura: b.ura, purposes: ['referral'], requireConsent: true, decision: 'allow' },
      { ura: b.ura, purposes: ['emergency'], departments: ['SEH'], decision: 'allow' }
    ]]])
    const [first, second] = a.sampleStudies as [string, string]
    const pull = async (study: string, purpose: string, department?: string): Promise<{ decision: string, reason: string, code?: string }> =>
      (await post(`${b.url}/api/pulls`, { at: a.ura, studyInstanceUID: study, requester: { clinician, purpose, ...(department === undefined ? {} : { department }) }, deliverTo: 'RAD' })).body

    const allowedArrives = nextEvent(b.node.exchange, 'study-complete', (e) => e.studyInstanceUID === first && e.direction === 'incoming')
    expect(await pull(first, 'treatment')).toMatchObject({ decision: 'allowed' })
    await allowedArrives

    // Queued: it waits at A, also across a restart, until someone approves it.
    const queued = await pull(second, 'second-opinion')
    expect(queued).toMatchObject({ decision: 'queued', reason: expect.stringContaining('approval') })
    await restartWithConfig(suite, a, [])
    const waiting = (await (await networkFetch(`${a.url}/api/approvals?state=waiting`)).json() as { approvals: Array<{ requestId: string, studyInstanceUID: string, requester: { clinician: { uzi: string } } }> }).approvals
    expect(waiting).toHaveLength(1)
    expect(waiting[0]).toMatchObject({ studyInstanceUID: second, requester: { clinician: { uzi: '987654321' } } })
    const arrives = nextEvent(b.node.exchange, 'study-complete', (e) => e.studyInstanceUID === second && e.direction === 'incoming')
    const approved = await post(`${a.url}/api/approvals/${waiting[0]!.requestId}/approve`, {})
    expect(approved.body).toMatchObject({ state: 'approved' })
    await arrives
    expect((await post(`${a.url}/api/approvals/${waiting[0]!.requestId}/approve`, {})).body).toMatchObject({ code: 'BEELDNET_ERR_ALREADY_DECIDED' })

    // Queued and refused with a reason: nothing is sent.
    const sentBefore = (await a.node.exchange.queue.list()).length
    await pull(first, 'second-opinion')
    const [again] = (await (await networkFetch(`${a.url}/api/approvals?state=waiting`)).json() as { approvals: Array<{ requestId: string }> }).approvals
    const heard = nextEvent(b.node.exchange, 'pull-decided', (p) => p.requestId === again!.requestId)
    const refused = await post(`${a.url}/api/approvals/${again!.requestId}/refuse`, { reason: 'eerst overleg met de behandelaar' })
    expect(refused.body).toMatchObject({ state: 'refused', decision: 'eerst overleg met de behandelaar' })
    expect(await a.node.exchange.queue.list()).toHaveLength(sentBefore)
    // B hears it: the clinician who asked sees the refusal and why, and B's trail has it.
    await heard
    const asked = (await (await networkFetch(`${b.url}/api/pulls`)).json() as { pulls: Array<{ requestId: string, decision: string, reason: string, decidedAt?: string }> }).pulls
    expect(asked.find((p) => p.requestId === again!.requestId)).toMatchObject({ decision: 'refused', reason: 'eerst overleg met de behandelaar', decidedAt: expect.any(String) })
    expect(asked.find((p) => p.requestId === waiting[0]!.requestId)).toMatchObject({ decision: 'allowed', reason: expect.stringContaining('pushed as transfer') })
    // A decision for a pull that was never queued there (the allowed one, an unknown one) changes nothing at B.
    const allowedId = asked.find((p) => p.decision === 'allowed' && p.decidedAt === undefined)!.requestId
    for (const requestId of [allowedId, 'Unknown-req-0001']) {
      const stream = await a.node.p2p.dialProtocol(b.peerId, PROTOCOLS.pullDecision)
      await sendPullDecision(stream, { type: 'beeldnet/pull-answer', requestId, decision: 'refused', reason: 'forged' })
    }
    await new Promise((resolve) => setTimeout(resolve, 300))
    const after = (await (await networkFetch(`${b.url}/api/pulls`)).json() as { pulls: typeof asked }).pulls
    expect(after.find((p) => p.requestId === allowedId)).toMatchObject({ decision: 'allowed' })
    expect(after.map((p) => p.requestId)).not.toContain('Unknown-req-0001')
    const atB = (await readFile(join(b.dataDir, 'audit', 'trail.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { event: string, outcome: string, institution?: { ura: string } })
    expect(atB.filter((r) => r.event === 'pull-decision').map((r) => [r.outcome, r.institution?.ura])).toEqual([['allowed', a.ura], ['refused', a.ura]])

    // Consent: refused without it, allowed once it is on record for this institution and purpose.
    expect(await pull(first, 'referral')).toMatchObject({ decision: 'refused', code: 'BEELDNET_ERR_NO_CONSENT' })
    const bsn = (await a.node.store.getStudy(first)).study.patient.bsn!
    expect((await post(`${a.url}/api/consents`, { bsn, ura: b.ura, purposes: ['referral'] })).status).toBe(201)
    expect(await pull(first, 'referral')).toMatchObject({ decision: 'allowed', reason: expect.stringContaining('consent') })

    // Departments: the emergency rule is for the emergency department only.
    expect(await pull(first, 'emergency', 'RAD')).toMatchObject({ decision: 'refused', code: 'BEELDNET_ERR_PULL_NOT_ALLOWED' })
    expect(await pull(first, 'emergency', 'SEH')).toMatchObject({ decision: 'allowed' })

    const trail = await (await networkFetch(`${a.url}/api/audit/patients/${bsn}`, undefined, 'auditor')).json() as { accesses: Array<{ event: string, outcome: string }> }
    const decisions = trail.accesses.filter((x) => x.event === 'pull-request' || x.event === 'pull-decision').map((x) => `${x.event} ${x.outcome}`)
    expect(decisions).toEqual(['pull-request allowed', 'pull-request queued', 'pull-decision refused', 'pull-request refused', 'pull-request allowed', 'pull-request refused', 'pull-request allowed'])
    expect(trail.accesses.filter((x) => x.event === 'consent-change').map((x) => x.outcome)).toEqual(['consent recorded'])

    // The rules came from the config file: the trail holds each version that was in force, once.
    const records = (await readFile(join(a.dataDir, 'audit', 'trail.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { event: string, outcome: string, details?: { settings?: string } })
    const policy = records.filter((r) => r.event === 'policy-change')
    expect(policy.map((r) => r.outcome)).toEqual(['first policy in force', 'policy changed'])
    expect(JSON.parse(policy[1]!.details!.settings!)).toMatchObject({ pull: [{ ura: b.ura, purposes: ['treatment'], decision: 'allow' }, {}, {}, {}] })
  })
})
