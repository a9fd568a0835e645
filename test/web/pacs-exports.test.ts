import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { logIn, personPage, screenshot, useBrowser } from '../helpers/browser.ts'
import { startStorescp } from '../helpers/dcmtk.ts'
import { importStudy, initPacsNode, PACS_AE, startPacsNode } from '../helpers/pacs-node.ts'
import { until } from '../helpers/patience.ts'
import { useTempDirs } from '../helpers/temp-dir.ts'

/*
 * The export queue to the PACS in a real browser: a clinician sends a study while the PACS is
 * down and reads that it is queued; IT sees it waiting with why, cancels it, and once the PACS
 * (dcmtk's storescp) is back queues it again; it completes.
 */

const tempDir = useTempDirs()

describe('exports to the PACS in the web app', () => {
  const { browser } = useBrowser()

  it('a clinician queues a study for the PACS; IT cancels it while the PACS is down and queues it again once it is back', async () => {
    const dataDir = await tempDir('web-exports')
    // After the first failure the next attempt is an hour away: the export waits where IT can see it.
    const { pacsPort } = await initPacsNode(dataDir, { pacs: { exportBackoffSeconds: 3600 }, demoAccounts: true })
    const node = await startPacsNode(dataDir)
    const study = await importStudy(node, dataDir, { seed: 79, patientId: 'AMC-11', instances: 1 })

    // The clinician: no BSN to find the patient by, so held; with the local id entered, queued.
    const clinician = await personPage(browser())
    // Closed before the node stops: an open page keeps its event stream to the node's server.
    onTestFinished(async () => { await clinician.page.context().close() })
    await logIn(clinician.page, node.url, 'arts')
    await clinician.page.goto(`${node.url}/#/studies/${encodeURIComponent(study.studyInstanceUID)}`)
    await clinician.page.getByRole('button', { name: 'Naar ons PACS sturen' }).click()
    await clinician.page.getByLabel('Patiëntnummer in ons ziekenhuis').fill('ISA-11')
    await clinician.page.getByRole('button', { name: 'Naar ons PACS sturen' }).last().click()
    await clinician.page.getByRole('status').filter({ hasText: 'In de wachtrij voor het PACS als patiënt ISA-11' }).waitFor()
    const [queued] = await node.pacs.exports.list()
    expect(queued).toBeDefined()
    await until(async () => (await node.pacs.exports.get(queued!.exportId))?.nextAttemptAt !== undefined, 'the export to wait for its next attempt')

    // IT: the export waits with its reason; cancelled, then queued again once the PACS is back.
    const admin = await personPage(browser())
    onTestFinished(async () => { await admin.page.context().close() })
    await logIn(admin.page, node.url, 'beheer')
    await admin.page.getByRole('link', { name: 'Overdrachten' }).click()
    const row = admin.page.locator(`tr[data-export="${queued!.exportId}"]`)
    await row.getByText('in wachtrij').waitFor()
    await row.getByText(/could not be reached/).waitFor()
    expect(await row.textContent()).not.toContain('ISA-11')
    await screenshot(admin.page, 'admin-pacs-export-waiting')
    await row.getByRole('button', { name: 'Annuleren' }).click()
    await row.getByText('geannuleerd').waitFor()
    expect((await node.pacs.exports.get(queued!.exportId))?.state).toBe('cancelled')

    await mkdir(join(dataDir, 'pacs-in'))
    const pacs = await startStorescp(PACS_AE, join(dataDir, 'pacs-in'), pacsPort)
    onTestFinished(async () => { await pacs.stop() })
    await row.getByRole('button', { name: 'Opnieuw' }).click()
    await until(async () => (await node.pacs.exports.get(queued!.exportId))?.state === 'complete', 'the export queued again by IT to complete')
    await admin.page.reload()
    await row.getByText('compleet').waitFor()
    await screenshot(admin.page, 'admin-pacs-export-complete')
    expect(await pacs.settled(1)).toHaveLength(1)
    // (A node never enrolled answers some status reads with 503; the app shows that, it is no fault of the page.)
    expect([...clinician.problems, ...admin.problems].filter((p) => !p.includes('status of 503'))).toEqual([])
  })
})
