import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { importFiles } from '../../../node/dicom/file-import.ts'
import { createTransferStore } from '../../../node/transfers/transfer-store.ts'
import { generateStudy } from '../../../simulations/generator/index.ts'
import type { LocalNetworkNode } from '../../../simulations/scenarios/local-network.ts'
import { networkFetch, startAgain, useLocalNetwork } from '../../helpers/local-network.ts'
import { until } from '../../helpers/patience.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { nextEvent, instanceHashes } from './helpers.ts'

/*
 * Three real hospital nodes and a real registry (the same scenario `npm start` runs), exchanging
 * studies over libp2p through their HTTP APIs, as the CLI and the web app do.
 */

const tempDir = useTempDirs()
const requester = { clinician: { name: 'dr. A. Jansen', uzi: '123456789', role: '01.015' }, purpose: 'treatment' as const, department: 'RAD' }

async function post (url: string, body: unknown): Promise<{ status: number, body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const response = await networkFetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: response.status, body: await response.json() }
}

describe('exchange between three hospital nodes', () => {
  const suite = useLocalNetwork('exchange', 3)
  let a: LocalNetworkNode, b: LocalNetworkNode, c: LocalNetworkNode

  beforeAll(() => { [a, b, c] = suite.nodes as [LocalNetworkNode, LocalNetworkNode, LocalNetworkNode] })

  it('pushes a study with its report: reports first, byte for byte, committed at once, with a signed receipt', async () => {
    const uid = a.sampleStudies[0]!
    const reportAtB = nextEvent(b.node.exchange, 'report-arrived', (e) => e.studyInstanceUID === uid)
    const completeAtB = nextEvent(b.node.exchange, 'study-complete', (e) => e.studyInstanceUID === uid)
    const sent = await post(`${a.url}/api/transfers`, { studyInstanceUID: uid, to: { ura: b.ura, department: 'RAD' }, reason: 'verwijzing', note: 'graag beoordelen' })
    expect(sent.status, JSON.stringify(sent.body)).toBe(201)
    const transferId = sent.body.transferId as string
    const completeAtA = await nextEvent(a.node.exchange, 'study-complete', (e) => e.transferId === transferId)
    const report = await reportAtB
    await completeAtB
    expect(report.reports.length).toBeGreaterThan(0)

    expect(await instanceHashes(b.node.store, uid)).toEqual(await instanceHashes(a.node.store, uid))
    const record = await (await networkFetch(`${a.url}/api/transfers/${transferId}`)).json() as { state: string, receipt: unknown, attempts: number }
    expect(record).toMatchObject({ state: 'complete', attempts: 1, receipt: completeAtA.receipt })
    const listed = await (await networkFetch(`${b.url}/api/studies`)).json() as { studies: Array<{ studyInstanceUID: string }> }
    expect(listed.studies.map((s) => s.studyInstanceUID)).toContain(uid)

    // Sending the same study again moves no instance: the receiver holds them all.
    const opened: string[] = []
    const open = a.node.store.openInstance.bind(a.node.store)
    a.node.store.openInstance = (r) => { opened.push(r.sha256); return open(r) }
    try {
      const again = await post(`${a.url}/api/transfers`, { studyInstanceUID: uid, to: { ura: b.ura, department: 'RAD' }, reason: 'verwijzing' })
      await nextEvent(a.node.exchange, 'study-complete', (e) => e.transferId === again.body.transferId)
      expect(opened).toEqual([])
    } finally {
      a.node.store.openInstance = open
    }

    const metrics = await (await networkFetch(`${a.url}/metrics`, undefined, 'it-admin')).text()
    expect(metrics).toMatch(/beeldnet_transfer_bytes_total\{direction="outgoing"\} [1-9]/)
    expect(metrics).toMatch(/beeldnet_transfers\{direction="outgoing",state="complete"\} 2/)
    expect(metrics).toMatch(/beeldnet_peers_connected [1-9]/)
    expect(metrics).toMatch(/beeldnet_directory_version 1/)
  })

  it('refuses a send to an unknown institution or department with its code', async () => {
    const uid = a.sampleStudies[0]!
    const unknown = await post(`${a.url}/api/transfers`, { studyInstanceUID: uid, to: { ura: '99999999', department: 'RAD' }, reason: 'x' })
    expect(unknown).toMatchObject({ status: 404, body: { code: 'BEELDNET_ERR_UNKNOWN_INSTITUTION' } })
    const department = await post(`${a.url}/api/transfers`, { studyInstanceUID: uid, to: { ura: b.ura, department: 'XYZ' }, reason: 'x' })
    expect(department).toMatchObject({ status: 404, body: { code: 'BEELDNET_ERR_UNKNOWN_DEPARTMENT' } })
    const bad = await post(`${a.url}/api/transfers`, { studyInstanceUID: uid, to: { ura: 'abc' }, reason: 'x' })
    expect(bad).toMatchObject({ status: 400, body: { code: 'BEELDNET_ERR_SCHEMA' } })
  })

  it('finds studies at a peer by BSN and birth date, and pulls one: allowed, queued or refused by the source', async () => {
    const uid = a.sampleStudies[1]!
    const { study } = await a.node.store.getStudy(uid)
    const bsn = study.patient.bsn!
    expect(bsn).toMatch(/^[0-9]{9}$/)

    const found = await post(`${c.url}/api/query`, { at: a.ura, criteria: { bsn, birthDate: study.patient.birthDate }, requester })
    expect(found.status, JSON.stringify(found.body)).toBe(200)
    expect(found.body).toMatchObject({ type: 'beeldnet/query-result', truncated: false })
    expect(found.body.studies.map((s: { studyInstanceUID: string }) => s.studyInstanceUID)).toEqual([uid])
    expect(found.body.studies[0]).toMatchObject({ patient: { bsn }, numberOfInstances: study.numberOfInstances })
    // A wrong birth date finds nothing; a query naming no patient is refused before it leaves.
    const wrong = await post(`${c.url}/api/query`, { at: a.ura, criteria: { bsn, birthDate: '19000101' }, requester })
    expect(wrong.body.studies).toEqual([])
    const fishing = await post(`${c.url}/api/query`, { at: a.ura, criteria: { modality: 'CT' }, requester })
    expect(fishing).toMatchObject({ status: 400, body: { code: 'BEELDNET_ERR_SCHEMA' } })

    const arrived = nextEvent(c.node.exchange, 'study-complete', (e) => e.studyInstanceUID === uid)
    const pulled = await post(`${c.url}/api/pulls`, { at: a.ura, studyInstanceUID: uid, requester, deliverTo: 'RAD' })
    expect(pulled.body).toMatchObject({ decision: 'allowed' })
    await arrived
    expect(await instanceHashes(c.node.store, uid)).toEqual(await instanceHashes(a.node.store, uid))

    const queued = await post(`${c.url}/api/pulls`, { at: a.ura, studyInstanceUID: uid, requester: { ...requester, purpose: 'second-opinion' }, deliverTo: 'RAD' })
    expect(queued.body).toMatchObject({ decision: 'queued', reason: expect.stringContaining('approval') })
    const missing = await post(`${c.url}/api/pulls`, { at: a.ura, studyInstanceUID: '1.2.3.4', requester, deliverTo: 'RAD' })
    expect(missing.body).toMatchObject({ decision: 'refused', code: 'BEELDNET_ERR_STUDY_NOT_FOUND' })
  })

  it('resumes after the receiver is stopped mid-transfer and started again, sending no verified instance twice', async () => {
    // A study large enough to be cut: 40 instances of 512x512.
    const generated = await generateStudy(join(await tempDir('big'), 'study'), { seed: 77, series: [{ modality: 'CT', instances: 40, rows: 512, columns: 512 }] })
    await importFiles(generated.instances.map((i) => i.path), { store: a.node.store })
    const uid = generated.studyInstanceUID
    const opened: string[] = []
    const open = a.node.store.openInstance.bind(a.node.store)
    // The cut is made, not raced: the sender's 7th instance gives no byte until the receiver has stopped,
    // which it must do with that instance's stream still open.
    const receiverStopped = Promise.withResolvers<void>()
    a.node.store.openInstance = (r, options) => {
      opened.push(r.sha256)
      const source = open(r, options)
      if (opened.length <= 6) return source
      return (async function * () { await receiverStopped.promise; yield * source })()
    }
    try {
      const sent = await post(`${a.url}/api/transfers`, { studyInstanceUID: uid, to: { ura: b.ura, department: 'RAD' }, reason: 'verwijzing' })
      const transferId = sent.body.transferId as string
      // The six instances before the held one are verified (not raced against the throttled progress events).
      await until(async () => (await b.node.exchange.transfers.verifiedOf(a.peerId, transferId)).size === 6, 'the receiver verifying six instances')
      const interrupted = nextEvent(a.node.exchange, 'state', (r) => r.transferId === transferId && r.state === 'queued' && r.lastError !== undefined)
      await b.node.stop()
      receiverStopped.resolve()
      expect(await interrupted).toMatchObject({ direction: 'outgoing', attempts: 1 })
      // What the receiver had verified and kept when it stopped, read from its own store.
      const bTransfers = createTransferStore({ dir: join(b.dataDir, 'transfers') })
      await bTransfers.start()
      const verified = new Set([...(await bTransfers.verifiedOf(a.peerId, transferId)).values()].map((v) => v.sha256))
      await bTransfers.stop()
      expect(verified.size).toBe(6)
      opened.length = 0

      const restarted = await startAgain(suite, b)
      const done = await nextEvent(a.node.exchange, 'study-complete', (e) => e.transferId === transferId, `transfer ${transferId} complete`)
      expect(done.receipt.signed.instances).toHaveLength(40)
      // After the restart exactly the instances the receiver had not verified were sent, each once.
      expect(opened.filter((sha) => verified.has(sha))).toEqual([])
      expect(opened).toHaveLength(40 - verified.size)
      expect(new Set(opened).size).toBe(opened.length)
      const record = await a.node.exchange.queue.get(transferId)
      expect(record?.state).toBe('complete')
      // Retries while the receiver was down count too; at least the interrupted one and the last.
      expect(record?.attempts).toBeGreaterThanOrEqual(2)
      expect(await instanceHashes(restarted.store, uid)).toEqual(await instanceHashes(a.node.store, uid))
    } finally {
      a.node.store.openInstance = open
    }
  })

  it('ends a transfer waiting to retry at once when governance suspends its receiver, connected or not', async () => {
    const uid = a.sampleStudies[0]!
    await c.node.stop()
    const sent = await post(`${a.url}/api/transfers`, { studyInstanceUID: uid, to: { ura: c.ura, department: 'RAD' }, reason: 'verwijzing' })
    const transferId = sent.body.transferId as string
    const waiting = await nextEvent(a.node.exchange, 'state', (r) => r.transferId === transferId && r.state === 'queued' && r.lastError !== undefined)
    expect(waiting).toMatchObject({ lastError: { code: 'BEELDNET_ERR_PEER_UNREACHABLE' }, nextAttemptAt: expect.any(String) })

    const failed = nextEvent(a.node.exchange, 'transfer-failed', (e) => e.transferId === transferId)
    await suite.net.governance.publish([{ action: 'suspend', ura: c.ura, reason: 'security incident' }])
    expect(await failed).toMatchObject({ state: 'failed', error: { code: 'BEELDNET_ERR_PEER_NOT_ALLOWED' } })
    // Ended by the directory update itself, not by a later attempt that found the peer refused.
    expect(await a.node.exchange.queue.get(transferId)).toMatchObject({ state: 'failed', attempts: 1 })
  })
})
