// The messages between the national day's driver (run.ts) and the processes that host its nodes
// (node-host.ts), over the IPC channel of child_process.fork. One request, one reply with the
// same id; events (outcomes, refusals, arrivals) come unasked.

import type { ExchangeModality } from './model.ts'

export interface HostedNode {
  slug: string
  ura: string
  name: string
  issuer: string
  /** the node's data directory */
  dir: string
  peerId: string
  addresses: string[]
  /** BEELDNET_* overrides for this node alone (the disk-full node's quota, its retention) */
  env: Record<string, string>
}

export interface StudyToPrepare {
  exchange: number
  /** URA of the node that holds it before the day */
  holder: string
  modality: ExchangeModality
  variant: string
  images: number
  reports: number
  bytes: number
}

export type HostRequest =
  | { type: 'start', nodes: HostedNode[], env: Record<string, string> }
  | { type: 'prepare', studies: StudyToPrepare[] }
  | { type: 'push', exchange: number, from: string, to: string, study: string }
  | { type: 'pull', exchange: number, requester: string, source: string, study: string }
  | { type: 'accept-directory', ura: string, file: string }
  | { type: 'watch-refusal', peerId: string }
  | { type: 'directory-versions' }
  | { type: 'transfer-states' }
  | { type: 'stored-bytes', ura: string }
  | { type: 'fill', ura: string, quota: number }
  | { type: 'restart-node', ura: string, env: Record<string, string> }
  | { type: 'verify-trails' }
  | { type: 'stats' }
  | { type: 'stop' }

/** What every request carries besides its own fields: what the process's nodes need to know. */
export interface HostContext { registryUrl: string, pollIntervalSeconds: number, workDir: string }

/** What goes over the channel: a request, its id and the context. */
export type HostRequestMessage = HostRequest & HostContext & { id: number }

export interface PreparedStudy { exchange: number, studyInstanceUID: string, sha256: string[], bytes: number }

export interface HostStats {
  pid: number
  nodes: number
  cpuSeconds: number
  rssMb: number
  peakRssMb: number
}

export type HostEvent =
  /** a push or pull reached a final state at the node that drives it */
  | { type: 'outcome', exchange: number, state: 'complete' | 'failed' | 'declined' | 'cancelled' | 'refused', code?: string, attempts: number, wallAt: number, codes: string[] }
  /** a study arrived and was committed at `ura`; sha256 are its instances' hashes, read back from the blobs */
  | { type: 'arrived', ura: string, studyInstanceUID: string, sha256: string[], wallAt: number }
  /** node `ura` now refuses `peerId` (gating), first seen at wallAt */
  | { type: 'refuses', ura: string, peerId: string, wallAt: number, reason: string }

export type HostMessage =
  | { type: 'reply', id: number, ok: true, value: unknown }
  | { type: 'reply', id: number, ok: false, code: string, message: string }
  | HostEvent
