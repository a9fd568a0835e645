import type { StudyEntries } from '../store/study-index.ts'

/** A study as GET /api/studies/:uid answers it (the web app's StudyDetail), and a patient's share link too. */
export function studyDetail (entries: StudyEntries): StudyEntries['study'] & Pick<StudyEntries, 'series' | 'instances'> {
  return { ...entries.study, series: entries.series, instances: entries.instances }
}
