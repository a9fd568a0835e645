import { Enums, eventTarget, utilities } from '@cornerstonejs/core'
import { Enums as ToolEnums } from '@cornerstonejs/tools'
import { useEffect, useRef, useState } from 'preact/hooks'
import { useI18n } from '../i18n.ts'
import { disableStackViewport, enableStackViewport, measurementsOf, showStack, slicePositionMm, viewportOf, type Measurement } from './cornerstone.ts'
import type { Stack } from './stacks.ts'

/*
 * One viewport: a stack of frames drawn by Cornerstone into an element Preact leaves alone, the
 * overlay a radiologist expects in its corners (patient, study, series, image number, slice
 * position, window), a slider and keys for the stack, and the pane's measurements as text.
 */

export interface PaneLabels {
  patient: string
  patientLine: string
  study: string
  series: string
}

export interface PaneView {
  index: number
  count: number
  windowWidth?: number
  windowCenter?: number
  positionMm?: number
  inverted: boolean
}

interface PaneProps {
  id: string
  stack: Stack | undefined
  labels: PaneLabels | undefined
  selected: boolean
  onSelect: () => void
  /** the stack moved to another image (`from` the image it left) */
  onImageChange?: (index: number, from: number) => void
}

/** Width and centre as DICOM and radiologists say them (Cornerstone keeps a range, a pixel narrower). */
function windowOf (range: { lower: number, upper: number }): { windowWidth: number, windowCenter: number } {
  return utilities.windowLevel.toWindowLevel(range.lower, range.upper)
}

const STEP_KEYS: Record<string, number> = { ArrowUp: -1, ArrowLeft: -1, ArrowDown: 1, ArrowRight: 1, PageUp: -10, PageDown: 10 }

export function Pane ({ id, stack, labels, selected, onSelect, onImageChange }: PaneProps): preact.JSX.Element {
  const { t } = useI18n()
  const element = useRef<HTMLDivElement>(null)
  const [view, setView] = useState<PaneView>({ index: 0, count: 0, inverted: false })
  const [measurements, setMeasurements] = useState<Measurement[]>([])
  const [firstImageMs, setFirstImageMs] = useState<number | undefined>(undefined)
  /** frames the browser could not load or decode; the pane says so while one of them is the one shown */
  const [failed, setFailed] = useState<ReadonlySet<string>>(new Set())
  /** the image the pane last showed: a move is told from where it was */
  const shownIndex = useRef(0)
  const changed = useRef(onImageChange)
  changed.current = onImageChange

  useEffect(() => {
    const el = element.current!
    enableStackViewport(id, el)
    const update = (): void => {
      const vp = viewportOf(id)
      if (vp === undefined) return
      const ids = vp.getImageIds()
      const index = vp.getCurrentImageIdIndex()
      const { voiRange, invert } = vp.getProperties()
      const imageId = ids[index]
      setView({
        index,
        count: ids.length,
        inverted: invert === true,
        ...(voiRange === undefined || voiRange === null ? {} : windowOf(voiRange)),
        ...(imageId === undefined ? {} : { positionMm: slicePositionMm(imageId) })
      })
      if (index !== shownIndex.current) {
        const from = shownIndex.current
        shownIndex.current = index
        changed.current?.(index, from)
      }
    }
    const measured = (): void => { setMeasurements(measurementsOf(el)) }
    const events = [Enums.Events.STACK_NEW_IMAGE, Enums.Events.VOI_MODIFIED, Enums.Events.IMAGE_RENDERED]
    for (const e of events) el.addEventListener(e, update)
    const annotationEvents = [ToolEnums.Events.ANNOTATION_COMPLETED, ToolEnums.Events.ANNOTATION_MODIFIED, ToolEnums.Events.ANNOTATION_REMOVED]
    for (const e of annotationEvents) eventTarget.addEventListener(e, measured)
    return () => {
      for (const e of events) el.removeEventListener(e, update)
      for (const e of annotationEvents) eventTarget.removeEventListener(e, measured)
      disableStackViewport(id, el)
    }
  }, [id])

  useEffect(() => {
    const vp = viewportOf(id)
    if (stack === undefined || vp === undefined) return
    const started = performance.now()
    setFirstImageMs(undefined)
    setFailed(new Set())
    // A new stack starts at its first image: not a move a linked pane should follow.
    shownIndex.current = 0
    const el = element.current!
    const rendered = (): void => { setFirstImageMs(Math.round(performance.now() - started)) }
    // A frame the browser cannot decode (a syntax without a decoder here, damaged data): said in the
    // pane, not left as a black canvas.
    const ours = new Set(stack.imageIds)
    const loadFailed = (e: Event): void => {
      const imageId = (e as CustomEvent<{ imageId?: string }>).detail.imageId ?? ''
      if (ours.has(imageId)) setFailed((f) => new Set(f).add(imageId))
    }
    el.addEventListener(Enums.Events.IMAGE_RENDERED, rendered, { once: true })
    eventTarget.addEventListener(Enums.Events.IMAGE_LOAD_FAILED, loadFailed)
    void showStack(vp, stack.imageIds, 0).catch(() => { setFailed((f) => new Set(f).add(stack.imageIds[0] ?? '')) })
    return () => {
      el.removeEventListener(Enums.Events.IMAGE_RENDERED, rendered)
      eventTarget.removeEventListener(Enums.Events.IMAGE_LOAD_FAILED, loadFailed)
    }
  }, [id, stack])

  const go = (index: number): void => {
    const vp = viewportOf(id)
    if (vp === undefined || view.count === 0) return
    void vp.setImageIdIndex(Math.max(0, Math.min(view.count - 1, index)))
  }
  const onKeyDown = (e: KeyboardEvent): void => {
    const step = STEP_KEYS[e.key]
    if (step !== undefined) go(view.index + step)
    else if (e.key === 'Home') go(0)
    else if (e.key === 'End') go(view.count - 1)
    else return
    e.preventDefault()
  }
  const round = (n: number | undefined): string => n === undefined ? '' : String(Math.round(n))

  return (
    <section class={`pane${selected ? ' selected' : ''}`} aria-label={t('viewer.pane', { series: labels?.series ?? '' })}
      data-testid={`pane-${id}`} data-index={view.index} data-count={view.count} data-first-image-ms={firstImageMs}
      onPointerDown={onSelect} onFocusIn={onSelect}>
      <div class='viewport' ref={element} tabIndex={0} role='img' aria-label={t('viewer.image', { index: view.index + 1, count: view.count })}
        onKeyDown={onKeyDown} onContextMenu={(e) => { e.preventDefault() }} />
      {labels !== undefined && (
        <>
          <div class='overlay top-left' data-testid='overlay-patient'>{labels.patient}<br />{labels.patientLine}</div>
          <div class='overlay top-right'>{labels.study}</div>
          <div class='overlay bottom-left' data-testid='overlay-image'>
            {labels.series}<br />
            {t('viewer.imageNumber', { index: view.index + 1, count: view.count })}
            {view.positionMm !== undefined && <><br />{t('viewer.position', { mm: view.positionMm.toFixed(1) })}</>}
          </div>
          <div class='overlay bottom-right' data-testid='overlay-window'>
            {view.windowWidth !== undefined && t('viewer.window', { width: round(view.windowWidth), center: round(view.windowCenter) })}
            {view.inverted && <><br />{t('viewer.inverted')}</>}
          </div>
        </>
      )}
      {failed.has(stack?.imageIds[view.index] ?? '') && <p role='alert' class='pane-error'>{t('viewer.cannotShow')}</p>}
      {view.count > 1 && (
        <input type='range' class='stack-slider' min={1} max={view.count} value={view.index + 1} aria-label={t('viewer.slider')}
          onInput={(e) => { go(Number((e.currentTarget).value) - 1) }} />
      )}
      {measurements.length > 0 && (
        <ul class='measurements' aria-label={t('viewer.measurements')} data-testid='measurements'>
          {measurements.map((m) => <li key={m.uid}>{t(m.kind === 'length' ? 'viewer.length' : 'viewer.angle', { value: m.value.toFixed(1), unit: m.unit })}</li>)}
        </ul>
      )}
    </section>
  )
}
