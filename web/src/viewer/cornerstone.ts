import {
  cache, Enums, getRenderingEngine, getShouldUseCPURendering, init as initCore, metaData, RenderingEngine,
  setUseCPURendering, Settings, type Types
} from '@cornerstonejs/core'
import dicomImageLoader, { init as initLoader } from '@cornerstonejs/dicom-image-loader'
import { utilities as metadataUtilities } from '@cornerstonejs/metadata'
import {
  AngleTool, annotation, addTool, Enums as ToolEnums, init as initTools, LengthTool, PanTool, PlanarRotateTool,
  StackScrollTool, ToolGroupManager, utilities as toolUtilities, WindowLevelTool, ZoomTool
} from '@cornerstonejs/tools'

/*
 * Cornerstone3D, set up once for the viewer page: the DICOMweb image loader (its decoders run in a
 * web worker with WebAssembly, both served by the node), the tools, one rendering engine, one tool
 * group for every pane. Frames come from the node's own WADO-RS as stored (transfer-syntax=*), the
 * session cookie going with each request as with any same-origin request.
 */

export const ENGINE_ID = 'beeldnet-viewer'
const TOOL_GROUP_ID = 'beeldnet-stack'
/** What the viewer keeps decoded in the browser at most; beyond it the least recently used go. */
const CACHE_BYTES = 384 * 1024 * 1024
/** Frames fetched ahead around the one shown, nearest first: a 1,000-slice CT is never fetched whole up front. */
const PREFETCH_FRAMES = 48

export type ToolName = 'WindowLevel' | 'Pan' | 'Zoom' | 'Length' | 'Angle' | 'Rotate'
const TOOLS = {
  WindowLevel: WindowLevelTool,
  Pan: PanTool,
  Zoom: ZoomTool,
  Length: LengthTool,
  Angle: AngleTool,
  Rotate: PlanarRotateTool
} as const
const MEASUREMENTS: ReadonlySet<string> = new Set([LengthTool.toolName, AngleTool.toolName])

let ready: Promise<void> | undefined

/**
 * Sets Cornerstone up once per page load (the loader's init empties its caches, so never twice).
 * `cpu`: draw without WebGL (machines whose WebGL is broken, and the browser tests).
 */
export async function initViewer (options: { cpu: boolean }): Promise<void> {
  ready ??= (async () => {
    styleAttributesThroughCssom()
    initCore()
    if (options.cpu) setUseCPURendering(true)
    cache.setMaxCacheSize(CACHE_BYTES)
    initLoader({ maxWebWorkers: Math.max(1, Math.min(3, (navigator.hardwareConcurrency || 2) - 1)) })
    initTools()
    // The tools' cursors are SVG images from blob: URLs, which the node's CSP does not allow (img-src
    // 'self'): the stylesheet gives the panes a plain crosshair instead.
    Settings.getRuntimeSettings().set('useCursors', false)
    toolUtilities.stackPrefetch.setConfiguration({ maxImagesToPrefetch: PREFETCH_FRAMES, preserveExistingPool: false })
    const group = ToolGroupManager.createToolGroup(TOOL_GROUP_ID)!
    for (const tool of [...Object.values(TOOLS), StackScrollTool]) {
      addTool(tool)
      group.addTool(tool.toolName)
    }
    const { MouseBindings } = ToolEnums
    group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] })
    group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] })
    group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] })
    setLeftButtonTool('WindowLevel')
    // The engine registers itself; panes find it by id.
    void new RenderingEngine(ENGINE_ID)
  })()
  await ready
}

/**
 * Cornerstone's annotation text sets its style with setAttribute('style'), which the node's CSP
 * refuses (no inline styles) with a console error per label. Style set through the CSSOM is not
 * inline markup and CSP allows it: SVG elements here take a style attribute that way.
 */
function styleAttributesThroughCssom (): void {
  const setAttribute = SVGElement.prototype.setAttribute
  SVGElement.prototype.setAttribute = function (this: SVGElement, name: string, value: string) {
    if (name.toLowerCase() === 'style') this.style.cssText = value
    else setAttribute.call(this, name, value)
  }
}

let leftButton: ToolName | undefined

/** The tool on the left mouse button; measurements stay visible (passive) once another takes it. */
export function setLeftButtonTool (name: ToolName): void {
  const group = ToolGroupManager.getToolGroup(TOOL_GROUP_ID)!
  if (leftButton === name) return
  if (leftButton !== undefined) {
    const previous = TOOLS[leftButton].toolName
    if (MEASUREMENTS.has(previous)) group.setToolPassive(previous)
    else group.setToolDisabled(previous)
  }
  group.setToolActive(TOOLS[name].toolName, { bindings: [{ mouseButton: ToolEnums.MouseBindings.Primary }] })
  leftButton = name
}

export function usingCpu (): boolean {
  return getShouldUseCPURendering()
}

/** Gives a pane's element to the engine as a stack viewport, in the shared tool group, with prefetching. */
export function enableStackViewport (viewportId: string, element: HTMLDivElement): Types.IStackViewport {
  const engine = getRenderingEngine(ENGINE_ID)!
  engine.enableElement({ viewportId, type: Enums.ViewportType.STACK, element, defaultOptions: { background: [0, 0, 0] as Types.Point3 } })
  // Cornerstone takes the element out of the tab order; a keyboard user pages through it with the arrows.
  element.tabIndex = 0
  ToolGroupManager.getToolGroup(TOOL_GROUP_ID)!.addViewport(viewportId, ENGINE_ID)
  return engine.getViewport(viewportId) as Types.IStackViewport
}

export function disableStackViewport (viewportId: string, element: HTMLDivElement): void {
  toolUtilities.stackPrefetch.disable(element)
  toolUtilities.cine.stopClip(element)
  ToolGroupManager.getToolGroup(TOOL_GROUP_ID)?.removeViewports(ENGINE_ID, viewportId)
  getRenderingEngine(ENGINE_ID)?.disableElement(viewportId)
}

export function viewportOf (viewportId: string): Types.IStackViewport | undefined {
  return getRenderingEngine(ENGINE_ID)?.getViewport(viewportId) as Types.IStackViewport | undefined
}

/** Shows `imageIds` from `index` on, and fetches ahead around whatever is shown. */
export async function showStack (viewport: Types.IStackViewport, imageIds: string[], index: number): Promise<void> {
  await viewport.setStack(imageIds, index)
  viewport.render()
  toolUtilities.stackPrefetch.enable(viewport.element)
}

/** Registers a WADO-RS instance's metadata (DICOM JSON) for one frame's image id. */
export async function registerFrame (imageId: string, instance: unknown): Promise<void> {
  dicomImageLoader.wadors.metaDataManager.add(imageId, instance as never)
  // Cornerstone 5's own provider reads the same JSON (typed as a promise, returns synchronously); if
  // it cannot, the loader's provider above serves it.
  try { await metadataUtilities.addDicomWebInstance(imageId, instance as never) } catch { /* the loader's provider has it */ }
}

/** Slice position along the stack's normal, in mm, of the image shown (undefined for projections). */
export function slicePositionMm (imageId: string): number | undefined {
  const plane = metaData.get('imagePlaneModule', imageId) as { imagePositionPatient?: number[], sliceLocation?: number } | undefined
  if (typeof plane?.sliceLocation === 'number') return plane.sliceLocation
  return plane?.imagePositionPatient?.[2]
}

export function playCine (element: HTMLDivElement, framesPerSecond: number): void {
  toolUtilities.cine.playClip(element, { framesPerSecond, loop: true })
}

export function stopCine (element: HTMLDivElement): void {
  toolUtilities.cine.stopClip(element)
}

export interface Measurement { uid: string, kind: 'length' | 'angle', value: number, unit: string }

/** The length and angle measurements drawn on a pane's images, as numbers. */
export function measurementsOf (element: HTMLDivElement): Measurement[] {
  const out: Measurement[] = []
  for (const name of MEASUREMENTS) {
    for (const a of annotation.state.getAnnotations(name, element) ?? []) {
      const stats = Object.values(a.data.cachedStats ?? {})[0] as { length?: number, angle?: number, unit?: string } | undefined
      if (name === LengthTool.toolName && typeof stats?.length === 'number') out.push({ uid: a.annotationUID ?? '', kind: 'length', value: stats.length, unit: stats.unit ?? 'mm' })
      if (name === AngleTool.toolName && typeof stats?.angle === 'number') out.push({ uid: a.annotationUID ?? '', kind: 'angle', value: stats.angle, unit: '°' })
    }
  }
  return out
}

export function removeMeasurements (element: HTMLDivElement): void {
  for (const name of MEASUREMENTS) {
    for (const a of annotation.state.getAnnotations(name, element) ?? []) if (a.annotationUID !== undefined) annotation.state.removeAnnotation(a.annotationUID)
  }
}
