import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { LocalNetworkNode } from '../../../simulations/scenarios/local-network.ts'
import { networkFetch, useLocalNetwork } from '../../helpers/local-network.ts'
import { runBeeldnet, type CliResult } from '../../helpers/beeldnet-cli.ts'
import { samplePdf } from '../../helpers/sample-pdf.ts'
import { importInto } from '../../helpers/viewer-samples.ts'
import { generateStudy } from '../../../simulations/generator/index.ts'

/* The exchange verbs against running nodes, as hospital IT and scripts use them. */

describe('beeldnet node send | query | pull | transfers', () => {
  const suite = useLocalNetwork('exchange-cli', 2)
  let a: LocalNetworkNode, b: LocalNetworkNode
  const clinician = ['--clinician', 'dr. B. de Boer', '--uzi', '987654321']
  const at = (n: LocalNetworkNode, ...args: string[]): Promise<CliResult> => runBeeldnet(['node', '--data-dir', n.dataDir, ...args, '--node', n.url])

  beforeAll(() => { [a, b] = suite.nodes as [LocalNetworkNode, LocalNetworkNode] })

  it('sends a study and follows it to the receipt; lists transfers on both sides', async () => {
    const uid = a.sampleStudies[0]!
    const sent = await at(a, '--json', 'send', uid, '--to', `${b.ura}/RAD`, '--reason', 'verwijzing', '--note', 'spoed')
    expect(sent.code, sent.stderr).toBe(0)
    const record = JSON.parse(sent.stdout) as { state: string, transferId: string, receipt: unknown }
    expect(record).toMatchObject({ state: 'complete', receipt: { signed: { studyInstanceUID: uid } } })

    const listed = await at(b, '--json', 'transfers')
    expect(JSON.parse(listed.stdout)).toMatchObject({ incoming: [{ transferId: record.transferId, state: 'complete', senderUra: a.ura }] })
    const text = await at(a, 'transfers')
    expect(text.stdout).toContain(`complete   to ${b.ura}/RAD`)
  })

  it('sends a de-identified copy (--deidentify): the receiver gets a study of another UID; burned-in text and an unknown option are refused', async () => {
    // The samples are CR: their pixels may carry text, which a person confirms in the web app.
    const cr = await at(a, 'send', a.sampleStudies[0]!, '--to', `${b.ura}/RAD`, '--reason', 'onderwijs', '--deidentify', 'basic')
    expect(cr.code).toBe(1)
    expect(cr.stderr).toContain('BEELDNET_ERR_BURNED_IN_ANNOTATION')
    const generated = await generateStudy(join(suite.dir, 'ct-deidentify'), { seed: 5, series: [{ modality: 'CT', instances: 2, rows: 64, columns: 64 }] })
    await importInto(a, generated.instances.map((i) => i.path))
    const uid = generated.studyInstanceUID
    const sent = await at(a, '--json', 'send', uid, '--to', `${b.ura}/RAD`, '--reason', 'onderwijs', '--deidentify', 'basic,clean-descriptors')
    expect(sent.code, sent.stderr + sent.stdout).toBe(0)
    const record = JSON.parse(sent.stdout) as { state: string, studyInstanceUID: string }
    expect(record.state).toBe('complete')
    expect(record.studyInstanceUID).toMatch(/^2\.25\.\d+$/)
    expect((await b.node.store.getStudy(record.studyInstanceUID)).instances.length).toBeGreaterThan(0)

    const bad = await at(a, 'send', uid, '--to', `${b.ura}/RAD`, '--reason', 'onderwijs', '--deidentify', 'basic,retain-uids')
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain('BEELDNET_ERR_DEIDENTIFY_OPTION')
  })

  it('attaches a PDF report to a send: it arrives with the study', async () => {
    const uid = a.sampleStudies[1]!
    const pdfPath = join(suite.dir, 'verslag.pdf')
    await writeFile(pdfPath, samplePdf('Verslag bij verwijzing'))
    const sent = await at(a, '--json', 'send', uid, '--to', `${b.ura}/RAD`, '--reason', 'verwijzing', '--report', pdfPath, '--report-title', 'Verslag verwijzing')
    expect(sent.code, sent.stderr).toBe(0)
    const reports = await (await networkFetch(`${b.url}/api/studies/${uid}/reports`)).json() as { reports: Array<{ kind: string, title?: string }> }
    expect(reports.reports).toContainEqual(expect.objectContaining({ kind: 'pdf', title: 'Verslag verwijzing' }))
    const notThere = await at(a, 'send', uid, '--to', `${b.ura}/RAD`, '--reason', 'x', '--report', join(suite.dir, 'missing.pdf'))
    expect(notThere.code).not.toBe(0)
    expect(notThere.stderr).toContain('BEELDNET_ERR_IMPORT_SOURCE')
  })

  it('queries and pulls with the clinician named; refusals come back with their codes', async () => {
    const uid = a.sampleStudies[1]!
    const { study } = await a.node.store.getStudy(uid)
    const found = await at(b, '--json', 'query', '--at', a.ura, '--bsn', study.patient.bsn!, ...clinician)
    expect(found.code, found.stderr).toBe(0)
    expect((JSON.parse(found.stdout) as { studies: Array<{ studyInstanceUID: string }> }).studies.map((s) => s.studyInstanceUID)).toEqual([uid])

    const pulled = await at(b, 'pull', uid, '--at', a.ura, ...clinician)
    expect(pulled.code, pulled.stderr).toBe(0)
    expect(pulled.stdout).toMatch(/^allowed: /)
    const queued = await at(b, 'pull', uid, '--at', a.ura, '--purpose', 'second-opinion', ...clinician)
    expect(queued.stdout).toMatch(/^queued: /)

    const unknown = await at(a, 'send', uid, '--to', '99999999', '--reason', 'x')
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('BEELDNET_ERR_UNKNOWN_INSTITUTION')
    const noNode = await runBeeldnet(['node', '--data-dir', a.dataDir, 'transfers', '--node', 'http://127.0.0.1:1'])
    expect(noNode.stderr).toContain('BEELDNET_ERR_NODE_UNREACHABLE')
    const badTo = await at(a, 'send', uid, '--to', 'nowhere', '--reason', 'x')
    expect(badTo.code).not.toBe(0)
    expect(badTo.stderr).toContain('URA[/DEPARTMENT]')
  })
})
