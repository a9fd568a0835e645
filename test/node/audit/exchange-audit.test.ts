import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { requestSignatureProblem } from '../../../protocol/exchange/request-signature.ts'
import { createPrng, generateBsn } from '../../../simulations/generator/index.ts'
import { UserStore } from '../../../node/users/user-store.ts'
import { tokenFor } from '../../helpers/api-caller.ts'
import { runBeeldnet } from '../../helpers/beeldnet-cli.ts'
import { networkFetch, useLocalNetwork } from '../../helpers/local-network.ts'
import { nextEvent } from '../transfers/helpers.ts'
import { PATIENCE_MS, until } from '../../helpers/patience.ts'

/*
 * NEN 7513 at both ends of an exchange: hospital B queries hospital A for a patient (once finding
 * studies, once nothing) and pulls a study, which A pushes. Each node's trail then holds exactly
 * these accesses for that patient, with the clinician and the other institution, and verifies.
 */

const requester = { clinician: { name: 'dr. B. de Boer', uzi: '987654321', role: '01.015' }, purpose: 'treatment' as const }

async function post (url: string, body: unknown): Promise<{ status: number, body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await networkFetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.status, body: await res.json() }
}

interface Report { accesses: Array<{ event: string, outcome: string, user: Record<string, string>, responsible?: Record<string, string>, institution?: { ura: string }, studyInstanceUID?: string }> }

describe('the audit trail of an exchange, at both hospitals', () => {
  const suite = useLocalNetwork('exchange-audit', 2)

  it('records queries (empty ones too), the pull request and its push, and the receipt, per patient', async () => {
    const [a, b] = suite.nodes as [NonNullable<typeof suite.nodes[0]>, NonNullable<typeof suite.nodes[0]>]
    const uid = a.sampleStudies[0]!
    const bsn = (await a.node.store.getStudy(uid)).study.patient.bsn!
    const nobody = generateBsn(createPrng(424242))

    const found = await post(`${b.url}/api/query`, { at: a.ura, criteria: { bsn, limit: 10 }, requester })
    expect(found.status).toBe(200)
    expect(found.body.studies.length).toBeGreaterThan(0)
    const empty = await post(`${b.url}/api/query`, { at: a.ura, criteria: { bsn: nobody, limit: 10 }, requester })
    expect(empty.body.studies).toEqual([])
    const arrived = nextEvent(b.node.exchange, 'study-complete', (e) => e.studyInstanceUID === uid && e.direction === 'incoming')
    const delivered = nextEvent(a.node.exchange, 'study-complete', (e) => e.studyInstanceUID === uid && e.direction === 'outgoing')
    const pulled = await post(`${b.url}/api/pulls`, { at: a.ura, studyInstanceUID: uid, requester, deliverTo: 'RAD' })
    expect(pulled.body.decision).toBe('allowed')
    await arrived
    await delivered
    // The receipt is recorded right after the event: wait for it in the file.
    const trailA = join(a.dataDir, 'audit', 'trail.jsonl')
    await until(async () => (await readFile(trailA, 'utf8')).includes('"event":"receipt"'), 'the receipt in A\'s trail', PATIENCE_MS, 100)

    const atA = await (await networkFetch(`${a.url}/api/audit/patients/${bsn}`, undefined, 'auditor')).json() as Report
    expect(atA.accesses.map((x) => x.event)).toEqual(['query', 'pull-request', 'send', 'receipt', 'audit-read'])
    const [query, pull, send] = atA.accesses
    expect(query).toMatchObject({ outcome: expect.stringMatching(/^[1-9]\d* stud/), user: { uzi: '987654321' }, institution: { ura: b.ura } })
    expect(pull).toMatchObject({ outcome: 'allowed', user: { uzi: '987654321' }, institution: { ura: b.ura }, studyInstanceUID: uid })
    expect(send).toMatchObject({ outcome: 'queued', responsible: { uzi: '987654321' }, institution: { ura: b.ura }, studyInstanceUID: uid })

    // A keeps the query as B's node signed it: the clinician is vouched for by B, checkable later.
    const records = (await readFile(join(a.dataDir, 'audit', 'trail.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { event: string, details?: { signedRequest?: string } })
    const signed = JSON.parse(records.find((r) => r.event === 'query')!.details!.signedRequest!) as Parameters<typeof requestSignatureProblem>[0] & { requester: { clinician: { uzi: string } } }
    expect(signed.requester.clinician.uzi).toBe('987654321')
    expect(requestSignatureProblem(signed, { peerId: b.peerId }, a.ura)).toBeUndefined()

    const nothing = await (await networkFetch(`${a.url}/api/audit/patients/${nobody}`, undefined, 'auditor')).json() as Report
    expect(nothing.accesses.map((x) => [x.event, x.outcome])).toEqual([['query', '0 studies'], ['audit-read', 'patient access report']])

    // B's receipt completes after the sender hears it: wait for B's record.
    let atB: Report = { accesses: [] }
    await until(async () => {
      atB = await (await networkFetch(`${b.url}/api/audit/patients/${bsn}`, undefined, 'auditor')).json() as Report
      return atB.accesses.some((x) => x.event === 'receive')
    }, 'the receive record in B\'s access report', PATIENCE_MS, 100)
    expect(atB.accesses.find((x) => x.event === 'receive')).toMatchObject({ outcome: 'committed', institution: { ura: a.ura }, studyInstanceUID: uid })

    for (const node of [a, b]) expect(await (await networkFetch(`${node.url}/api/audit/verify`, undefined, 'auditor')).json()).toMatchObject({ ok: true })
    const html = await networkFetch(`${a.url}/api/audit/patients/${bsn}?format=html`, undefined, 'auditor')
    expect(html.headers.get('content-type')).toContain('text/html')
    expect(await html.text()).toContain('987654321')

    // The same from the command line: verify the trail (and a tampered copy), and the report.
    const cli = (...args: string[]): ReturnType<typeof runBeeldnet> => runBeeldnet(['node', '--data-dir', a.dataDir, ...args])
    const verified = await cli('audit', 'verify')
    expect(verified.code, verified.stderr).toBe(0)
    expect(verified.stdout).toMatch(/the trail verifies: \d+ record/)
    const copy = join(suite.dir, 'trail-copy.jsonl')
    const lines = (await readFile(join(a.dataDir, 'audit', 'trail.jsonl'), 'utf8')).trim().split('\n')
    const edited = lines.findIndex((l) => l.includes('"event":"pull-request"'))
    await writeFile(copy, `${lines.map((l, i) => i === edited ? l.replace('"allowed"', '"refused"') : l).join('\n')}\n`)
    const tampered = await cli('audit', 'verify', '--file', copy)
    expect(tampered.code).toBe(3)
    expect(tampered.stdout).toContain(`NOT intact (changed, line ${edited + 1})`)
    // The receipt B signed, kept in A's trail, still holds against the directory A held then.
    const receipts = await cli('audit', 'receipts')
    expect(receipts.code, receipts.stdout + receipts.stderr).toBe(0)
    expect(receipts.stdout).toMatch(/^[1-9]\d* receipt\(s\) checked, 0 problem\(s\)/)
    const forged = join(suite.dir, 'trail-forged.jsonl')
    await writeFile(forged, `${lines.map((l) => {
      const record = JSON.parse(l) as { event: string, details?: { receipt?: string } }
      if (record.event !== 'receipt') return l
      const receipt = JSON.parse(record.details!.receipt!) as { signed: { instances: string[] }, signature: string }
      receipt.signed.instances = [...receipt.signed.instances, 'f'.repeat(64)]
      return JSON.stringify({ ...record, details: { ...record.details, receipt: JSON.stringify(receipt) } })
    }).join('\n')}\n`)
    const caught = await cli('audit', 'receipts', '--file', forged)
    expect(caught.code).toBe(3)
    expect(caught.stdout).toContain('the signature is not')

    // Reading a patient's accesses is for an auditor: the node's own CLI token (a clinician's) may not.
    const refused = await cli('audit', 'report', '--bsn', bsn, '--node', a.url)
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toContain('BEELDNET_ERR_FORBIDDEN')
    const report = await runBeeldnet(['node', '--data-dir', a.dataDir, 'audit', 'report', '--bsn', bsn, '--node', a.url], { BEELDNET_TOKEN: await tokenFor(a, 'auditor') })
    expect(report.code, report.stderr).toBe(0)
    expect(report.stdout).toContain('pull-request')
    expect(report.stdout).toContain(`URA ${b.ura}`)
  })

  it('a logged-in clinician asks a peer as themselves: the source records that clinician; no one asks in the name of another', async () => {
    const [a, b] = suite.nodes as [NonNullable<typeof suite.nodes[0]>, NonNullable<typeof suite.nodes[0]>]
    const bsn = (await a.node.store.getStudy(a.sampleStudies[0]!)).study.patient.bsn!
    await new UserStore(join(b.dataDir, 'users.json')).add({ username: 'visser', name: 'dr. C. Visser', role: 'clinician', uzi: '555666777', roleCode: '01.015' }, 'a long enough password')
    const login = await fetch(`${b.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'visser', password: 'a long enough password' }) })
    const { csrfToken } = await login.json() as { csrfToken: string }
    const session = { cookie: login.headers.get('set-cookie')!.split(';')[0]!, 'x-csrf-token': csrfToken, 'content-type': 'application/json' }
    const ask = async (body: unknown): Promise<Response> => fetch(`${b.url}/api/query`, { method: 'POST', headers: session, body: JSON.stringify(body) })

    const asSelf = await ask({ at: a.ura, criteria: { bsn, limit: 10 }, requester: { purpose: 'second-opinion' } })
    expect(asSelf.status).toBe(200)
    const atA = await (await networkFetch(`${a.url}/api/audit/patients/${bsn}`, undefined, 'auditor')).json() as Report
    expect(atA.accesses.filter((x) => x.event === 'query').at(-1)).toMatchObject({ user: { name: 'dr. C. Visser', uzi: '555666777', role: '01.015' }, institution: { ura: b.ura } })

    const asOther = await ask({ at: a.ura, criteria: { bsn, limit: 10 }, requester })
    expect(asOther.status).toBe(403)
    expect(await asOther.json()).toMatchObject({ code: 'BEELDNET_ERR_FORBIDDEN' })
    // An integration's token names the clinician it asks for; without one it is refused before anything leaves.
    const anonymous = await post(`${b.url}/api/query`, { at: a.ura, criteria: { bsn, limit: 10 }, requester: { purpose: 'treatment' } })
    expect(anonymous).toMatchObject({ status: 400, body: { code: 'BEELDNET_ERR_BAD_REQUEST' } })
  })

  it('records a search, a study opened and a report read on the node API (the pages of the web app), per patient', async () => {
    const [a] = suite.nodes as [NonNullable<typeof suite.nodes[0]>]
    const uid = a.sampleStudies[0]!
    const { study, series, instances } = await a.node.store.getStudy(uid)
    const srSeries = series.find((x) => x.modality === 'SR')!.seriesInstanceUID
    const report = instances.find((i) => i.seriesInstanceUID === srSeries)!
    expect((await networkFetch(`${a.url}/api/studies?bsn=${study.patient.bsn!}`)).status).toBe(200)
    expect((await networkFetch(`${a.url}/api/studies/${uid}`)).status).toBe(200)
    expect((await networkFetch(`${a.url}/api/studies/${uid}/reports/${report.sopInstanceUID}`)).status).toBe(200)
    expect((await networkFetch(`${a.url}/api/studies/${uid}/reports`)).status).toBe(200)
    const imageSeries = series.find((x) => x.modality !== 'SR' && x.modality !== 'DOC')!.seriesInstanceUID
    expect((await networkFetch(`${a.url}/api/studies/${uid}/series/${imageSeries}/thumbnail`)).status).toBe(200)
    // The inbox shows the patients of the transfers in it (this study went to B in the first test).
    expect((await networkFetch(`${a.url}/api/inbox`)).status).toBe(200)
    const atA = await (await networkFetch(`${a.url}/api/audit/patients/${study.patient.bsn!}`, undefined, 'auditor')).json() as Report
    const shown = atA.accesses.filter((x) => x.user.system?.includes('(test clinician)') === true).map((x) => `${x.event}: ${x.outcome}`)
    // The thumbnail is an image of the study just opened: the study details' record stands for it
    // (a study's images are recorded once per caller per study per 30 minutes, view-records.ts).
    // Reports are read one by one and recorded each time.
    expect(shown.slice(-5)).toEqual([
      expect.stringMatching(/^query: [1-9]\d* studies$/), 'view: study details', `view: report ${report.sopInstanceUID}`,
      expect.stringMatching(/^view: report list \(\d+\)$/), 'view: inbox and outbox'
    ])
    expect(shown).not.toContain(`view: thumbnail of series ${imageSeries}`)
  })
})
