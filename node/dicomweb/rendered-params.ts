import type { Viewport, VoiFunction, VoiWindow } from '../imaging/render-frame.ts'
import { NotAcceptableError, RenderParameterError } from './errors.ts'
import { parseAccept, type MediaType } from './multipart.ts'

/*
 * The query parameters and media types of DICOMweb's rendered resources (PS3.18 8.3.5): window,
 * viewport, quality, and image/jpeg or image/png by Accept. Anything else given is refused with
 * BEELDNET_ERR_RENDER_PARAMETER naming the parameter, never ignored or guessed at.
 */

export interface RenderParameters {
  format: 'jpeg' | 'png'
  window?: VoiWindow
  viewport?: Viewport
  quality?: number
}

/** Largest viewport side drawn: a 4096 x 4096 RGBA image is 64 MiB. */
export const MAX_VIEWPORT_SIDE = 4096

const FUNCTIONS: Record<string, VoiFunction> = { linear: 'LINEAR', 'linear-exact': 'LINEAR_EXACT', sigmoid: 'SIGMOID' }
const NUMBER = /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/
const INTEGER = /^[+-]?[0-9]{1,9}$/

/** The one value of a query parameter: given twice is ambiguous, so refused. */
function single (query: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = query[name]
  if (Array.isArray(value)) throw new RenderParameterError(name, value.join('&'), 'give it once')
  return value
}

export function parseWindow (value: string): VoiWindow {
  const parts = value.split(',').map((p) => p.trim())
  const usage = 'center,width[,function]: two numbers and linear, linear-exact or sigmoid'
  if (parts.length < 2 || parts.length > 3 || !NUMBER.test(parts[0]!) || !NUMBER.test(parts[1]!)) throw new RenderParameterError('window', value, usage)
  const fn = FUNCTIONS[(parts[2] ?? 'linear').toLowerCase()]
  if (fn === undefined) throw new RenderParameterError('window', value, usage)
  const center = Number(parts[0])
  const width = Number(parts[1])
  // PS3.3 C.11.2.1.2: a linear window is at least 1 wide, the others more than 0.
  if (fn === 'LINEAR' ? width < 1 : width <= 0) throw new RenderParameterError('window', value, fn === 'LINEAR' ? 'a linear window is at least 1 wide' : 'the width must be above 0')
  return { center, width, function: fn }
}

export function parseViewport (value: string, frame: { rows: number, columns: number }): Viewport {
  const parts = value.split(',').map((p) => p.trim())
  const usage = 'vw,vh[,sx,sy,sw,sh]: whole numbers, the viewport\'s size and optionally the source region'
  if ((parts.length !== 2 && parts.length !== 6) || !parts.every((p) => INTEGER.test(p))) throw new RenderParameterError('viewport', value, usage)
  const [vw, vh, sx, sy, sw, sh] = parts.map(Number) as [number, number, number?, number?, number?, number?]
  if (vw < 1 || vh < 1 || vw > MAX_VIEWPORT_SIDE || vh > MAX_VIEWPORT_SIDE) throw new RenderParameterError('viewport', value, `the viewport is 1 to ${MAX_VIEWPORT_SIDE} pixels wide and high`)
  if (sx === undefined) return { width: vw, height: vh }
  const left = sw! < 0 ? sx + sw! : sx
  const top = sh! < 0 ? sy! + sh! : sy!
  if (sw === 0 || sh === 0 || left < 0 || top < 0 || left + Math.abs(sw!) > frame.columns || top + Math.abs(sh!) > frame.rows) {
    throw new RenderParameterError('viewport', value, `the source region must lie inside the ${frame.columns} x ${frame.rows} frame and not be empty`)
  }
  return { width: vw, height: vh, region: { x: sx, y: sy!, width: sw!, height: sh! } }
}

export function parseQuality (value: string): number {
  if (!/^[0-9]{1,3}$/.test(value) || Number(value) < 1 || Number(value) > 100) throw new RenderParameterError('quality', value, 'a whole number from 1 to 100')
  return Number(value)
}

/** JPEG unless the client prefers PNG; 406 when it accepts neither. */
export function renderedFormat (accept: MediaType[]): 'jpeg' | 'png' {
  for (const m of accept) {
    const type = m.type.toLowerCase()
    if (type === 'image/jpeg' || type === 'image/*' || type === '*/*') return 'jpeg'
    if (type === 'image/png') return 'png'
  }
  throw new NotAcceptableError('rendered images are sent as image/jpeg (the default) or image/png')
}

/**
 * The parameters of a rendered (`window: true`) or thumbnail request. An `accept` query parameter
 * stands for the Accept header (PS3.18 8.3.3.1); parameters not defined for the resource (a
 * thumbnail's window, or any unknown name) are ignored, as PS3.18 wants.
 */
export function renderParameters (query: Record<string, string | string[] | undefined>, acceptHeader: string | undefined, frame: { rows: number, columns: number }, allowed: { window: boolean }): RenderParameters {
  const window = allowed.window ? single(query, 'window') : undefined
  const viewport = single(query, 'viewport')
  const quality = single(query, 'quality')
  const accept = query.accept === undefined ? acceptHeader : [query.accept].flat().join(',')
  return {
    format: renderedFormat(parseAccept(accept)),
    ...(window === undefined ? {} : { window: parseWindow(window) }),
    ...(viewport === undefined ? {} : { viewport: parseViewport(viewport, frame) }),
    ...(quality === undefined ? {} : { quality: parseQuality(quality) })
  }
}
