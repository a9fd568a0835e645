import { execFile } from 'node:child_process'
import { mkdir, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import type { LocalNetworkNode } from '../../simulations/scenarios/local-network.ts'
import { fetchAs } from '../helpers/api-caller.ts'
import { logIn, personPage, screenshot, useBrowser } from '../helpers/browser.ts'
import { dcmtk } from '../helpers/dcmtk.ts'
import { useLocalNetwork } from '../helpers/local-network.ts'
import { samplePdf } from '../helpers/sample-pdf.ts'
import { importInto, measurementPhantom, VIEWER_PATIENT, type MeasurementPhantom } from '../helpers/viewer-samples.ts'

/*
 * A patient's own copy, as a clinician hands it over and the patient opens it at home: the
 * clinician makes a link on the study page (the code shown once), the patient opens the link in a
 * browser without an account, a wrong code is refused and counted, the right one shows the study,
 * the viewer and the downloads; the ZIP holds a DICOMDIR dcmtk reads; revoking ends the access;
 * the patient's access report names the link.
 */

describe('a share link for the patient, in a browser', () => {
  const suite = useLocalNetwork('share-link', 1, { demoAccounts: true })
  const { browser } = useBrowser()
  let node: LocalNetworkNode
  let phantom: MeasurementPhantom

  beforeAll(async () => {
    [node] = suite.nodes as [LocalNetworkNode]
    phantom = await measurementPhantom(join(suite.dir, 'samples'))
    await importInto(node, phantom.files)
    // A PDF report with the study, as a clinician attaches one.
    const attached = await fetchAs(node)(`${node.url}/api/studies/${phantom.studyInstanceUID}/reports`, {
      method: 'POST', headers: { 'content-type': 'application/pdf' }, body: samplePdf('Verslag CT fantoom')
    })
    expect(attached.status).toBe(201)
  })

  it('is made by a clinician, opened by the patient with the code, downloaded, and ended by revoking', async () => {
    const clinician = await personPage(browser())
    await logIn(clinician.page, node.url, 'arts')
    await clinician.page.goto(`${node.url}/#/studies/${phantom.studyInstanceUID}`)
    // The clinician's own copy of the same medium: the study page's download.
    // (The page's PDF report, shown in a frame, is a download of its own in headless Chromium.)
    const [ownCopy] = await Promise.all([clinician.page.waitForEvent('download', { predicate: (d) => d.url().endsWith('/media.zip') }), clinician.page.getByRole('link', { name: 'Downloaden als medium (ZIP met DICOMDIR)' }).click()])
    expect(ownCopy.suggestedFilename()).toMatch(/^PDI-20250312-.*\.zip$/)
    expect((await stat((await ownCopy.path())!)).size).toBeGreaterThan(phantom.slices * 128 * 1024)
    await clinician.page.getByRole('button', { name: 'Link maken' }).click()
    const url = (await clinician.page.getByTestId('share-url').textContent())!
    const code = (await clinician.page.getByTestId('share-code').textContent())!
    expect(url).toMatch(/\/share\/[A-Za-z0-9_-]{40,}$/)
    expect(code).toMatch(/^[A-Z2-9]{4}-[A-Z2-9]{4}$/)
    await screenshot(clinician.page, 'share-made')

    // The patient, in a browser of their own, no account.
    const patient = await personPage(browser())
    await patient.page.addInitScript(() => { localStorage.setItem('beeldnet.viewer.render', 'cpu') })
    await patient.page.goto(url)
    await patient.page.getByLabel('Toegangscode').fill('AAAA-BBBB')
    await patient.page.getByRole('button', { name: 'Openen' }).click()
    await patient.page.getByText('Deze code klopt niet.', { exact: false }).waitFor()
    await screenshot(patient.page, 'share-code')
    await patient.page.getByLabel('Toegangscode').fill(code.toLowerCase())
    await patient.page.getByRole('button', { name: 'Openen' }).click()
    await patient.page.getByRole('heading', { name: /^Uw onderzoek/ }).waitFor()
    // The viewer shows the study's first image.
    await expect.poll(async () => patient.page.locator('[data-testid="pane-a"] canvas.cornerstone-canvas').evaluate((c) => {
      const canvas = c as unknown as { width: number, height: number, getContext: (k: '2d') => { getImageData: (x: number, y: number, w: number, h: number) => { data: Uint8ClampedArray } } }
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height)
      const seen = new Set<number>()
      for (let i = 0; i < data.length; i += 4) seen.add(data[i]!)
      return seen.size
    }).catch(() => 0)).toBeGreaterThan(16)
    await screenshot(patient.page, 'share-patient')

    // The study as a ZIP with a DICOMDIR (IHE PDI), which dcmtk reads; the report as a PDF.
    const downloads = join(suite.dir, 'downloads')
    await mkdir(downloads, { recursive: true })
    const [zip] = await Promise.all([patient.page.waitForEvent('download'), patient.page.getByRole('link', { name: /ZIP met DICOMDIR/ }).click()])
    const zipPath = join(downloads, 'study.zip')
    await zip.saveAs(zipPath)
    await promisify(execFile)('python3', ['-m', 'zipfile', '-e', zipPath, join(downloads, 'medium')])
    const medium = join(downloads, 'medium')
    expect(await readdir(medium)).toContain('DICOMDIR')
    const dump = await dcmtk('dcmdump', [join(medium, 'DICOMDIR')])
    expect(dump.code).toBe(0)
    expect(dump.stdout).toContain('PATIENT')
    expect(dump.stdout).toContain(VIEWER_PATIENT.id)
    expect((dump.stdout.match(/\(0004,1430\) CS \[IMAGE/g) ?? []).length).toBe(phantom.slices)
    const [pdf] = await Promise.all([patient.page.waitForEvent('download'), patient.page.getByRole('link', { name: /^Verslag/ }).click()])
    expect(pdf.suggestedFilename()).toMatch(/\.pdf$/)

    // The clinician sees the link used (one wrong code) and revokes it; the patient's access ends.
    await clinician.page.reload()
    const row = clinician.page.getByTestId('shares').getByRole('row').nth(1)
    await expect.poll(async () => row.textContent()).toContain('1 verkeerde code(s)')
    expect(await row.textContent()).toContain('1 / 5')
    await row.getByRole('button', { name: 'Intrekken' }).click()
    await expect.poll(async () => row.textContent()).toContain('ingetrokken')
    await patient.page.reload()
    await patient.page.getByText('Deze link is verlopen, ingetrokken', { exact: false }).waitFor()

    // The patient's access report (NEN 7513) names the link as the one who looked and downloaded.
    const report = await (await fetchAs(node, 'auditor')(`${node.url}/api/audit/patients/${VIEWER_PATIENT.bsn}`)).text()
    expect(report).toMatch(/patient via share link/)

    for (const person of [clinician, patient]) {
      expect(person.problems).toEqual([])
      expect(person.requests.filter((u) => /^(https?|wss?):/.test(u) && !u.startsWith(node.url))).toEqual([])
    }
  })
})
