import { utilities, type Types } from '@cornerstonejs/core'

/* What the toolbar does to one pane's view: window presets, rotation, flips, inversion, reset. */

/** CT windows as radiologists set them (width and level in HU); 'image' is the window the images carry. */
const PRESETS = {
  image: undefined,
  softTissue: { width: 400, center: 40 },
  lung: { width: 1500, center: -600 },
  bone: { width: 2000, center: 300 },
  brain: { width: 80, center: 40 }
} as const

export type WindowPreset = keyof typeof PRESETS
export const WINDOW_PRESETS = Object.keys(PRESETS) as WindowPreset[]

export function setWindow (viewport: Types.IStackViewport, preset: WindowPreset): void {
  const window = PRESETS[preset]
  if (window === undefined) viewport.resetProperties()
  else viewport.setProperties({ voiRange: utilities.windowLevel.toLowHighRange(window.width, window.center) })
  viewport.render()
}

export function rotate (viewport: Types.IStackViewport, degrees: number): void {
  const { rotation = 0 } = viewport.getViewPresentation()
  viewport.setViewPresentation({ rotation: (rotation + degrees + 360) % 360 })
  viewport.render()
}

export function flip (viewport: Types.IStackViewport, direction: 'horizontal' | 'vertical'): void {
  const camera = viewport.getCamera()
  viewport.setCamera(direction === 'horizontal' ? { flipHorizontal: camera.flipHorizontal !== true } : { flipVertical: camera.flipVertical !== true })
  viewport.render()
}

export function invert (viewport: Types.IStackViewport): void {
  viewport.setProperties({ invert: viewport.getProperties().invert !== true })
  viewport.render()
}

/** Back to how the image first showed: fitted, unrotated, its own window. Measurements stay. */
export function resetView (viewport: Types.IStackViewport): void {
  viewport.resetCamera()
  viewport.resetProperties()
  viewport.render()
}
