import { api } from '../api.ts'
import type { Report, StudyDetail } from '../types.ts'
import type { ViewerSource } from '../viewer/source.ts'

/*
 * A patient's share link as the viewer's source: the one study of the link, its reports and its
 * images under /share/<token>/..., read with the link's own session cookie (its path is the
 * link's). No other studies, no study page.
 */

export function shareSource (base: string): ViewerSource {
  return {
    study: async () => api.get<StudyDetail>(`${base}/api/study`),
    reports: async () => (await api.get<{ reports: Report[] }>(`${base}/api/reports`)).reports,
    reportUrl: (_uid, sop) => `${base}/api/reports/${encodeURIComponent(sop)}`,
    thumbnailUrl: (_uid, series) => `${base}/api/series/${encodeURIComponent(series)}/thumbnail`,
    dicomweb: `${base}/dicomweb`
  }
}
