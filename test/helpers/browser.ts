import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, inject } from 'vitest'
import { DEMO_PASSWORD } from '../../simulations/scenarios/demo-accounts.ts'
import { CHROMIUM_ARGS } from '../setup/outside-tools.ts'
import { PATIENCE_MS } from './patience.ts'

/*
 * A real headless Chromium (the one the global setup found: npm's, else Debian's) driven by playwright-core.
 * One browser per suite; each person gets their own context (own cookies), at 1280x800.
 */

export const SCREENSHOT_DIR = join(import.meta.dirname, '..', '..', 'test-output', 'screenshots')

export function useBrowser (): { browser: () => Browser } {
  let browser: Browser | undefined
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: inject('chromiumPath'),
      args: CHROMIUM_ARGS
    })
  })
  afterAll(async () => { await browser?.close() })
  return { browser: () => browser! }
}

/** A page of its own for one person, with every request the page makes collected (to find any to elsewhere). */
export async function personPage (browser: Browser, options: { viewport?: { width: number, height: number } } = {}): Promise<{ page: Page, requests: string[], problems: string[] }> {
  const context = await browser.newContext({ viewport: options.viewport ?? { width: 1280, height: 800 } })
  // Waits for what the page shows, as long as a loaded machine needs (playwright's own default is 30 s).
  context.setDefaultTimeout(PATIENCE_MS)
  const page = await context.newPage()
  const requests: string[] = []
  const problems: string[] = []
  page.on('request', (r) => { requests.push(r.url()) })
  page.on('pageerror', (err) => { problems.push(`page error: ${err.message}`) })
  // A refusal the app answers in words is no problem: 401/403/404, and 410 (a patient's share link that has ended).
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 4(0[134]|10)/.test(m.text())) problems.push(`console: ${m.text()}`) })
  return { page, requests, problems }
}

/** Logs `username` (a demo account) in on the web app at `url`, as a person would, and waits for the app's navigation. */
export async function logIn (page: Page, url: string, username: string): Promise<void> {
  await page.goto(url)
  await page.getByLabel('Gebruikersnaam').fill(username)
  await page.getByLabel('Wachtwoord').fill(DEMO_PASSWORD)
  await page.getByRole('button', { name: 'Inloggen' }).click()
  await page.getByRole('navigation').waitFor()
}

export async function screenshot (page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOT_DIR, { recursive: true })
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), fullPage: true })
}
