import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { pino } from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { parseDocument } from 'yaml'
import { BeeldnetNode } from '../../node/beeldnet-node.ts'
import { initNode } from '../../node/init.ts'
import { nodePaths } from '../../node/paths.ts'
import { freePort } from '../../simulations/bench/processes.ts'
import { generateStudy } from '../../simulations/generator/index.ts'
import { DEMO_PASSWORD, ensureDemoAccounts } from '../../simulations/scenarios/demo-accounts.ts'
import { personPage, screenshot, useBrowser } from '../helpers/browser.ts'
import { startStorescp } from '../helpers/dcmtk.ts'
import { until } from '../helpers/patience.ts'
import { useTempDirs } from '../helpers/temp-dir.ts'

/*
 * The export queue to the PACS in a real browser: a clinician sends a study while the PACS is
 * down and reads that it is queued; IT sees it waiting with why, cancels it, and once the PACS
 * (dcmtk's storescp) is back queues it again; it completes.
 */

const tempDir = useTempDirs()

async function logIn (page: Page, url: string, username: string): Promise<void> {
  await page.goto(url)
  await page.getByLabel('Gebruikersnaam').fill(username)
  await page.getByLabel('Wachtwoord').fill(DEMO_PASSWORD)
  await page.getByRole('button', { name: 'Inloggen' }).click()
  await page.getByRole('navigation').waitFor()
}

describe('exports to the PACS in the web app', () => {
  const { browser } = useBrowser()

  it('a clinician queues a study for the PACS; IT cancels it while the PACS is down and queues it again once it is back', async () => {
    const dataDir = await tempDir('web-exports')
    await initNode(dataDir, { name: 'Isala' })
    await ensureDemoAccounts(dataDir, 0)
    const pacsPort = await freePort()
    const configPath = nodePaths(dataDir).config
    const config = parseDocument(await readFile(configPath, 'utf8'))
    config.setIn(['dimse', 'destinations'], [{ aeTitle: 'ISALA_PACS', host: '127.0.0.1', port: pacsPort }])
    config.setIn(['pacs', 'destination'], 'ISALA_PACS')
    // After the first failure the next attempt is an hour away: the export waits where IT can see it.
    config.setIn(['pacs', 'exportBackoffSeconds'], 3600)
    await writeFile(configPath, config.toString())
    const node = new BeeldnetNode({ dataDir, env: { BEELDNET_HTTP_PORT: '0', BEELDNET_LOG_LEVEL: 'silent' }, logger: pino({ level: 'silent' }) })
    onTestFinished(async () => { await node.stop() })
    await node.start()
    const study = await generateStudy(join(dataDir, 'study-in'), { seed: 79, patient: { id: 'AMC-11', issuer: 'AMC' }, series: [{ modality: 'CR', instances: 1, rows: 16, columns: 16 }] })
    const session = node.store.beginImport()
    for (const i of study.instances) await session.add(i.path)
    await session.commit()

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
    const pacs = await startStorescp('ISALA_PACS', join(dataDir, 'pacs-in'), pacsPort)
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
