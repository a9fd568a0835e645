import type { Directory, Root, Signature, SignedEnrolment, SignedProposal } from '../../protocol/registry/documents.ts'

/* What the registry keeps in level, one record type per sublevel. */

export interface EnrolmentRecord {
  /** hash of the enrolment's signed part */
  id: string
  enrolment: SignedEnrolment
  received: string
  /** included: a published change carried it */
  status: 'pending' | 'included'
}

export interface ProposalRecord {
  /** hash of the proposal's signed part */
  id: string
  proposal: SignedProposal
  received: string
  /** arrival order: candidates apply proposals in it */
  seq: number
  /** rejected: it no longer applied (or its signer left governance) when a candidate was assembled */
  status: 'pending' | 'included' | 'rejected'
  reason?: string
  includedIn?: { kind: 'root' | 'directory', version: number }
}

export interface CandidateRecord {
  kind: 'root' | 'directory'
  signed: Root | Directory
  hash: string
  /** distinct keyids, each verified when it arrived */
  signatures: Signature[]
  /** the proposals it carries, in the order they were applied */
  proposalIds: string[]
  /** the version it follows (null for root v1) */
  base: { version: number, hash: string } | null
  frozen: string
}

export interface DirectoryIndexEntry {
  version: number
  hash: string
  issued: string
  expires: string
  /** keyids whose signatures verified when it was published */
  signers: string[]
}
