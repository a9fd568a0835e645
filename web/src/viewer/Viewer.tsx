import { useEffect, useRef, useState } from 'preact/hooks'
import { ApiError } from '../api.ts'
import { dicomDate, ErrorLine, Loading, personName, useLoad } from '../components.tsx'
import { useI18n } from '../i18n.ts'
import { ReportView } from '../pages/Study.tsx'
import type { Series, Study, StudyDetail } from '../types.ts'
import { initViewer, playCine, removeMeasurements, setLeftButtonTool, stopCine, usingCpu, viewportOf, type ToolName } from './cornerstone.ts'
import { Pane, type PaneLabels } from './Pane.tsx'
import { NODE_SOURCE, type ViewerSource } from './source.ts'
import { imageSeries, loadStack, type Stack } from './stacks.ts'
import { flip, invert, resetView, rotate, setWindow, WINDOW_PRESETS, type WindowPreset } from './view-operations.ts'
import './viewer.css'

/*
 * The viewer page (#/viewer/studies/<uid>): the study's series as thumbnails, one or two panes
 * (the second for another series or a prior study of the same patient, scrolled together when
 * linked), the tools on the left mouse button, window presets, and the study's reports beside the
 * images. Everything comes from a ViewerSource: the node's API and its own DICOMweb unless said
 * otherwise (a patient's share link reads the same shapes elsewhere, see source.ts).
 */

type PaneId = 'a' | 'b'
const PANES: PaneId[] = ['a', 'b']
const TOOL_KEYS: ToolName[] = ['WindowLevel', 'Pan', 'Zoom', 'Length', 'Angle', 'Rotate']

interface Shown { stack: Stack, labels: PaneLabels, series: Series }

export interface ViewerProps {
  uid: string
  /** draw without WebGL (#/viewer/studies/<uid>?render=cpu) */
  cpu?: boolean
  /** where the study comes from: the node as the logged-in clinician unless said otherwise */
  source?: ViewerSource
}

function labelsFor (study: Study, series: Series, lang: string): PaneLabels {
  const p = study.patient
  return {
    patient: personName(p.name),
    patientLine: [p.bsn === undefined ? p.id : `BSN ${p.bsn}`, dicomDate(p.birthDate, lang)].filter((x) => x !== '').join(' · '),
    study: [dicomDate(study.date, lang), study.description].filter((x) => x !== '').join(' · '),
    series: `${series.number ?? ''} ${series.modality} ${series.description}`.trim()
  }
}

export function Viewer ({ uid, cpu = false, source = NODE_SOURCE }: ViewerProps): preact.JSX.Element {
  const { t, lang } = useI18n()
  const study = useLoad(async () => source.study(uid), [uid])
  const reports = useLoad(async () => source.reports(uid), [uid])
  // Drawing on the CPU is asked for per link (?render=cpu) or kept in the browser (beeldnet.viewer.render).
  const ready = useLoad(async () => { await initViewer({ cpu: cpu || localStorage.getItem('beeldnet.viewer.render') === 'cpu' }); return usingCpu() }, [])
  const [shown, setShown] = useState<Partial<Record<PaneId, Shown>>>({})
  const [selected, setSelected] = useState<PaneId>('a')
  const [twoPanes, setTwoPanes] = useState(false)
  const [linked, setLinked] = useState(false)
  const [tool, setTool] = useState<ToolName>('WindowLevel')
  const [playing, setPlaying] = useState<Partial<Record<PaneId, boolean>>>({})
  const [showReports, setShowReports] = useState(true)
  const [loadError, setLoadError] = useState<unknown>(undefined)
  const [priorUid, setPriorUid] = useState<string>('')

  const priors = useLoad(async () => {
    const p = study.data?.patient
    return p === undefined || source.otherStudies === undefined ? [] : source.otherStudies(p, uid)
  }, [study.data?.studyInstanceUID])
  const prior = useLoad(async () => priorUid === '' ? undefined : source.study(priorUid), [priorUid])

  const show = async (pane: PaneId, from: StudyDetail, series: Series): Promise<void> => {
    try {
      setLoadError(undefined)
      const stack = await loadStack(source.dicomweb, from.studyInstanceUID, series.seriesInstanceUID)
      setShown((s) => ({ ...s, [pane]: { stack, series, labels: labelsFor(from, series, lang) } }))
    } catch (err) { setLoadError(err) }
  }

  // The study's first image series in the first pane once both the study and Cornerstone are there.
  useEffect(() => {
    const first = study.data === undefined ? undefined : imageSeries(study.data)[0]
    if (ready.data !== undefined && first !== undefined && shown.a === undefined) void show('a', study.data!, first)
  }, [study.data, ready.data])

  // Linked panes move by the same number of images; a move made by the link is not passed back.
  const linkedMove = useRef<Partial<Record<PaneId, number>>>({})
  const imageChanged = (pane: PaneId) => (index: number, from: number): void => {
    if (linkedMove.current[pane] === index) { delete linkedMove.current[pane]; return }
    const other: PaneId = pane === 'a' ? 'b' : 'a'
    const vp = viewportOf(other)
    if (!linked || !twoPanes || vp === undefined) return
    const count = vp.getImageIds().length
    const target = Math.max(0, Math.min(count - 1, vp.getCurrentImageIdIndex() + index - from))
    if (target === vp.getCurrentImageIdIndex()) return
    linkedMove.current[other] = target
    void vp.setImageIdIndex(target)
  }

  if (study.error !== undefined) return <ErrorLine error={study.error} />
  if (ready.error !== undefined) return <ErrorLine error={ready.error} />
  if (study.data === undefined || ready.data === undefined) return <Loading />
  const s = study.data
  const element = (pane: PaneId): HTMLDivElement | undefined => viewportOf(pane)?.element
  const onSelected = (op: (pane: PaneId) => void) => () => { if (viewportOf(selected) !== undefined) op(selected) }
  const pickSeries = (from: StudyDetail, series: Series): void => { void show(selected, from, series) }
  const toggleCine = (): void => {
    const el = element(selected)
    const stack = shown[selected]?.stack
    if (el === undefined || stack === undefined) return
    if (playing[selected] === true) stopCine(el)
    else playCine(el, stack.cineFramesPerSecond ?? 10)
    setPlaying((p) => ({ ...p, [selected]: p[selected] !== true }))
  }
  const seriesList = (from: StudyDetail, label: string): preact.JSX.Element => (
    <ul class='viewer-series' aria-label={label}>
      {imageSeries(from).map((x) => (
        <li key={x.seriesInstanceUID}>
          <button type='button' class={Object.values(shown).some((v) => v?.series.seriesInstanceUID === x.seriesInstanceUID) ? 'shown' : ''}
            onClick={() => { pickSeries(from, x) }} aria-label={t('viewer.showSeries', { series: `${x.number ?? ''} ${x.modality} ${x.description}`.trim() })}>
            <img src={source.thumbnailUrl(from.studyInstanceUID, x.seriesInstanceUID)} alt='' width={96} height={96} loading='lazy' />
            <span>{x.number ?? ''} {x.modality} {x.description}</span>
            <small>{t('study.images', { count: x.numberOfInstances })}</small>
          </button>
        </li>
      ))}
    </ul>
  )

  return (
    <div class={`viewer${showReports ? ' with-reports' : ''}`} data-testid='viewer' data-render={ready.data ? 'cpu' : 'gpu'}>
      <aside class='viewer-side' aria-label={t('viewer.seriesList')}>
        <h1>{personName(s.patient.name)}</h1>
        <p>{source.studyPage === undefined ? s.description || s.modalities.join(', ') : <a href={source.studyPage(uid)}>{s.description || s.modalities.join(', ')}</a>}<br />{dicomDate(s.date, lang)}</p>
        {seriesList(s, t('viewer.seriesList'))}
        {(priors.data ?? []).length > 0 && (
          <label>{t('viewer.prior')}
            <select value={priorUid} onChange={(e) => { setPriorUid(e.currentTarget.value); setTwoPanes(true); setSelected('b') }}>
              <option value=''>{t('viewer.priorNone')}</option>
              {priors.data!.map((p) => <option key={p.studyInstanceUID} value={p.studyInstanceUID}>{dicomDate(p.date, lang)} {p.description || p.modalities.join(', ')}</option>)}
            </select>
          </label>
        )}
        {prior.data !== undefined && seriesList(prior.data, t('viewer.priorSeries'))}
      </aside>
      <div class='viewer-main'>
        <div class='viewer-toolbar' role='toolbar' aria-label={t('viewer.tools')}>
          <div role='group' aria-label={t('viewer.leftButton')}>
            {TOOL_KEYS.map((name) => (
              <button key={name} type='button' aria-pressed={tool === name} onClick={() => { setLeftButtonTool(name); setTool(name) }}>{t(`viewer.tool.${name}`)}</button>
            ))}
          </div>
          <label class='inline'>{t('viewer.preset')}
            <select onChange={(e) => { const vp = viewportOf(selected); if (vp !== undefined) setWindow(vp, e.currentTarget.value as WindowPreset) }}>
              {WINDOW_PRESETS.map((p) => <option key={p} value={p}>{t(`viewer.preset.${p}`)}</option>)}
            </select>
          </label>
          <button type='button' onClick={onSelected((p) => { rotate(viewportOf(p)!, 90) })}>{t('viewer.rotate')}</button>
          <button type='button' onClick={onSelected((p) => { flip(viewportOf(p)!, 'horizontal') })}>{t('viewer.flipH')}</button>
          <button type='button' onClick={onSelected((p) => { flip(viewportOf(p)!, 'vertical') })}>{t('viewer.flipV')}</button>
          <button type='button' onClick={onSelected((p) => { invert(viewportOf(p)!) })}>{t('viewer.invert')}</button>
          <button type='button' onClick={onSelected((p) => { resetView(viewportOf(p)!) })}>{t('viewer.reset')}</button>
          <button type='button' onClick={onSelected((p) => { removeMeasurements(element(p)!); viewportOf(p)!.render() })}>{t('viewer.clearMeasurements')}</button>
          <button type='button' aria-pressed={playing[selected] === true} disabled={(shown[selected]?.stack.imageIds.length ?? 0) < 2} onClick={toggleCine}>
            {t(playing[selected] === true ? 'viewer.cineStop' : 'viewer.cinePlay')}
          </button>
          <button type='button' aria-pressed={twoPanes} onClick={() => { setTwoPanes(!twoPanes); if (twoPanes) setSelected('a') }}>{t('viewer.twoPanes')}</button>
          <button type='button' aria-pressed={linked} disabled={!twoPanes} onClick={() => { setLinked(!linked) }}>{t('viewer.link')}</button>
          <button type='button' aria-pressed={showReports} onClick={() => { setShowReports(!showReports) }}>{t('viewer.reports')}</button>
        </div>
        {loadError instanceof ApiError ? <ErrorLine error={loadError} /> : loadError !== undefined && <p role='alert' class='error'>{t('viewer.cannotShow')}</p>}
        <div class={`viewer-panes${twoPanes ? ' two' : ''}`}>
          {PANES.filter((p) => p === 'a' || twoPanes).map((p) => (
            <Pane key={p} id={p} stack={shown[p]?.stack} labels={shown[p]?.labels} selected={selected === p}
              onSelect={() => { setSelected(p) }} onImageChange={imageChanged(p)} />
          ))}
        </div>
      </div>
      {showReports && (
        <aside class='viewer-reports' aria-label={t('study.reports')}>
          <h2>{t('study.reports')}</h2>
          {reports.data === undefined ? <Loading /> : reports.data.length === 0 ? <p>{t('study.noReports')}</p> : reports.data.map((r) => <ReportView key={r.sopInstanceUID} uid={uid} report={r} url={source.reportUrl(uid, r.sopInstanceUID)} />)}
        </aside>
      )}
    </div>
  )
}
