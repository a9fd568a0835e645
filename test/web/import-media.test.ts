import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { LocalNetworkNode } from '../../simulations/scenarios/local-network.ts'
import { writeMediaLayout } from '../../simulations/generator/index.ts'
import { logIn, personPage, screenshot, useBrowser } from '../helpers/browser.ts'
import { useLocalNetwork } from '../helpers/local-network.ts'

/*
 * IT at the desk with a patient's DVD: the folder chosen whole in a real browser, sent to the
 * running node file by file with progress, and the per-file report of `node import` at the end;
 * a clinician then finds the study on the node. A clinician imports a disc too, seeing what is on
 * it and leaving out a study.
 */

describe('importing media in the web app', () => {
  const suite = useLocalNetwork('import-media', 1, { demoAccounts: true })
  const { browser } = useBrowser()
  let a: LocalNetworkNode

  beforeAll(() => { a = suite.nodes[0]! })

  it('uploads a DVD folder by its DICOMDIR with progress and a per-file report; the study is then found', async () => {
    const dvd = join(suite.dir, 'dvd')
    const { studies } = await writeMediaLayout(dvd, [{ seed: 95, series: [{ modality: 'MR', instances: 4, rows: 32, columns: 32 }] }])
    await mkdir(join(dvd, 'VIEWER'))
    await writeFile(join(dvd, 'VIEWER', 'VIEWER.EXE'), Buffer.alloc(4096, 0x90))
    const series = join('DICOM', 'PAT00001', 'STU00001', 'SER00001')
    // A scratched disc: one listed image is gone, another is no longer DICOM.
    await rm(join(dvd, series, 'IMG00004'))
    await writeFile(join(dvd, series, 'IMG00003'), 'unreadable sector')
    const study = studies[0]!

    const it = await personPage(browser())
    await logIn(it.page, a.url, 'beheer')
    await it.page.getByRole('link', { name: 'Media importeren' }).click()
    await it.page.getByLabel('Map van de DVD of USB-stick').setInputFiles(dvd)
    await it.page.getByText('5 bestand(en) gekozen').waitFor()
    await it.page.getByRole('button', { name: 'Inhoud lezen' }).click()
    // What the DICOMDIR lists: one study, ticked.
    const overview = it.page.getByTestId('import-overview')
    await overview.waitFor()
    expect(await overview.getByRole('checkbox').count()).toBe(1)
    expect(await overview.getByRole('checkbox').isChecked()).toBe(true)
    await overview.getByRole('button', { name: '1 onderzoek(en) importeren' }).click()

    const report = it.page.getByTestId('import-report')
    await report.waitFor()
    // Progress counts files and bytes: all of both once the last file is sent.
    await it.page.getByText('3 van 3 bestand(en) verstuurd (100%)').waitFor()
    expect(await it.page.getByTestId('import-progress').getAttribute('data-done')).toBe('3')
    expect(await report.getByRole('status').textContent()).toBe('3 bestand(en): 2 opgeslagen, 0 al aanwezig, 1 geweigerd; 1 onderzoek(en)')
    const rows = it.page.getByTestId('import-files').locator('tbody tr')
    expect(await rows.count()).toBe(3)
    // The folder's own name comes first, as the browser names the files of a chosen folder.
    const rejected = rows.filter({ has: it.page.locator('td.error') })
    expect(await rejected.textContent()).toContain(`dvd/${series}/IMG00003`)
    expect(await rejected.textContent()).toContain('BEELDNET_ERR_NOT_DICOM')
    expect(await it.page.locator('[data-status="stored"]').count()).toBe(2)
    expect(await it.page.getByTestId('import-missing').textContent()).toContain(`dvd/${series}/IMG00004`)
    expect(await it.page.getByTestId('import-files').textContent()).not.toContain('VIEWER')
    expect(await it.page.getByTestId('import-studies').textContent()).toContain(study.studyInstanceUID)
    // IT has no study pages: the study is named, not linked.
    expect(await it.page.getByTestId('import-studies').getByRole('link').count()).toBe(0)
    await screenshot(it.page, 'import-media')
    expect(it.problems).toEqual([])

    // A clinician finds the imported study on the node, to send on.
    const clinician = await personPage(browser())
    await logIn(clinician.page, a.url, 'arts')
    await clinician.page.getByRole('link', { name: 'Versturen' }).click()
    await clinician.page.getByLabel('BSN').fill(study.patient.bsn!)
    await clinician.page.getByRole('button', { name: 'Zoeken' }).click()
    const results = clinician.page.getByTestId('study-results')
    await results.getByRole('row').filter({ hasText: 'MR' }).first().waitFor()
    expect(await a.node.store.getStudy(study.studyInstanceUID)).toMatchObject({ study: { numberOfInstances: 2 } })
  })

  it('lets a clinician see what is on a disc, untick a study and import only the other; the study\'s page is a link away', async () => {
    const dvd = join(suite.dir, 'dvd-two')
    const patient = { name: 'de Vries^Sanne', id: '7700123', birthDate: '19800315' }
    const { studies } = await writeMediaLayout(dvd, [
      { seed: 96, patient, studyDate: '20240510', description: 'CT abdomen', accession: 'EXT96', series: [{ modality: 'CT', instances: 2, rows: 32, columns: 32 }] },
      { seed: 97, patient, studyDate: '20230111', description: 'MR knie links', accession: 'EXT97', series: [{ modality: 'MR', instances: 2, rows: 32, columns: 32 }, { modality: 'MR', instances: 1, rows: 32, columns: 32 }] }
    ])
    const [kept, left] = [studies[0]!, studies[1]!]

    const clinician = await personPage(browser())
    await logIn(clinician.page, a.url, 'arts')
    await clinician.page.getByRole('link', { name: 'Cd/dvd van patiënt inlezen' }).click()
    await clinician.page.getByLabel('Map van de DVD of USB-stick').setInputFiles(dvd)
    await clinician.page.getByRole('button', { name: 'Inhoud lezen' }).click()
    const overview = clinician.page.getByTestId('import-overview')
    await overview.waitFor()
    // One patient, both studies, each ticked.
    const patients = overview.getByTestId('import-patient')
    expect(await patients.count()).toBe(1)
    expect(await patients.locator('legend').textContent()).toBe('Sanne de Vries, patiëntnummer 7700123, geboren 15-03-1980')
    const ct = overview.getByRole('checkbox', { name: /CT abdomen/ })
    const mr = overview.getByRole('checkbox', { name: /MR knie links/ })
    expect(await ct.isChecked()).toBe(true)
    expect(await mr.isChecked()).toBe(true)
    expect(await overview.locator(`[data-uid="${left.studyInstanceUID}"]`).textContent()).toContain('11-01-2023 MR knie links (MR; accessienummer EXT97; 2 serie(s), 3 bestand(en))')
    await screenshot(clinician.page, 'import-media-overview')
    await mr.uncheck()
    await overview.getByRole('button', { name: '1 onderzoek(en) importeren' }).click()

    const report = clinician.page.getByTestId('import-report')
    await report.waitFor()
    expect(await report.getByRole('status').textContent()).toBe('2 bestand(en): 2 opgeslagen, 0 al aanwezig, 0 geweigerd; 1 onderzoek(en)')
    expect(await clinician.page.getByTestId('import-files').textContent()).not.toContain('STU00002')
    expect(await a.node.store.getStudy(kept.studyInstanceUID)).toMatchObject({ study: { numberOfInstances: 2 } })
    await expect(a.node.store.getStudy(left.studyInstanceUID)).rejects.toMatchObject({ code: 'BEELDNET_ERR_STUDY_NOT_FOUND' })
    expect(await report.getByTestId('import-pacs-hint').textContent()).toContain('"Naar ons PACS"')

    await report.getByRole('link', { name: /CT abdomen/ }).click()
    await clinician.page.getByRole('heading', { name: 'Onderzoek: CT abdomen' }).waitFor()
    expect(clinician.page.url()).toContain(`#/studies/${kept.studyInstanceUID}`)
    await clinician.page.getByRole('heading', { name: 'Naar ons PACS' }).waitFor()
    expect(clinician.problems).toEqual([])
  })

  it('is IT\'s admin page; a clinician has the same page under their own menu entry', async () => {
    const clinician = await personPage(browser())
    await logIn(clinician.page, a.url, 'arts')
    await clinician.page.goto(`${a.url}/#/admin/import`)
    await clinician.page.getByText('Deze pagina is niet voor uw rol.').waitFor()
    expect(await clinician.page.getByRole('link', { name: 'Media importeren' }).count()).toBe(0)
    expect(await clinician.page.getByRole('link', { name: 'Cd/dvd van patiënt inlezen' }).count()).toBe(1)
  })
})
