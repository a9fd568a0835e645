import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { describe, expect, it } from 'vitest'
import { runClock } from '../../../simulations/national-day/clock.ts'
import { ciDay } from '../../../simulations/national-day/model.ts'
import {
  ALL_SERIES, COURIER_LABEL, ecdfPoints, renderTimeToAvailableSvg, SAME_DAY_COURIER_LABEL, seriesName, writeTimeToAvailablePlot
} from '../../../simulations/national-day/plot.ts'

/** Every text node of a parsed XML tree. */
function texts (node: unknown, out: string[] = []): string[] {
  if (typeof node === 'string' || typeof node === 'number') out.push(String(node))
  else if (Array.isArray(node)) for (const n of node) texts(n, out)
  else if (node !== null && typeof node === 'object') for (const [k, v] of Object.entries(node)) if (!k.startsWith('@_')) texts(v, out)
  return out
}

function parseSvg (svg: string): { root: Record<string, unknown>, text: string[] } {
  expect(XMLValidator.validate(svg)).toBe(true)
  const root = new XMLParser({ ignoreAttributes: false }).parse(svg) as Record<string, unknown>
  return { root, text: texts(root) }
}

describe('the time-to-available figure', () => {
  const plan = ciDay(18)
  // Two refused, so a line that does not reach 100 % is drawn too.
  const { timings } = runClock(plan.institutions, plan.exchanges, [{ outcome: 'refused', code: 'BEELDNET_ERR_POLICY_REFUSED' }, { outcome: 'ended', code: 'BEELDNET_ERR_TRANSFER_FAILED' }])
  const init = { institutions: plan.institutions.length, studies: plan.exchanges.length, seed: plan.seed }

  it('is a valid SVG naming every link class line, the baseline band, the assumption and the run', async () => {
    const { root, text } = parseSvg(await renderTimeToAvailableSvg(timings, init))
    expect(root.svg).toBeDefined()
    const names = [...new Set(timings.map((t) => seriesName(t, 'linkClass')))]
    expect(names.length).toBeGreaterThan(1)
    for (const name of [...names, ALL_SERIES, COURIER_LABEL, SAME_DAY_COURIER_LABEL]) expect(text).toContain(name)
    expect(text).toContain(`Time to available, simulated: 12 institutions, 60 studies, seed 18`)
    expect(text).toEqual(expect.arrayContaining(['1 s', '1 min', '1 h', '1 day', '3 days']))
  })

  it('draws one line per modality when asked', async () => {
    const { text } = parseSvg(await renderTimeToAvailableSvg(timings, { ...init, by: 'modality' }))
    for (const name of new Set(timings.map((t) => seriesName(t, 'modality')))) expect(text).toContain(name)
    expect(text).toContain('CR/DX')
  })

  it('counts a study never delivered in its line: the share stops below 1', () => {
    const all = ecdfPoints(timings, 'linkClass', 0.01).filter((p) => p.series === ALL_SERIES)
    expect(all[0]).toMatchObject({ share: 0 })
    expect(all.at(-1)!.share).toBeCloseTo(58 / 60, 12)
    expect(all.map((p) => p.share)).toEqual(all.map((p) => p.share).sort((a, b) => a - b))
  })

  it('writes the SVG and a PNG', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'beeldnet-plot-'))
    try {
      await writeTimeToAvailablePlot(timings, { ...init, svgPath: join(dir, 'tta.svg'), pngPath: join(dir, 'tta.png') })
      parseSvg(await readFile(join(dir, 'tta.svg'), 'utf8'))
      const png = await readFile(join(dir, 'tta.png'))
      expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
      expect(png.readUInt32BE(16)).toBeGreaterThan(1000) // IHDR width: twice the SVG's
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
