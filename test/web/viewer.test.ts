import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { beforeAll, describe, expect, it } from 'vitest'
import type { LocalNetworkNode } from '../../simulations/scenarios/local-network.ts'
import { logIn, personPage, screenshot, SCREENSHOT_DIR, useBrowser } from '../helpers/browser.ts'
import { useLocalNetwork } from '../helpers/local-network.ts'
import { generateStudy } from '../../simulations/generator/index.ts'
import { cineInstance, compressedInstances, deliverByPush, importInto, largeSeries, measurementPhantom, type CineInstance, type CompressedInstances, type LargeSeries, type MeasurementPhantom } from '../helpers/viewer-samples.ts'

/*
 * The viewer in a real browser against real nodes: a clinician at B opens a CT that A sent, looks,
 * scrolls, windows and measures; compressed instances and a cine loop play; nothing is fetched from
 * anywhere but the node. Panes draw on the CPU here (kept in the browser as beeldnet.viewer.render):
 * the same pixels as WebGL, without depending on the headless browser's software GL.
 */

/** How long Cornerstone's tools wait for a second click before a press counts (mouseDownListener.js: 400 ms), and a margin. */
const DOUBLE_CLICK_MS = 450

interface CanvasStats { width: number, height: number, mean: number, distinct: number, hash: number }

/* The DOM as the functions run in the page see it (this suite type-checks without the DOM library). */
interface Canvas {
  width: number
  height: number
  getContext: (kind: '2d') => { getImageData: (x: number, y: number, w: number, h: number) => { data: Uint8ClampedArray } }
  getBoundingClientRect: () => { left: number, top: number, width: number, height: number }
}
interface PageGlobals {
  MutationObserver: new (changed: () => void) => { observe: (target: unknown, options: object) => void, disconnect: () => void }
  KeyboardEvent: new (type: string, init: object) => unknown
}

/** What a pane's canvas shows: enough to tell an image from a blank and one image from another. */
async function canvasOf (page: Page, pane: string): Promise<CanvasStats> {
  return page.locator(`[data-testid="pane-${pane}"] canvas.cornerstone-canvas`).evaluate((canvas) => {
    const c = canvas as unknown as Canvas
    const { data } = c.getContext('2d')!.getImageData(0, 0, c.width, c.height)
    let sum = 0
    let hash = 0
    const seen = new Set<number>()
    for (let i = 0; i < data.length; i += 4) {
      sum += data[i]!
      seen.add(data[i]!)
      hash = (hash * 31 + data[i]!) | 0
    }
    return { width: c.width, height: c.height, mean: sum / (data.length / 4), distinct: seen.size, hash }
  })
}

/** Until the pane shows an image (many grey levels, not a blank canvas) at image `index` (0-based). */
async function waitForImage (page: Page, pane: string, index = 0): Promise<CanvasStats> {
  try {
    await expect.poll(async () => page.getByTestId(`pane-${pane}`).getAttribute('data-index')).toBe(String(index))
    await expect.poll(async () => (await canvasOf(page, pane).catch(() => undefined))?.distinct ?? 0).toBeGreaterThan(16)
  } catch (err) {
    // What the page said instead, for whoever reads the failure.
    const said = await page.getByTestId(`pane-${pane}`).evaluate((e) => `data-count ${e.getAttribute('data-count')}: ${e.textContent}`).catch(() => 'no pane')
    throw new Error(`pane ${pane} shows no image ${index + 1} (${said}; page ${page.url()}): ${(err as Error).message}`, { cause: err })
  }
  return canvasOf(page, pane)
}

/**
 * Until what the pane shows is no longer `before` (a redraw after a key, a preset, a tool) and has
 * settled: the same in two looks a moment apart (a loaded machine may be caught mid-draw).
 */
async function waitForChange (page: Page, pane: string, before: CanvasStats): Promise<CanvasStats> {
  await expect.poll(async () => (await canvasOf(page, pane)).hash).not.toBe(before.hash)
  let last = await canvasOf(page, pane)
  for (;;) {
    await page.waitForTimeout(150)
    const now = await canvasOf(page, pane)
    if (now.hash === last.hash) return now
    last = now
  }
}

/**
 * Where on the page the phantom's two +2000 HU markers are drawn (white under the bone window; a
 * few pixels of rib may reach white too, which the median ignores): the left one first.
 */
async function markerSpots (page: Page, pane: string): Promise<Array<{ x: number, y: number, pixels: number }>> {
  return page.locator(`[data-testid="pane-${pane}"] canvas.cornerstone-canvas`).evaluate((canvas) => {
    const c = canvas as unknown as Canvas
    const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height)
    const halves: Array<{ xs: number[], ys: number[] }> = [{ xs: [], ys: [] }, { xs: [], ys: [] }]
    for (let y = 0; y < c.height; y++) {
      for (let x = 0; x < c.width; x++) {
        if (data[(y * c.width + x) * 4]! < 254) continue
        const half = halves[x < c.width / 2 ? 0 : 1]!
        half.xs.push(x)
        half.ys.push(y)
      }
    }
    const median = (values: number[]): number => values.sort((p, q) => p - q)[Math.floor(values.length / 2)]!
    const rect = c.getBoundingClientRect()
    return halves.map((h) => ({
      x: rect.left + (median(h.xs) + 0.5) * rect.width / c.width,
      y: rect.top + (median(h.ys) + 0.5) * rect.height / c.height,
      pixels: h.xs.length
    }))
  })
}

describe('the viewer, in a browser', () => {
  const suite = useLocalNetwork('viewer', 2, { demoAccounts: true })
  const { browser } = useBrowser()
  let a: LocalNetworkNode, b: LocalNetworkNode
  let phantom: MeasurementPhantom, compressed: CompressedInstances, cine: CineInstance, large: LargeSeries

  beforeAll(async () => {
    [a, b] = suite.nodes as [LocalNetworkNode, LocalNetworkNode]
    const samples = join(suite.dir, 'viewer-samples')
    phantom = await measurementPhantom(samples)
    compressed = await compressedInstances(samples)
    cine = await cineInstance(samples)
    large = await largeSeries(samples, 400)
    // The phantom CT arrives at B from A as any referral does; the rest is B's own (the compressed
    // study is an earlier one of the same patient).
    await deliverByPush(a, b, phantom.files, { note: 'CT ter beoordeling' })
    await importInto(b, [...compressed.files, ...cine.files, ...large.files])
  })

  async function clinicianAtB (): Promise<Awaited<ReturnType<typeof personPage>>> {
    const person = await personPage(browser())
    await person.page.addInitScript(() => { localStorage.setItem('beeldnet.viewer.render', 'cpu') })
    await logIn(person.page, b.url, 'arts')
    return person
  }

  it('opens a received CT from the inbox: the first image, scrolling, a window preset, a length and an angle in mm', async () => {
    const { page, problems, requests } = await clinicianAtB()
    const row = page.getByTestId('incoming-table').getByRole('row').filter({ hasText: 'CT ter beoordeling' })
    await row.getByRole('link', { name: 'Beelden bekijken' }).click()
    await page.waitForURL(/#\/viewer\/studies\//)
    const first = await waitForImage(page, 'a')
    expect(await page.getByTestId('overlay-patient').textContent()).toContain('Vera van den Berg')
    expect(await page.getByTestId('overlay-image').textContent()).toContain(`Beeld 1/${phantom.slices}`)

    // Scrolling by keys and by the wheel: the image number, the slice position and the pixels change.
    await page.getByRole('img', { name: /^Beeld 1 van/ }).focus()
    await page.keyboard.press('ArrowDown')
    await page.keyboard.press('ArrowDown')
    const third = await waitForImage(page, 'a', 2)
    expect(third.hash).not.toBe(first.hash)
    expect(await page.getByTestId('overlay-image').textContent()).toContain(`Positie ${phantom.sliceLocationsMm[2]!.toFixed(1)} mm`)
    const box = (await page.getByTestId('pane-a').boundingBox())!
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2)
    await page.mouse.wheel(0, 120)
    const fourth = await waitForImage(page, 'a', 3)
    expect(fourth.hash).not.toBe(third.hash)

    // A window preset: other pixels, and the overlay says which window.
    await page.getByRole('combobox', { name: /^Venster/ }).selectOption({ label: 'CT long' })
    const lung = await waitForChange(page, 'a', fourth)
    expect(await page.getByTestId('overlay-window').textContent()).toContain('W 1500 C -600')
    await screenshot(page, 'viewer-ct')

    // A length from marker to marker, as a radiologist drags it; the phantom says how far apart they are.
    await page.getByRole('combobox', { name: /^Venster/ }).selectOption({ label: 'CT bot' })
    const bone = await waitForChange(page, 'a', lung)
    await expect.poll(async () => page.getByTestId('overlay-window').textContent()).toContain('W 2000 C 300')
    const [left, right] = await markerSpots(page, 'a')
    // The phantom's markers are on one row: both found, level with each other.
    expect(Math.abs(left!.y - right!.y)).toBeLessThan(3)
    // A 5x5-pixel marker drawn about 2x: tens of white pixels each side, not a whole rib cage.
    for (const spot of [left!, right!]) expect(spot.pixels).toBeGreaterThan(20)
    for (const spot of [left!, right!]) expect(spot.pixels).toBeLessThan(400)
    await page.getByRole('button', { name: 'Lengte meten' }).click()
    // As a hand does it: press on the marker, hold (Cornerstone's tools hold a press back for 400 ms
    // to tell a double click), drag, and rest on the other marker before letting go: the tools take
    // drag events at most once a frame, and on a loaded machine the last ones before the release were
    // dropped (the line ended steps short, 12-19 % of its length).
    await page.mouse.move(left!.x, left!.y, { steps: 4 })
    await page.mouse.down()
    await page.waitForTimeout(DOUBLE_CLICK_MS)
    await page.mouse.move(right!.x, right!.y, { steps: 16 })
    await page.waitForTimeout(200)
    await page.mouse.move(right!.x + 0.5, right!.y)
    await page.waitForTimeout(200)
    await page.mouse.move(right!.x, right!.y)
    await page.waitForTimeout(200)
    await page.mouse.up()
    const measured = page.getByTestId('measurements')
    await expect.poll(async () => measured.textContent()).toMatch(/Lengte [0-9.]+ mm/)
    const mm = Number(/Lengte ([0-9.]+) mm/.exec((await measured.textContent())!)![1])
    expect(Math.abs(mm - phantom.markerDistanceMm) / phantom.markerDistanceMm, `${mm} mm, dragged ${JSON.stringify([left, right])}`).toBeLessThan(0.01)

    // An angle below the length (clear of its handles): along it, then straight up: a right angle.
    await page.getByRole('button', { name: 'Hoek meten' }).click()
    // Clicks apart by more than a double click's time, or the tools take the second as one.
    await page.mouse.click(left!.x, left!.y + 60)
    await page.waitForTimeout(DOUBLE_CLICK_MS)
    await page.mouse.click(right!.x, right!.y + 60)
    await page.waitForTimeout(DOUBLE_CLICK_MS)
    await page.mouse.click(right!.x, right!.y + 140)
    await expect.poll(async () => measured.textContent()).toMatch(/Hoek [0-9.]+°/)
    const degrees = Number(/Hoek ([0-9.]+)°/.exec((await measured.textContent())!)![1])
    expect(degrees).toBeGreaterThan(88.5)
    expect(degrees).toBeLessThan(91.5)
    await screenshot(page, 'viewer-measurements')

    // Invert, rotate and flip change what is drawn; reset draws the image as it first showed (the bone window gone).
    await page.getByRole('button', { name: 'Metingen wissen' }).click()
    await expect.poll(async () => measured.count()).toBe(0)
    const plain = await canvasOf(page, 'a')
    await page.getByRole('button', { name: 'Omkeren' }).click()
    const inverted = await waitForChange(page, 'a', plain)
    expect(inverted.mean).toBeGreaterThan(plain.mean)
    await page.getByRole('button', { name: 'Draai 90°' }).click()
    const rotated = await waitForChange(page, 'a', inverted)
    await page.getByRole('button', { name: 'Spiegel horizontaal' }).click()
    await waitForChange(page, 'a', rotated)
    await page.getByRole('button', { name: 'Herstellen' }).click()
    await expect.poll(async () => page.getByTestId('overlay-window').textContent()).toContain(`W ${phantom.window.width} C ${phantom.window.center}`)
    expect((await canvasOf(page, 'a')).hash).not.toBe(bone.hash)

    expect(problems).toEqual([])
    expect(requests.filter((u) => !u.startsWith(b.url) && !u.startsWith('data:') && !u.startsWith('blob:'))).toEqual([])
  })

  it('shows a prior study of the patient beside it, scrolled together when linked', async () => {
    const { page, problems } = await clinicianAtB()
    await page.goto(`${b.url}/#/viewer/studies/${phantom.studyInstanceUID}`)
    await waitForImage(page, 'a')
    await page.getByRole('combobox', { name: /^Vergelijken met ander onderzoek/ }).selectOption({ index: 1 })
    await page.getByRole('list', { name: 'Series van het andere onderzoek' }).getByRole('button').first().click()
    await waitForImage(page, 'b')
    await page.getByRole('button', { name: 'Samen bladeren' }).click()
    await page.getByTestId('pane-a').getByRole('img', { name: /^Beeld \d+ van/ }).focus()
    await page.keyboard.press('ArrowDown')
    await waitForImage(page, 'a', 1)
    await waitForImage(page, 'b', 1)
    await screenshot(page, 'viewer-prior')
    expect(problems).toEqual([])
  })

  it('decodes JPEG 2000 and RLE in the browser', async () => {
    const { page, problems } = await clinicianAtB()
    await page.goto(`${b.url}/#/viewer/studies/${compressed.studyInstanceUID}`)
    // Instance 1 is JPEG 2000, instance 2 RLE (the fixture's order).
    const j2k = await waitForImage(page, 'a', 0)
    await page.getByTestId('pane-a').getByRole('img', { name: /^Beeld \d+ van/ }).focus()
    await page.keyboard.press('ArrowDown')
    const rle = await waitForImage(page, 'a', 1)
    expect(rle.hash).not.toBe(j2k.hash)
    expect(await page.getByRole('alert').count()).toBe(0)
    expect(problems).toEqual([])
  })

  it('plays a multi-frame ultrasound loop and stops it', async () => {
    const { page, problems } = await clinicianAtB()
    await page.goto(`${b.url}/#/viewer/studies/${cine.studyInstanceUID}`)
    await waitForImage(page, 'a', 0)
    expect(await page.getByTestId('overlay-image').textContent()).toContain(`Beeld 1/${cine.frames}`)
    await page.getByRole('button', { name: 'Afspelen' }).click()
    const seen = new Set<string>()
    await expect.poll(async () => { seen.add((await page.getByTestId('pane-a').getAttribute('data-index'))!); return seen.size }).toBeGreaterThan(5)
    await page.getByRole('button', { name: 'Stoppen' }).click()
    const stopped = await page.getByTestId('pane-a').getAttribute('data-index')
    await page.waitForTimeout(500)
    expect(await page.getByTestId('pane-a').getAttribute('data-index')).toBe(stopped)
    expect(problems).toEqual([])
  })

  it('says so in the pane when a frame cannot be decoded, instead of a black canvas', async () => {
    // The generator's JPEG "stand-in" codestreams have a JPEG's markers but no decodable image.
    const broken = await generateStudy(join(suite.dir, 'undecodable'), { seed: 7190, series: [{ modality: 'US', instances: 1, rows: 64, columns: 64, transferSyntax: 'jpeg-baseline' }] })
    await importInto(b, broken.instances.map((i) => i.path))
    const { page } = await clinicianAtB()
    await page.goto(`${b.url}/#/viewer/studies/${broken.studyInstanceUID}`)
    await page.getByTestId('pane-a').getByRole('alert').filter({ hasText: 'Dit beeld kan hier niet worden getoond' }).waitFor()
  })

  it('gives the app\'s sentence, not a broken canvas, to IT and for a study not here', async () => {
    const admin = await personPage(browser())
    await logIn(admin.page, b.url, 'beheer')
    await admin.page.goto(`${b.url}/#/viewer/studies/${phantom.studyInstanceUID}`)
    await admin.page.getByText('Deze pagina is niet voor uw rol.').waitFor()
    expect(await admin.page.locator('canvas').count()).toBe(0)

    const { page } = await clinicianAtB()
    await page.goto(`${b.url}/#/viewer/studies/1.2.826.0.1.3680043.9.9999.1`)
    await page.getByText('Dit onderzoek is hier niet (meer) aanwezig.').waitFor()
    expect(await page.locator('canvas').count()).toBe(0)
  })

  it('shows a 400-slice CT without fetching it all first, and pages through every slice (timed)', async () => {
    const { page, problems, requests } = await clinicianAtB()
    const opened = Date.now()
    await page.goto(`${b.url}/#/viewer/studies/${large.studyInstanceUID}`)
    await waitForImage(page, 'a', 0)
    const firstImageS = (Date.now() - opened) / 1000
    const framesAtFirstImage = requests.filter((u) => u.includes('/frames/')).length
    // Frames come as the stack is looked at, nearest first: not the whole series up front.
    expect(framesAtFirstImage).toBeLessThan(large.slices / 4)
    // A person holding the arrow key: the next key once the pane shows the image the last one asked for.
    const fullPassS = await page.getByTestId('pane-a').evaluate(async (pane, slices) => {
      const { MutationObserver, KeyboardEvent } = globalThis as unknown as PageGlobals
      const viewport = pane.querySelector('.viewport')!
      const started = performance.now()
      for (let i = 1; i < slices; i++) {
        const shown = new Promise<void>((resolve) => {
          const observer = new MutationObserver(() => { if (pane.getAttribute('data-index') === String(i)) { observer.disconnect(); resolve() } })
          observer.observe(pane, { attributes: true, attributeFilter: ['data-index'] })
        })
        viewport.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowDown', bubbles: true }) as Event)
        await shown
      }
      return (performance.now() - started) / 1000
    }, large.slices)
    expect(await page.getByTestId('overlay-image').textContent()).toContain(`Beeld ${large.slices}/${large.slices}`)
    const timing = { slices: large.slices, rows: large.rows, columns: large.columns, firstImageS, fullPassS, framesFetched: requests.filter((u) => u.includes('/frames/')).length }
    await mkdir(SCREENSHOT_DIR, { recursive: true })
    await writeFile(join(SCREENSHOT_DIR, '..', 'viewer-timing.json'), JSON.stringify(timing, null, 2))
    console.log(`viewer, 400-slice CT on loopback: first image ${firstImageS.toFixed(2)} s, a full pass ${fullPassS.toFixed(1)} s`)
    expect(problems).toEqual([])
  })
})
