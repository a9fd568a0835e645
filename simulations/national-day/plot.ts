// The national day's figure (issue 18): the share of studies available by time t (empirical CDF of the simulated
// clock's time-to-available) on a log time axis from seconds to a week, one line per path link class or modality,
// beside today's baseline, a DVD or a courier (1-3 days). Drawn by Vega-Lite, rendered to SVG by Vega in Node (no
// canvas, no browser), and to PNG by resvg's prebuilt binary.

import { writeFile } from 'node:fs/promises'
import { Resvg } from '@resvg/resvg-js'
import * as vega from 'vega'
import * as vegaLite from 'vega-lite'
import type { TopLevelSpec } from 'vega-lite'
import type { ExchangeTiming } from './clock.ts'

/** The baseline band, minutes: a DVD by courier or post arrives the next day to three days later. */
export const COURIER_BAND_MIN = { from: 24 * 60, to: 3 * 24 * 60 } as const
export const COURIER_LABEL = 'DVD / courier: 1-3 days'
/** Assumption, not a measurement: a courier sent the same day arrives in about 4 hours. */
export const SAME_DAY_COURIER_MIN = 4 * 60
export const SAME_DAY_COURIER_LABEL = 'same-day courier: ~4 h (assumption)'
/** The axis runs to a week, so the baseline band and a tail fit. */
const AXIS_MAX_MIN = 7 * 24 * 60

export type PlotSeriesBy = 'linkClass' | 'modality'

export interface PlotInit {
  institutions: number
  studies: number
  seed: number
  /** One line per path link class (default) or per modality; an 'all studies' line is always drawn. */
  by?: PlotSeriesBy
}

export const ALL_SERIES = 'all studies'
const SERIES_ORDER: Record<PlotSeriesBy, string[]> = {
  linkClass: ['100 Mbit', '1 Gbit', '10 Gbit (utilisation assumed)'],
  modality: ['CT', 'MR', 'CR/DX', 'MG']
}
const PALETTE = ['#e45756', '#4c78a8', '#f58518', '#54a24b']

/** The series' name of one exchange (the 10 Gbit class says its utilisation is assumed). */
export function seriesName (t: ExchangeTiming, by: PlotSeriesBy): string {
  if (by === 'modality') return t.modality === 'DX' ? 'CR/DX' : t.modality
  return t.linkClass === '10 Gbit' ? '10 Gbit (utilisation assumed)' : t.linkClass
}

interface Point { series: string, minutes: number, share: number }

/**
 * Empirical CDF points per series: share = available by t / all the series' exchanges (an exchange never delivered
 * keeps its line below 1). Starts at share 0 on the axis' left edge so the step is drawn from there.
 */
export function ecdfPoints (timings: readonly ExchangeTiming[], by: PlotSeriesBy, left: number): Point[] {
  const groups = new Map<string, ExchangeTiming[]>([[ALL_SERIES, timings.slice()]])
  for (const t of timings) {
    const name = seriesName(t, by)
    groups.set(name, [...(groups.get(name) ?? []), t])
  }
  const points: Point[] = []
  for (const [series, list] of groups) {
    const times = list.map((t) => t.timeToAvailableMin).filter((m): m is number => m !== null).sort((a, b) => a - b)
    points.push({ series, minutes: left, share: 0 })
    times.forEach((m, i) => {
      const point = { series, minutes: Math.max(m, left), share: (i + 1) / list.length }
      // Steps closer than 1/500 of a decade (well under a pixel) are drawn as one: a far smaller SVG, the same figure.
      const last = points.at(-1)!
      if (last.series === series && last.share > 0 && Math.log10(point.minutes) - Math.log10(last.minutes) < 1 / 500) last.share = point.share
      else points.push(point)
    })
    points.push({ series, minutes: AXIS_MAX_MIN, share: times.length / list.length })
  }
  return points
}

/** The Vega-Lite spec of the figure. */
export function timeToAvailableSpec (timings: readonly ExchangeTiming[], init: PlotInit): TopLevelSpec {
  const by = init.by ?? 'linkClass'
  const delivered = timings.map((t) => t.timeToAvailableMin).filter((m): m is number => m !== null)
  // The left edge: a power of ten at or below the fastest study, at most 0.1 min (6 s).
  const left = Math.min(0.1, 10 ** Math.floor(Math.log10(Math.max(1e-4, Math.min(...delivered, 0.1)))))
  const ticks = [1 / 60, 10 / 60, 1, 10, 60, 240, 24 * 60, 3 * 24 * 60].filter((v) => v >= left)
  const tickLabel = 'datum.value < 0.1 ? "1 s" : datum.value < 0.5 ? "10 s" : datum.value < 5 ? "1 min" : datum.value < 30 ? "10 min" ' +
    ': datum.value < 100 ? "1 h" : datum.value < 1000 ? "4 h" : datum.value < 2000 ? "1 day" : "3 days"'
  const x = { field: 'minutes', type: 'quantitative' as const, scale: { type: 'log' as const, domain: [left, AXIS_MAX_MIN] }, axis: { values: ticks, labelExpr: tickLabel, labelOverlap: false, title: 'time to available (from the request, log scale)' } }
  const fmt = (n: number): string => n.toLocaleString('en-GB')
  const present = new Set(timings.map((t) => seriesName(t, by)))
  const names = [...SERIES_ORDER[by].filter((name) => present.has(name)), ALL_SERIES]
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 640,
    height: 360,
    background: 'white',
    title: {
      text: `Time to available, simulated: ${fmt(init.institutions)} institutions, ${fmt(init.studies)} studies, seed ${init.seed}`,
      subtitle: ['Beeldnet at bench:wan\'s utilisation of each path\'s slower link, the links shared max-min fair;', '10 Gbit/s takes the 1 Gbit/s ratio (not measured)'],
      anchor: 'start'
    },
    layer: [
      {
        data: { values: [{ minutes: COURIER_BAND_MIN.from, to: COURIER_BAND_MIN.to }] },
        mark: { type: 'rect', color: '#999999', opacity: 0.25 },
        encoding: { x, x2: { field: 'to' } }
      },
      {
        data: { values: [{ minutes: Math.sqrt(COURIER_BAND_MIN.from * COURIER_BAND_MIN.to), share: 0.5, label: COURIER_LABEL }] },
        mark: { type: 'text', angle: 270, fontSize: 12, color: '#444444' },
        encoding: { x, y: { field: 'share', type: 'quantitative' }, text: { field: 'label' } }
      },
      {
        data: { values: [{ minutes: SAME_DAY_COURIER_MIN, share: 0.5, label: SAME_DAY_COURIER_LABEL }] },
        layer: [
          { mark: { type: 'rule', strokeDash: [4, 4], color: '#777777' }, encoding: { x } },
          { mark: { type: 'text', angle: 270, dy: -8, fontSize: 11, color: '#555555' }, encoding: { x, y: { field: 'share', type: 'quantitative' }, text: { field: 'label' } } }
        ]
      },
      {
        data: { values: ecdfPoints(timings, by, left) },
        mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2 },
        encoding: {
          x,
          y: { field: 'share', type: 'quantitative', scale: { domain: [0, 1] }, axis: { format: '%', title: 'share of studies available' } },
          color: {
            field: 'series',
            type: 'nominal',
            title: by === 'modality' ? 'modality' : 'path (slower link)',
            scale: { domain: names, range: names.map((name, i) => name === ALL_SERIES ? '#000000' : PALETTE[i % PALETTE.length]!) },
            legend: { labelLimit: 400 }
          }
        }
      }
    ]
  }
}

/** The figure as SVG text. */
export async function renderTimeToAvailableSvg (timings: readonly ExchangeTiming[], init: PlotInit): Promise<string> {
  const view = new vega.View(vega.parse(vegaLite.compile(timeToAvailableSpec(timings, init)).spec), { renderer: 'none' })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}

/** SVG to PNG (resvg, prebuilt; the system's sans-serif font for the text), at twice the SVG's size. */
export function svgToPng (svg: string): Buffer {
  return new Resvg(svg, { fitTo: { mode: 'zoom', value: 2 }, font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' } }).render().asPng()
}

/** Writes the figure to `svgPath`, and to `pngPath` when given. */
export async function writeTimeToAvailablePlot (timings: readonly ExchangeTiming[], init: PlotInit & { svgPath: string, pngPath?: string }): Promise<void> {
  const svg = await renderTimeToAvailableSvg(timings, init)
  await writeFile(init.svgPath, svg)
  if (init.pngPath !== undefined) await writeFile(init.pngPath, svgToPng(svg))
}
