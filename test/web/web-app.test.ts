import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { LocalNetworkNode } from '../../simulations/scenarios/local-network.ts'
import { logIn, personPage, screenshot, useBrowser } from '../helpers/browser.ts'
import { restartWithConfig, useLocalNetwork } from '../helpers/local-network.ts'
import { samplePdf } from '../helpers/sample-pdf.ts'

/*
 * The web app in a real browser against real nodes and a real registry: clinicians at two
 * hospitals send, watch, read, find, request and approve, as they would on a ward; the app speaks
 * Dutch by default and English on request, and a clinician cannot open IT's pages.
 */

describe('the web app, in a browser, between two hospitals', () => {
  const suite = useLocalNetwork('web-app', 2, { demoAccounts: true })
  const { browser } = useBrowser()
  let a: LocalNetworkNode, b: LocalNetworkNode

  beforeAll(async () => {
    [a, b] = suite.nodes as [LocalNetworkNode, LocalNetworkNode]
    // A lets B pull only with someone's approval.
    await restartWithConfig(suite, a, [[['policy', 'pull'], [{ ura: b.ura, decision: 'queue' }]]])
  })

  it('sends a study with its report from A to B, live to complete; B sees it with its report and thumbnails', async () => {
    const study = (await a.node.store.getStudy(a.sampleStudies[0]!)).study
    const atA = await personPage(browser())
    await logIn(atA.page, a.url, 'arts')
    await screenshot(atA.page, 'inbox-empty')

    await atA.page.getByRole('link', { name: 'Versturen' }).click()
    await atA.page.getByLabel('BSN').fill(study.patient.bsn!)
    await atA.page.getByRole('button', { name: 'Zoeken' }).click()
    await atA.page.getByTestId('study-results').getByRole('button', { name: 'Kies' }).first().click()
    const destination = atA.page.getByRole('combobox', { name: 'Ziekenhuis (typ om te zoeken)' })
    await destination.fill(b.name.split(' ')[0]!)
    await destination.press('ArrowDown')
    await destination.press('Enter')
    await atA.page.getByLabel('Afdeling').selectOption('RAD')
    await atA.page.getByLabel('Notitie voor de ontvanger').fill('Graag beoordelen, vraagstelling in het verslag')
    await atA.page.getByLabel('Reden van verzenden').fill('verwijzing')
    const pdfPath = join(suite.dir, 'verslag.pdf')
    await writeFile(pdfPath, samplePdf('Verslag CT thorax'))
    await atA.page.getByLabel('Verslag (PDF, optioneel)').setInputFiles(pdfPath)
    await screenshot(atA.page, 'send')
    await atA.page.getByRole('button', { name: 'Versturen' }).click()

    // The progress page follows the transfer to complete, and keeps doing so across a reload.
    await atA.page.waitForURL(/#\/transfers\//)
    await atA.page.reload()
    await atA.page.locator('[data-testid="transfer-state"][data-state="complete"]').waitFor()
    expect(await atA.page.getByTestId('transfer-state').textContent()).toContain('compleet aangekomen')
    await screenshot(atA.page, 'progress-complete')

    const atB = await personPage(browser())
    await logIn(atB.page, b.url, 'arts')
    const row = atB.page.getByTestId('incoming-table').getByRole('row').filter({ hasText: a.name })
    await row.first().waitFor()
    expect(await row.first().textContent()).toContain('Graag beoordelen')
    expect(await row.first().textContent()).toContain('compleet')
    await screenshot(atB.page, 'inbox')
    await row.first().getByRole('link').first().click()
    await atB.page.getByRole('heading', { name: 'Verslagen' }).waitFor()
    // Both reports: the SR from A's PACS as text, and the PDF the clinician attached.
    await expect.poll(async () => atB.page.getByTestId('report').count()).toBe(2)
    const thumbnails = atB.page.locator('ul.series img')
    await expect.poll(async () => thumbnails.evaluateAll((imgs) => imgs.length > 0 && imgs.every((i) => { const img = i as unknown as { complete: boolean, naturalWidth: number }; return img.complete && img.naturalWidth > 0 }))).toBe(true)
    await screenshot(atB.page, 'study')
    for (const person of [atA, atB]) {
      expect(person.problems).toEqual([])
      // Nothing from elsewhere on the network: no CDN fonts or scripts (the browser's own PDF viewer is chrome://).
      expect(person.requests.filter((u) => /^(https?|wss?):/.test(u) && !u.startsWith(a.url) && !u.startsWith(b.url))).toEqual([])
    }
  })

  it('finds A\'s studies from B and requests one; A approves; it arrives at B', async () => {
    const wanted = (await a.node.store.getStudy(a.sampleStudies[1]!)).study
    const atB = await personPage(browser())
    await logIn(atB.page, b.url, 'arts')
    await atB.page.getByRole('link', { name: 'Zoeken bij ziekenhuis' }).click()
    // A select's name includes its chosen option once the list has loaded: match the label's start.
    await atB.page.getByLabel(/^Ziekenhuis/).selectOption(a.ura)
    await atB.page.getByLabel('BSN').fill(wanted.patient.bsn!)
    await atB.page.getByLabel('Geboortedatum (JJJJMMDD)').fill(wanted.patient.birthDate)
    await atB.page.getByLabel('Doel').selectOption('second-opinion')
    await atB.page.getByRole('button', { name: 'Zoeken' }).click()
    await atB.page.getByTestId('peer-results').getByRole('button', { name: 'Opvragen' }).first().click()
    await expect.poll(async () => atB.page.getByTestId('pull-answer').first().textContent()).toContain('wacht op goedkeuring')
    await screenshot(atB.page, 'find')

    const atA = await personPage(browser())
    await logIn(atA.page, a.url, 'arts')
    await atA.page.getByRole('link', { name: 'Verzoeken' }).click()
    const request = atA.page.getByTestId('approval').filter({ hasText: 'B. de Boer' })
    await request.first().waitFor()
    await screenshot(atA.page, 'approvals')
    await request.first().getByRole('button', { name: 'Goedkeuren' }).click()

    // B hears the decision (a notice) and the study arrives in B's inbox.
    await atB.page.getByRole('status').filter({ hasText: 'toegestaan' }).first().waitFor()
    await atB.page.getByRole('status').filter({ hasText: `Onderzoek ${wanted.studyInstanceUID.slice(-12)} is compleet` }).waitFor()
    await atB.page.getByRole('link', { name: 'Ontvangen en verzonden' }).click()
    await expect.poll(async () => atB.page.getByTestId('incoming-table').getByRole('row').filter({ hasText: 'compleet' }).count()).toBeGreaterThanOrEqual(2)
    expect([...atA.problems, ...atB.problems]).toEqual([])
  })

  it('keeps IT pages from clinicians, and speaks English on request', async () => {
    const clinician = await personPage(browser())
    await logIn(clinician.page, a.url, 'arts')
    await clinician.page.goto(`${a.url}/#/admin/users`)
    await clinician.page.getByText('Deze pagina is niet voor uw rol.').waitFor()
    expect(await clinician.page.getByRole('link', { name: 'Gebruikers' }).count()).toBe(0)
    await clinician.page.getByRole('button', { name: 'Switch to English' }).click()
    await clinician.page.getByText('This page is not for your role.').waitFor()
    await clinician.page.getByRole('link', { name: 'Received and sent' }).click()
    await clinician.page.getByRole('heading', { name: 'Received and sent' }).waitFor()
    expect(await clinician.page.locator('html').getAttribute('lang')).toBe('en')
    // The choice stays after a reload.
    await clinician.page.reload()
    await clinician.page.getByRole('heading', { name: 'Received and sent' }).waitFor()

    // On a tablet the pages fit the width; nothing scrolls sideways but a wide table's own box.
    const tablet = await personPage(browser(), { viewport: { width: 768, height: 1024 } })
    await logIn(tablet.page, b.url, 'arts')
    await tablet.page.getByRole('heading', { name: 'Ontvangen en verzonden' }).waitFor()
    expect(await tablet.page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true)
    await screenshot(tablet.page, 'inbox-tablet')

    // A mistyped password is a sentence, not a stack trace; the app runs under a content security policy.
    const admin = await personPage(browser())
    await admin.page.goto(a.url)
    await admin.page.getByLabel('Gebruikersnaam').fill('beheer')
    await admin.page.getByLabel('Wachtwoord').fill('not the password')
    await admin.page.getByRole('button', { name: 'Inloggen' }).click()
    await admin.page.getByRole('alert').filter({ hasText: 'Gebruikersnaam of wachtwoord klopt niet' }).waitFor()
    expect((await fetch(`${a.url}/`)).headers.get('content-security-policy')).toContain("default-src 'self'")
    await logIn(admin.page, a.url, 'beheer')
    await admin.page.getByRole('heading', { name: /Status van deze node/ }).waitFor()
    await screenshot(admin.page, 'admin-health')
    await admin.page.getByRole('link', { name: 'Logboek' }).click()
    await admin.page.getByRole('button', { name: 'Logboek controleren' }).click()
    await admin.page.getByText(/Het logboek is intact/).waitFor()
    await screenshot(admin.page, 'admin-audit')

    // IT adds a clinician; the password is shown once, and the account can log in with it.
    await admin.page.getByRole('link', { name: 'Gebruikers' }).click()
    await admin.page.getByLabel('Gebruikersnaam', { exact: true }).fill('radioloog')
    await admin.page.getByLabel('Naam', { exact: true }).fill('dr. R. Bos')
    await admin.page.getByLabel('UZI-nummer').fill('111222333')
    await admin.page.getByLabel('UZI-rolcode').fill('01.015')
    await admin.page.getByRole('button', { name: 'Gebruiker toevoegen' }).click()
    const created = await admin.page.getByRole('status').filter({ hasText: 'radioloog aangemaakt' }).textContent()
    const password = /: (\S+)$/.exec(created ?? '')![1]!
    await screenshot(admin.page, 'admin-users')
    const login = await fetch(`${a.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'radioloog', password }) })
    expect(login.status).toBe(200)
  })
})
