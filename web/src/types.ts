/* The shapes of the node's API answers the app reads (see node/api and node/transfers). */

export interface Me {
  kind: 'session' | 'token'
  name: string
  displayName?: string
  role: 'clinician' | 'it-admin' | 'auditor'
  csrfToken?: string
}

export interface Patient { name: string, id: string, issuer: string, bsn?: string, birthDate: string, sex: string }

export interface Study {
  studyInstanceUID: string
  patient: Patient
  date: string
  time: string
  accessionNumber: string
  description: string
  modalities: string[]
  numberOfSeries: number
  numberOfInstances: number
  numberOfReports: number
  size: number
  receivedAt: string
  updatedAt: string
}

export interface Series { seriesInstanceUID: string, modality: string, number?: number, description: string, bodyPart: string, numberOfInstances: number }

export interface StudyDetail extends Study { series: Series[] }

/** A transfer as /api/inbox lists it: the shape is agreed in protocol/api/inbox.ts. */
export type { InboxEntry as Transfer } from '../../protocol/api/inbox.ts'

export interface Institution { ura: string, name: string, departments: Array<{ code: string, name: string }>, status: string }

export interface Report { sopInstanceUID: string, kind: 'sr' | 'pdf' | 'cda', title?: string }

export interface PullMade {
  requestId: string
  at: { ura: string, name?: string }
  studyInstanceUID: string
  decision: 'allowed' | 'queued' | 'refused'
  reason: string
  askedAt: string
  decidedAt?: string
}

export interface Approval {
  requestId: string
  state: 'waiting' | 'approved' | 'refused'
  studyInstanceUID: string
  patient: { bsn?: string, id: string, name: string }
  from: { ura: string, name: string }
  requester: { clinician: { name: string, uzi: string, role: string }, purpose: string, department?: string }
  reason: string
  receivedAt: string
  decision?: string
}

/** A patient's share link as /api/studies/:uid/shares and /api/shares list it (no patient named). */
export type { ShareView } from '../../protocol/api/shares.ts'

/** A link just made: its URL and code are shown this once. */
export interface ShareMade { id: string, path: string, url: string, code?: string, expiresAt: string, maxDownloads: number, handedOver: string }
