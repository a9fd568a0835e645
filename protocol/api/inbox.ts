/*
 * One transfer as the node's inbox and outbox list it (GET /api/inbox), the shape the node writes
 * and the web app reads. No imports: the web app's build takes it as it is.
 */

export interface InboxEntry {
  transferId: string
  direction: 'outgoing' | 'incoming'
  state: string
  studyInstanceUID: string
  createdAt: string
  updatedAt: string
  completedAt?: string
  lastError?: { code: string, message: string }
  progress: { instancesDone: number, instancesTotal: number, bytesDone: number, bytesTotal: number }
  institution: { ura: string, name?: string }
  department: string
  note: string
  reason: string
  requestId?: string
  study: { description: string, date: string, modalities: string[], patient: { name: string, id: string, bsn?: string, birthDate: string } }
}
