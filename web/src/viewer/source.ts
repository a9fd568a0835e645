import { api } from '../api.ts'
import type { Patient, Report, Study, StudyDetail } from '../types.ts'

/*
 * Where the viewer gets a study from. A clinician's viewer reads the node's API and DICOMweb under
 * their session; a patient's own viewer (a share link) will read the same shapes under the link's
 * own prefix, read-only and without the patient's other studies: the one component serves both.
 */

export interface ViewerSource {
  study: (uid: string) => Promise<StudyDetail>
  reports: (uid: string) => Promise<Report[]>
  /** the report's own bytes (SR text, PDF) */
  reportUrl: (uid: string, sopInstanceUID: string) => string
  thumbnailUrl: (uid: string, seriesInstanceUID: string) => string
  /** DICOMweb's base path: WADO-RS metadata and frames below it */
  dicomweb: string
  /** the patient's other studies here, to compare with; absent, the viewer offers none */
  otherStudies?: (patient: Patient, uid: string) => Promise<Study[]>
  /** the study's own page in the app; absent, the viewer links nowhere */
  studyPage?: (uid: string) => string
}

const studyPath = (uid: string): string => `/api/studies/${encodeURIComponent(uid)}`

/** The node's API and DICOMweb, as the logged-in clinician. */
export const NODE_SOURCE: ViewerSource = {
  study: async (uid) => api.get<StudyDetail>(studyPath(uid)),
  reports: async (uid) => (await api.get<{ reports: Report[] }>(`${studyPath(uid)}/reports`)).reports,
  reportUrl: (uid, sop) => `${studyPath(uid)}/reports/${encodeURIComponent(sop)}`,
  thumbnailUrl: (uid, series) => `${studyPath(uid)}/series/${encodeURIComponent(series)}/thumbnail`,
  dicomweb: '/dicomweb',
  otherStudies: async (patient, uid) => {
    const { studies } = await api.get<{ studies: Study[] }>(`/api/studies?patientId=${encodeURIComponent(patient.id)}&issuer=${encodeURIComponent(patient.issuer)}`)
    return studies.filter((s) => s.studyInstanceUID !== uid)
  },
  studyPage: (uid) => `#/studies/${encodeURIComponent(uid)}`
}
