/*
 * A patient's share link as the node's API shows it to clinicians and IT (/api/studies/:uid/shares,
 * /api/shares): no patient in it, nor its secrets. Shared by the node and the web app.
 */

export type ShareState = 'active' | 'expired' | 'revoked' | 'locked' | 'used-up'

export interface ShareView {
  id: string
  studyInstanceUID: string
  createdBy: string
  createdAt: string
  expiresAt: string
  maxDownloads: number
  downloads: number
  opens: number
  failedAttempts: number
  state: ShareState
  /** while locked for a while after wrong codes in a row: until when (absent when locked for good) */
  lockedUntil?: string
}
