import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { readHeaderFromBytes } from '../../../node/dicom/dataset-reader.ts'
import { tag, Tags } from '../../../node/dicom/tags.ts'
import type { DeidentifiedPushRecord } from '../../../node/deidentify/push-records.ts'
import type { StudyStore } from '../../../node/store/study-store.ts'
import { generateStudy, type StudySpec } from '../../../simulations/generator/index.ts'
import { DEMO_PASSWORD } from '../../../simulations/scenarios/demo-accounts.ts'
import type { LocalNetworkNode } from '../../../simulations/scenarios/local-network.ts'
import { networkFetch, useLocalNetwork } from '../../helpers/local-network.ts'
import { PATIENCE_MS, until } from '../../helpers/patience.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { importInto } from '../../helpers/viewer-samples.ts'
import { instanceHashes } from '../transfers/helpers.ts'

/*
 * The de-identified push between real nodes: A makes a de-identified copy of a study, imports it as
 * a study of its own, pushes that to B (or to C, which governance marks as a teaching or research
 * institution), and drops the copy once the transfer has ended. The original stays as it was; the
 * record and UID map stay at A; the trail at A links the original to the copy.
 */

const tempDir = useTempDirs()
const PATIENT = { name: 'Verbeek^Sanne', id: '7301234', issuer: 'BEELDNET', bsn: '123456782', birthDate: '19710203', sex: 'F' as const }
const PATIENT_IDENTITY_REMOVED = tag(0x0012, 0x0062)

type Send = { status: number, body: any } // eslint-disable-line @typescript-eslint/no-explicit-any

interface Session { cookie: string, csrf: string }

async function logIn (url: string, username: string): Promise<Session> {
  const res = await fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: DEMO_PASSWORD }) })
  expect(res.status).toBe(200)
  return { cookie: res.headers.get('set-cookie')!.split(';')[0]!, csrf: (await res.json() as { csrfToken: string }).csrfToken }
}

/** POST /api/transfers as the logged-in clinician (session) or with a clinician's API token. */
async function send (node: LocalNetworkNode, body: unknown, session?: Session): Promise<Send> {
  const init = { method: 'POST', body: JSON.stringify(body) }
  const res = session === undefined
    ? await networkFetch(`${node.url}/api/transfers`, { ...init, headers: { 'content-type': 'application/json' } })
    : await fetch(`${node.url}/api/transfers`, { ...init, headers: { 'content-type': 'application/json', cookie: session.cookie, 'x-csrf-token': session.csrf } })
  return { status: res.status, body: await res.json() }
}

async function study (modality: 'CT' | 'US', seed: number): Promise<{ uid: string, files: string[] }> {
  const spec: StudySpec = { seed, patient: { ...PATIENT }, description: `Verbeek ${modality}`, series: [{ modality, instances: modality === 'CT' ? 3 : 1, rows: 64, columns: 64 }] }
  const generated = await generateStudy(await tempDir(), spec)
  return { uid: generated.studyInstanceUID, files: generated.instances.map((i) => i.path) }
}

async function bytesOf (store: StudyStore, uid: string): Promise<Buffer[]> {
  const out: Buffer[] = []
  for (const instance of (await store.getStudy(uid)).instances) {
    const chunks: Uint8Array[] = []
    for await (const chunk of store.openInstance(instance)) chunks.push(chunk)
    out.push(Buffer.concat(chunks))
  }
  return out
}

/** Waits until `to` holds the transfer complete; returns the record `from` keeps of it. */
async function delivered (from: LocalNetworkNode, to: LocalNetworkNode, transferId: string): Promise<void> {
  await until(async () => {
    const outgoing = await from.node.exchange.queue.get(transferId)
    if (outgoing !== undefined && ['declined', 'failed', 'cancelled'].includes(outgoing.state)) throw new Error(`the push ended ${outgoing.state}: ${JSON.stringify(outgoing.lastError)}`)
    return (await to.node.exchange.incoming.list()).some((r) => r.transferId === transferId && r.state === 'complete')
  }, `${to.name} to hold transfer ${transferId}`, PATIENCE_MS, 50)
}

async function gone (node: LocalNetworkNode, uid: string): Promise<void> {
  await until(async () => node.node.store.getStudy(uid).then(() => false, () => true), `the de-identified copy ${uid} to leave ${node.name}'s store`, PATIENCE_MS, 50)
}

/** B's copy: a new UID, nothing of the patient in any byte, Patient Identity Removed YES, every instance readable. */
async function expectDeidentified (node: LocalNetworkNode, derived: string, original: string, instances: number): Promise<void> {
  expect(derived).not.toBe(original)
  const files = await bytesOf(node.node.store, derived)
  expect(files).toHaveLength(instances)
  for (const bytes of files) {
    const text = bytes.toString('latin1')
    for (const identifying of ['Verbeek', 'Sanne', PATIENT.id, PATIENT.bsn, PATIENT.birthDate, original]) expect(text).not.toContain(identifying)
    const { dataset } = readHeaderFromBytes(bytes, true)
    expect(dataset.get(PATIENT_IDENTITY_REMOVED)?.value?.toString('latin1').trim()).toBe('YES')
    expect(dataset.get(Tags.StudyInstanceUID)?.value?.toString('latin1').replace(/\0$/, '')).toBe(derived)
  }
  await expect(node.node.store.getStudy(original)).rejects.toMatchObject({ code: 'BEELDNET_ERR_STUDY_NOT_FOUND' })
}

async function trail (node: LocalNetworkNode): Promise<Array<{ event: string, outcome: string, studyInstanceUID?: string, patient?: { id?: string }, details?: Record<string, string> }>> {
  return (await readFile(join(node.dataDir, 'audit', 'trail.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l))
}

async function pushRecords (node: LocalNetworkNode): Promise<DeidentifiedPushRecord[]> {
  return node.node.deidentifiedPushes.records()
}

describe('a de-identified push between hospital nodes', () => {
  const suite = useLocalNetwork('deidentified-push', 3, { demoAccounts: true })
  let a: LocalNetworkNode, b: LocalNetworkNode, c: LocalNetworkNode

  beforeAll(() => { [a, b, c] = suite.nodes as [LocalNetworkNode, LocalNetworkNode, LocalNetworkNode] })

  it('sends a copy with a new Study Instance UID and nothing of the patient; the original stays, the copy leaves A, the trail links both', async () => {
    const { uid, files } = await study('CT', 71)
    await importInto(a, files)
    const before = await instanceHashes(a.node.store, uid)
    // What must not reach B is in every byte of the original.
    for (const bytes of await bytesOf(a.node.store, uid)) for (const identifying of ['Verbeek', PATIENT.id, PATIENT.bsn]) expect(bytes.toString('latin1')).toContain(identifying)
    const session = await logIn(a.url, 'arts')

    const sent = await send(a, { studyInstanceUID: uid, to: { ura: b.ura, department: 'RAD' }, reason: 'onderwijs', deidentify: { profile: 'basic,retain-dates' } }, session)
    expect(sent.status, JSON.stringify(sent.body)).toBe(201)
    const derived = sent.body.deidentified.studyInstanceUID as string
    expect(sent.body).toMatchObject({ studyInstanceUID: derived, deidentified: { original: uid, profile: 'basic,retain-dates' } })
    await delivered(a, b, sent.body.transferId)

    await expectDeidentified(b, derived, uid, 3)
    expect(await instanceHashes(a.node.store, uid)).toEqual(before)
    await gone(a, derived)

    // The record and the UID map stay at A, naming both studies.
    const record = (await pushRecords(a)).find((r) => r.derived.studyInstanceUID === derived)!
    expect(record).toMatchObject({ state: 'removed', outcome: 'complete', original: { studyInstanceUID: uid }, transferId: sent.body.transferId, record: { profile: 'basic,retain-dates', instances: 3 } })
    expect(record.map).toContainEqual({ kind: 'uid', original: uid, replacement: derived })
    expect(record.map).toContainEqual({ kind: 'patient-id', original: PATIENT.id, replacement: expect.stringMatching(/^ANON/) })

    // A's trail: the export of the original (by the clinician, naming the profile and the copy), and the send of the copy naming the original.
    const records = await trail(a)
    const exported = records.find((r) => r.event === 'export' && r.studyInstanceUID === uid)!
    expect(exported).toMatchObject({ outcome: 'de-identified: 3 instance(s)', patient: { id: PATIENT.id }, user: { name: 'dr. A. Jansen' }, details: { deidentification: 'PS3.15 Annex E basic,retain-dates', deidentifiedStudyInstanceUID: derived, purpose: 'de-identified push', destination: `${b.ura}/RAD`, deidentifiedPush: record.id } })
    expect(records.find((r) => r.event === 'send' && r.studyInstanceUID === derived)).toMatchObject({ details: { deidentifiedFrom: uid, deidentification: 'PS3.15 Annex E basic,retain-dates' } })
    // The receipt is recorded for the copy although the copy is gone.
    await until(async () => (await trail(a)).some((r) => r.event === 'receipt' && r.studyInstanceUID === derived), 'the receipt of the copy in A\'s trail', PATIENCE_MS, 50)
  })

  it('de-identifies without being asked for a destination governance marks as teaching or research, and refuses deidentify: false for it', async () => {
    await suite.net.governance.publish([{ action: 'set-kind', ura: c.ura, kind: 'teaching-research', reason: 'opleidingsinstituut radiologie' }])
    await until(() => a.node.directory.directory?.institutions.find((i) => i.ura === c.ura)?.kind === 'teaching-research', 'A to hold the directory marking C', PATIENCE_MS, 50)
    const listed = await (await networkFetch(`${a.url}/api/institutions`)).json() as { institutions: Array<{ ura: string, kind: string }> }
    expect(listed.institutions.find((i) => i.ura === c.ura)?.kind).toBe('teaching-research')

    const { uid, files } = await study('CT', 72)
    await importInto(a, files)
    const refused = await send(a, { studyInstanceUID: uid, to: { ura: c.ura, department: 'RAD' }, reason: 'onderwijs', deidentify: false })
    expect(refused).toMatchObject({ status: 409, body: { code: 'BEELDNET_ERR_DEIDENTIFICATION_REQUIRED' } })
    // Whatever asks for a push (a routing rule, an approved pull), the exchange itself refuses an identified study for C.
    await expect(a.node.exchange.send({ studyInstanceUID: uid, to: { ura: c.ura, department: 'RAD' }, reason: 'routing' })).rejects.toMatchObject({ code: 'BEELDNET_ERR_DEIDENTIFICATION_REQUIRED' })

    const sent = await send(a, { studyInstanceUID: uid, to: { ura: c.ura, department: 'RAD' }, reason: 'onderwijs' })
    expect(sent.status, JSON.stringify(sent.body)).toBe(201)
    expect(sent.body.deidentified).toMatchObject({ original: uid, profile: 'basic' })
    await delivered(a, c, sent.body.transferId)
    await expectDeidentified(c, sent.body.deidentified.studyInstanceUID, uid, 3)
    await gone(a, sent.body.deidentified.studyInstanceUID)
  })

  it('refuses an ultrasound study (burned-in text) until the clinician logged in confirms the images, and records who did', async () => {
    const { uid, files } = await study('US', 73)
    await importInto(a, files)
    const session = await logIn(a.url, 'arts')
    const body = { studyInstanceUID: uid, to: { ura: b.ura, department: 'RAD' }, reason: 'onderwijs', deidentify: { profile: 'basic' } }
    const storedBefore = (await a.node.store.findStudies()).length

    expect(await send(a, body, session)).toMatchObject({ status: 422, body: { code: 'BEELDNET_ERR_BURNED_IN_ANNOTATION' } })
    expect((await a.node.store.findStudies()).length).toBe(storedBefore)
    // An API token is no person who looked at the images.
    expect(await send(a, { ...body, deidentify: { profile: 'basic', confirmBurnedIn: true } })).toMatchObject({ status: 400, body: { code: 'BEELDNET_ERR_BAD_REQUEST' } })
    expect((await trail(a)).find((r) => r.event === 'export' && r.studyInstanceUID === uid)).toMatchObject({ outcome: 'refused: BEELDNET_ERR_BURNED_IN_ANNOTATION' })

    const sent = await send(a, { ...body, deidentify: { profile: 'basic', confirmBurnedIn: true } }, session)
    expect(sent.status, JSON.stringify(sent.body)).toBe(201)
    await delivered(a, b, sent.body.transferId)
    await expectDeidentified(b, sent.body.deidentified.studyInstanceUID, uid, 1)
    await gone(a, sent.body.deidentified.studyInstanceUID)
    const record = (await pushRecords(a)).find((r) => r.original.studyInstanceUID === uid)!
    expect(record.record.burnedInAnnotation).toEqual([expect.objectContaining({ confirmedBy: 'dr. A. Jansen (UZI 900000001)' })])
  })
})
