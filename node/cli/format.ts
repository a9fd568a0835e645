import type { StudyRecord } from '../store/records.ts'
import type { StudyEntries } from '../store/study-index.ts'

export function formatBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = n
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++ }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`
}

function formatDate (d: string): string {
  return /^[0-9]{8}$/.test(d) ? `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}` : d
}

/** DICOM person names use ^ between parts and = between alphabetic/ideographic/phonetic forms. */
export function formatPersonName (pn: string): string {
  return pn.split('=').map((group) => group.split('^').filter((p) => p !== '').join(' ')).filter((g) => g !== '').join(' = ')
}

export function formatStudyTable (studies: StudyRecord[]): string {
  if (studies.length === 0) return 'no studies'
  const rows = studies.map((s) => [
    formatDate(s.date), formatPersonName(s.patient.name), s.patient.bsn ?? s.patient.id, s.modalities.join('/'),
    String(s.numberOfInstances), formatBytes(s.size), s.description, s.studyInstanceUID
  ])
  const head = ['date', 'patient', 'BSN / id', 'mod', 'inst', 'size', 'description', 'study UID']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()
  return [line(head), ...rows.map(line)].join('\n')
}

export function formatStudyDetail (e: StudyEntries): string {
  const s = e.study
  const lines = [
    `study     ${s.studyInstanceUID}`,
    `patient   ${formatPersonName(s.patient.name)}  id ${s.patient.id}${s.patient.issuer === '' ? '' : ` (${s.patient.issuer})`}` +
      `${s.patient.bsn === undefined ? '' : `  BSN ${s.patient.bsn}`}  born ${formatDate(s.patient.birthDate)}  sex ${s.patient.sex}`,
    `date      ${formatDate(s.date)} ${s.time}   accession ${s.accessionNumber}   ${s.description}`,
    `contents  ${s.numberOfSeries} series, ${s.numberOfInstances} instances (${s.numberOfReports} report(s)), ${formatBytes(s.size)}`,
    `received  ${s.receivedAt}   updated ${s.updatedAt}`
  ]
  for (const series of e.series) {
    lines.push(`  series ${series.number ?? '-'} ${series.modality} ${series.description}: ${series.numberOfInstances} instance(s), ${formatBytes(series.size)}`)
    for (const i of e.instances.filter((x) => x.seriesInstanceUID === series.seriesInstanceUID && x.isReport)) {
      lines.push(`    report: ${i.title ?? '(untitled)'}${i.completionFlag === undefined ? '' : ` [${i.completionFlag}/${i.verificationFlag ?? '?'}]`}`)
    }
  }
  return lines.join('\n')
}
