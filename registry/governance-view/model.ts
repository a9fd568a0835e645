import { isBeeldnetError } from '../../protocol/errors.ts'
import { buildRootCandidate, DirectoryDraft } from '../../protocol/registry/changes.ts'
import { directoryOf, type Change, type Directory, type Institution, type NodeEntry, type Root } from '../../protocol/registry/documents.ts'
import { thresholdsFor } from '../candidate.ts'
import type { CandidateView, RegistryService, RegistryStatus } from '../service.ts'
import type { DirectoryIndexEntry } from '../store/records.ts'
import { diffInstitutions, diffRoot, type DirectoryChange, type RootChange, type State } from './diff.ts'
import type { HistoryEvent, HistoryState, HistoryWalker } from './history.ts'

/*
 * Data -> view model. `gatherGovernanceData` is the only part that reads (through the service's
 * public, read-only methods); `toViewModel` is pure: same data and time, same model.
 */

/** What the view reads from the registry: nothing here writes or signs. */
export type GovernanceSource = Pick<RegistryService, 'status' | 'rootVersion' | 'history' | 'directoryVersion' | 'enrolments' | 'proposals' | 'candidate'>

export interface GovernanceData {
  status: RegistryStatus
  /** every published root, oldest first */
  roots: Root[]
  /** the newest published directory */
  directory: { signed: Directory, hash: string } | undefined
  index: DirectoryIndexEntry[]
  history: HistoryState
  enrolments: Awaited<ReturnType<RegistryService['enrolments']>>
  proposals: Awaited<ReturnType<RegistryService['proposals']>>
  candidate: CandidateView | undefined
  candidateError?: string
}

export async function gatherGovernanceData (source: GovernanceSource, walker: HistoryWalker): Promise<GovernanceData> {
  const status = await source.status()
  let candidate: CandidateView | undefined
  let candidateError: string | undefined
  // Only a candidate that is already frozen: asking the service when there is none would freeze
  // one, which is a governance member's act (beeldnet governance sign), not a reader's.
  if (status.candidate !== null) {
    try {
      candidate = await source.candidate()
    } catch (err) {
      if (!isBeeldnetError(err)) throw err
      candidateError = `${err.code}: ${err.message}`
    }
  }
  const roots: Root[] = []
  for (let v = 1; v <= (status.root?.version ?? 0); v++) roots.push(source.rootVersion(v).signed)
  const index = await source.history()
  const history = await walker.update(index)
  const newest = index.at(-1)
  const directory = newest === undefined ? undefined : { signed: directoryOf(await source.directoryVersion(newest.version)), hash: newest.hash }
  const [enrolments, proposals] = [await source.enrolments(), await source.proposals()]
  return { status, roots, directory, index, history, enrolments, proposals, candidate, ...(candidateError === undefined ? {} : { candidateError }) }
}

export interface KeyRef { keyid: string, name?: string }

export interface InstitutionRow {
  ura: string
  name: string
  kind: Institution['kind']
  state: State
  since: string
  reason?: string
  departments: Institution['departments']
  nodes: NodeEntry[]
  history: HistoryEvent[]
}

export type Effect =
  | { kind: 'directory', changes: DirectoryChange[] }
  | { kind: 'root', changes: RootChange[] }
  | { kind: 'problem', message: string }

export interface ProposalRow {
  id: string
  received: string
  proposed: string
  change: Change
  signers: KeyRef[]
  /** what it would do, applied in arrival order after the pending proposals before it */
  effect: Effect
}

export interface CandidateModel {
  kind: 'root' | 'directory'
  version: number
  hash: string
  frozen: string
  base: { version: number, hash: string } | null
  collected: number
  needed: number
  thresholds: Array<{ of: string, collected: number, needed: number, signed: KeyRef[], missing: KeyRef[] }>
  effect: Effect
  proposals: ProposalRow[]
}

export interface EnrolmentRow {
  id: string
  received: string
  requested: string
  ura: string
  name: string
  kind: Institution['kind']
  departments: Institution['departments']
  peerId: string
  addresses: string[]
  /** the URA is already in the directory: a key for it (add or rotate), not a new institution */
  existing: boolean
}

export interface VersionRow {
  version: number
  hash: string
  issued: string
  expires: string
  signers: KeyRef[]
  current: boolean
  expired: boolean
}

export interface GovernanceViewModel {
  network: string
  generated: string
  integrity: { ok: boolean, problems: string[] }
  root: { version: number, issued: string, expires: string, expired: boolean, threshold: number, keys: KeyRef[], timestampKey: string } | null
  directory: { version: number, hash: string, issued: string, expires: string, expired: boolean, counts: Record<State, number> } | null
  institutions: InstitutionRow[]
  candidate: CandidateModel | null
  candidateError: string | null
  /** pending proposals that are not in the frozen candidate */
  proposals: ProposalRow[]
  enrolments: EnrolmentRow[]
  /** newest first */
  versions: VersionRow[]
}

function keyNames (roots: readonly Root[], extra: readonly Root[]): (keyid: string) => KeyRef {
  const names = new Map<string, string>()
  for (const root of [...roots, ...extra]) for (const k of root.governanceKeys) if (k.name !== undefined) names.set(k.keyid, k.name)
  return (keyid) => {
    const name = names.get(keyid)
    return name === undefined ? { keyid } : { keyid, name }
  }
}

function problemOf (err: unknown): Effect {
  if (isBeeldnetError(err)) return { kind: 'problem', message: err.message }
  throw err
}

/**
 * Each pending proposal's effect, applied in arrival order on top of the directory in force and
 * the proposals before it (as the registry checks a new proposal); root updates against the root.
 */
export function previewProposals (proposals: GovernanceData['proposals'], root: Root | undefined, directory: Directory | undefined, at: string, name: (keyid: string) => KeyRef): ProposalRow[] {
  // One draft for all: each proposal's effect costs what it touches, not the whole directory.
  const draft = new DirectoryDraft(directory?.institutions ?? [])
  return proposals.map(({ id, proposal, received }) => {
    const change = proposal.signed.change
    let effect: Effect
    if (root === undefined) {
      effect = { kind: 'problem', message: 'no root in force' }
    } else if (change.action === 'update-root') {
      try {
        effect = { kind: 'root', changes: diffRoot(root, buildRootCandidate(root, change, { issued: at, validityDays: 365 })) }
      } catch (err) {
        effect = problemOf(err)
      }
    } else {
      try {
        const applied = draft.apply(change, root.network, at)
        effect = { kind: 'directory', changes: applied === undefined ? [] : diffInstitutions(applied.before === undefined ? [] : [applied.before], [applied.after]) }
      } catch (err) {
        effect = problemOf(err)
      }
    }
    return { id, received, proposed: proposal.signed.proposed, change, signers: proposal.signatures.map((s) => name(s.keyid)), effect }
  })
}

function candidateModel (candidate: CandidateView, rootInForce: Root | undefined, directory: Directory | undefined, rows: ProposalRow[], name: (keyid: string) => KeyRef): CandidateModel {
  const checkedAgainst = candidate.kind === 'root' && candidate.base === null ? undefined : rootInForce
  const thresholds = thresholdsFor({ kind: candidate.kind, signed: candidate.signed }, checkedAgainst)
  const signedIds = new Set(candidate.signatures.map((s) => s.keyid))
  const effect: Effect = candidate.kind === 'root'
    ? { kind: 'root', changes: diffRoot(checkedAgainst, candidate.signed as Root) }
    : { kind: 'directory', changes: diffInstitutions(directory?.institutions ?? [], candidate.institutions ?? []) }
  const ids = new Set(candidate.proposals.map((p) => p.id))
  return {
    kind: candidate.kind,
    version: candidate.signed.version,
    hash: candidate.hash,
    frozen: candidate.frozen,
    base: candidate.base,
    collected: candidate.progress.collected,
    needed: candidate.progress.needed,
    thresholds: thresholds.map((t, i) => ({
      of: t.of,
      collected: candidate.progress.thresholds[i]?.collected ?? 0,
      needed: t.needed,
      signed: t.keys.filter((k) => signedIds.has(k.keyid)).map((k) => name(k.keyid)),
      missing: t.keys.filter((k) => !signedIds.has(k.keyid)).map((k) => name(k.keyid))
    })),
    effect,
    proposals: rows.filter((r) => ids.has(r.id))
  }
}

const isExpired = (expires: string, now: Date): boolean => Date.parse(expires) <= now.getTime()

export function toViewModel (data: GovernanceData, now: Date): GovernanceViewModel {
  const root = data.roots.at(-1)
  const directory = data.directory?.signed
  const candidateRoot = data.candidate?.kind === 'root' ? [data.candidate.signed as Root] : []
  const name = keyNames(data.roots, candidateRoot)
  const rows = previewProposals(data.proposals, root, directory, now.toISOString(), name)
  const candidate = data.candidate === undefined ? null : candidateModel(data.candidate, root, directory, rows, name)
  const inCandidate = new Set(candidate?.proposals.map((p) => p.id) ?? [])
  const counts: Record<State, number> = { active: 0, suspended: 0, revoked: 0 }
  for (const i of directory?.institutions ?? []) counts[i.status.state]++
  const newest = data.index.at(-1)
  return {
    network: data.status.network,
    generated: now.toISOString(),
    integrity: data.status.integrity,
    root: root === undefined
      ? null
      : { version: root.version, issued: root.issued, expires: root.expires, expired: isExpired(root.expires, now), threshold: root.threshold, keys: root.governanceKeys.map((k) => name(k.keyid)), timestampKey: root.timestampKey.keyid },
    directory: directory === undefined
      ? null
      : { version: directory.version, hash: data.directory!.hash, issued: directory.issued, expires: directory.expires, expired: isExpired(directory.expires, now), counts },
    institutions: (directory?.institutions ?? []).map((i) => ({
      ura: i.ura,
      name: i.name,
      kind: i.kind,
      state: i.status.state,
      since: i.status.since,
      ...(i.status.reason === undefined ? {} : { reason: i.status.reason }),
      departments: i.departments,
      nodes: i.nodes,
      history: data.history.events.get(i.ura) ?? []
    })),
    candidate,
    candidateError: data.candidateError ?? null,
    proposals: rows.filter((r) => !inCandidate.has(r.id)),
    enrolments: data.enrolments.map(({ id, enrolment, received }) => {
      const e = enrolment.signed
      return { id, received, requested: e.requested, ura: e.ura, name: e.name, kind: e.kind, departments: e.departments, peerId: e.peerId, addresses: e.addresses, existing: (directory?.institutions ?? []).some((i) => i.ura === e.ura) }
    }),
    versions: data.index.map((entry) => ({
      version: entry.version,
      hash: entry.hash,
      issued: entry.issued,
      expires: entry.expires,
      signers: entry.signers.map(name),
      current: entry.version === newest?.version,
      expired: isExpired(entry.expires, now)
    })).reverse()
  }
}
