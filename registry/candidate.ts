import { hashOfSigned } from '../protocol/canonical.ts'
import { isBeeldnetError } from '../protocol/errors.ts'
import { buildRootCandidate, DirectoryDraft, nextDirectory } from '../protocol/registry/changes.ts'
import { envelopeOf, headerOf, parseDocument, Root as RootSchema, type Change, type Directory, type DirectoryHeader, type Proposal, type PublicKeyEntry, type Root } from '../protocol/registry/documents.ts'
import { directoryHash, verifyDirectory, verifyInitialRoot, verifyProposal, verifyRootUpdate, type Verified } from '../protocol/registry/verify.ts'
import type { CandidateRecord, ProposalRecord } from './store/records.ts'

/*
 * Which candidate comes next, and when it has enough signatures. Pure: the registry decides with
 * the same protocol functions every signer and every node uses, so it cannot publish anything a
 * verifier would refuse, and a signer recomputing the candidate gets the same bytes.
 */

/** What a candidate's signatures cover: the root, or a directory's header. */
export function signedPartOf (candidate: Pick<CandidateRecord, 'kind' | 'signed'>): Root | ReturnType<typeof headerOf> {
  return candidate.kind === 'directory' ? headerOf(candidate.signed as Directory) : candidate.signed as Root
}

export type UnsignedCandidate = Omit<CandidateRecord, 'signatures' | 'frozen'>

export interface AssemblyInput {
  /** the root in force */
  root: Root
  /** the directory in force, if any */
  directory: Directory | undefined
  /** pending proposals, in arrival order */
  pending: ProposalRecord[]
  /** the candidate's issue time, when its changes take effect */
  issued: string
  directoryValidityDays: number
  rootValidityDays: number
}

export interface Assembly {
  candidate: UnsignedCandidate | undefined
  /** proposals that no longer apply, or whose signer is no longer in governance */
  rejected: Array<{ id: string, reason: string }>
}

type UpdateRoot = Extract<Change, { action: 'update-root' }>

function reasonOf (err: unknown): string {
  if (isBeeldnetError(err)) return `${err.code}: ${err.message}`
  throw err
}

/** The next root when it parses as a root (distinct keys, a reachable threshold). */
export function nextRoot (root: Root, change: UpdateRoot, issued: string, validityDays: number): Root {
  return parseDocument(RootSchema, buildRootCandidate(root, change, { issued, validityDays }), `root v${root.version + 1}`)
}

/**
 * One candidate at a time: a pending root update goes first (alone); otherwise every pending
 * directory change that still applies, in arrival order, makes the next directory.
 */
export function assembleCandidate (input: AssemblyInput): Assembly {
  const { root, directory, issued } = input
  const rejected: Assembly['rejected'] = []
  const valid: Array<{ id: string, change: Change }> = []
  for (const p of input.pending) {
    try {
      valid.push({ id: p.id, change: verifyProposal(p.proposal, root).signed.change })
    } catch (err) {
      rejected.push({ id: p.id, reason: reasonOf(err) })
    }
  }
  for (const p of valid) {
    if (p.change.action !== 'update-root') continue
    try {
      const signed = nextRoot(root, p.change, issued, input.rootValidityDays)
      return {
        candidate: { kind: 'root', signed, hash: hashOfSigned(signed), proposalIds: [p.id], base: { version: root.version, hash: hashOfSigned(root) } },
        rejected
      }
    } catch (err) {
      rejected.push({ id: p.id, reason: reasonOf(err) })
    }
  }
  // One draft for every change: each costs what it touches (1,000 admissions are linear).
  const applied: string[] = []
  const draft = new DirectoryDraft(directory?.institutions ?? [])
  for (const p of valid) {
    if (p.change.action === 'update-root' || rejected.some((r) => r.id === p.id)) continue
    try {
      draft.apply(p.change, root.network, issued)
      applied.push(p.id)
    } catch (err) {
      rejected.push({ id: p.id, reason: reasonOf(err) })
    }
  }
  if (applied.length === 0) return { candidate: undefined, rejected }
  const signed = nextDirectory(directory, root, draft.list(), { issued, validityDays: input.directoryValidityDays })
  return {
    candidate: {
      kind: 'directory',
      signed,
      hash: directoryHash(signed),
      proposalIds: applied,
      base: directory === undefined ? null : { version: directory.version, hash: directoryHash(directory) }
    },
    rejected
  }
}

/** The directory in force with the pending proposals that still apply: what a new proposal must apply on top of. */
export function pendingDraft (input: Omit<AssemblyInput, 'pending'> & { pending: ProposalRecord[] }): DirectoryDraft {
  const draft = new DirectoryDraft(input.directory?.institutions ?? [])
  for (const p of input.pending) {
    if (p.proposal.signed.change.action === 'update-root') continue
    try {
      draft.apply(verifyProposal(p.proposal, input.root).signed.change, input.root.network, input.issued)
    } catch {
      // It will be rejected when the next candidate is assembled; it does not block this one.
    }
  }
  return draft
}

/**
 * Refuses (InvalidChangeError, SchemaError) a new proposal that would not apply on top of `draft`
 * (see pendingDraft). A directory change that applies is applied to `draft`: the caller keeps it
 * for the next proposal, so n proposals cost n changes, not n times all pending ones.
 */
export function checkProposalApplies (proposal: Proposal, input: { root: Root, issued: string, rootValidityDays: number, draft: DirectoryDraft }): void {
  const { change } = proposal
  if (change.action === 'update-root') {
    nextRoot(input.root, change, input.issued, input.rootValidityDays)
    return
  }
  input.draft.apply(change, input.root.network, input.issued)
}

export interface Threshold {
  /** whose keys: `root v3` */
  of: string
  keys: PublicKeyEntry[]
  needed: number
}

/** Whose signatures a candidate needs: root v(N+1) needs v(N)'s threshold and its own. */
export function thresholdsFor (candidate: { kind: UnsignedCandidate['kind'], signed: Root | DirectoryHeader }, root: Root | undefined): Threshold[] {
  if (candidate.kind === 'root') {
    const next = candidate.signed as Root
    const own = { of: `root v${next.version}`, keys: next.governanceKeys, needed: next.threshold }
    return root === undefined ? [own] : [{ of: `root v${root.version}`, keys: root.governanceKeys, needed: root.threshold }, own]
  }
  if (root === undefined) throw new TypeError('a directory candidate needs a root')
  return [{ of: `root v${root.version}`, keys: root.governanceKeys, needed: root.threshold }]
}

export interface Progress {
  collected: number
  needed: number
  thresholds: Array<{ of: string, collected: number, needed: number }>
}

export function progressOf (thresholds: Threshold[], signatures: Array<{ keyid: string }>): Progress {
  const each = thresholds.map((t) => {
    const ids = new Set(t.keys.map((k) => k.keyid))
    return { of: t.of, collected: signatures.filter((s) => ids.has(s.keyid)).length, needed: t.needed }
  })
  return {
    collected: each.reduce((sum, t) => sum + Math.min(t.collected, t.needed), 0),
    needed: each.reduce((sum, t) => sum + t.needed, 0),
    thresholds: each
  }
}

/**
 * Verifies the candidate with its collected signatures exactly as a node would. Returns undefined
 * while below threshold; any other failure is thrown (it would mean the candidate cannot publish).
 */
export function verifyCandidate (candidate: CandidateRecord, root: Root | undefined, held: { version: number, hash: string } | undefined, now: Date): Verified<Root | Directory> | undefined {
  try {
    if (candidate.kind === 'root') {
      const envelope = { signed: candidate.signed, signatures: candidate.signatures }
      return root === undefined ? verifyInitialRoot(envelope) : verifyRootUpdate(root, envelope)
    }
    if (root === undefined) throw new TypeError('a directory candidate needs a root')
    return verifyDirectory(envelopeOf(candidate.signed as Directory, candidate.signatures), { root, held, now })
  } catch (err) {
    if (isBeeldnetError(err) && err.code === 'BEELDNET_ERR_BELOW_THRESHOLD') return undefined
    throw err
  }
}
