import type { AbstractSublevel } from 'abstract-level'
import { Level } from 'level'
import type { SignedDirectory, SignedDirectoryHeader, SignedRoot, SignedTimestamp } from '../../protocol/registry/documents.ts'
import { AppendOnlyError } from '../errors.ts'
import type { CandidateRecord, DirectoryIndexEntry, EnrolmentRecord, ProposalRecord } from './records.ts'

/*
 * The registry's level store. Published roots and directories are keyed by zero-padded version,
 * so key order is version order, and are append-only: publishing refuses to overwrite a version.
 * Nothing read back is trusted blindly: the service re-verifies what it serves (see integrity.ts).
 */

type Sub<V> = AbstractSublevel<Level<string, unknown>, string | Buffer | Uint8Array, string, V>

export const SUBLEVELS = {
  roots: 'roots',
  directories: 'directories',
  directoryIndex: 'directory-index',
  /** each version's signed header alone: a delta over many versions carries them without reading whole directories */
  directoryHeaders: 'directory-headers',
  timestamp: 'timestamp',
  enrolments: 'enrolments',
  proposals: 'proposals',
  candidate: 'candidate'
} as const

export function versionKey (version: number): string {
  return String(version).padStart(10, '0')
}

const LATEST = 'latest'
const CURRENT = 'current'

export interface RegistryStoreInit {
  /** the level directory, `<data dir>/db` */
  location: string
}

export interface Publication {
  root?: SignedRoot
  directory?: { envelope: SignedDirectory, index: DirectoryIndexEntry }
  proposals: ProposalRecord[]
  enrolments: EnrolmentRecord[]
}

export class RegistryStore {
  private readonly db: Level<string, unknown>
  private readonly roots: Sub<SignedRoot>
  private readonly directories: Sub<SignedDirectory>
  private readonly directoryIndex: Sub<DirectoryIndexEntry>
  private readonly directoryHeadersSub: Sub<SignedDirectoryHeader>
  private readonly timestamps: Sub<SignedTimestamp>
  private readonly enrolments: Sub<EnrolmentRecord>
  private readonly proposals: Sub<ProposalRecord>
  private readonly candidates: Sub<CandidateRecord>

  constructor (init: RegistryStoreInit) {
    this.db = new Level<string, unknown>(init.location, { valueEncoding: 'json' })
    const sub = <V>(name: string): Sub<V> => this.db.sublevel<string, V>(name, { valueEncoding: 'json' })
    this.roots = sub(SUBLEVELS.roots)
    this.directories = sub(SUBLEVELS.directories)
    this.directoryIndex = sub(SUBLEVELS.directoryIndex)
    this.directoryHeadersSub = sub(SUBLEVELS.directoryHeaders)
    this.timestamps = sub(SUBLEVELS.timestamp)
    this.enrolments = sub(SUBLEVELS.enrolments)
    this.proposals = sub(SUBLEVELS.proposals)
    this.candidates = sub(SUBLEVELS.candidate)
  }

  async start (): Promise<void> {
    await this.db.open()
  }

  async stop (): Promise<void> {
    await this.db.close()
  }

  /** Every root, oldest first (a handful: roots change rarely). */
  async allRoots (): Promise<SignedRoot[]> {
    return this.roots.values().all()
  }

  async root (version: number): Promise<SignedRoot | undefined> {
    return this.roots.get(versionKey(version))
  }

  async directory (version: number): Promise<SignedDirectory | undefined> {
    return this.directories.get(versionKey(version))
  }

  /** Signed headers of versions `from`..`to`, ascending; refuses if one is missing. */
  async directoryHeaders (from: number, to: number): Promise<SignedDirectoryHeader[]> {
    const headers = await this.directoryHeadersSub.values({ gte: versionKey(from), lte: versionKey(to) }).all()
    if (headers.length !== to - from + 1) throw new RangeError(`the store holds ${headers.length} headers of versions ${from}..${to}`)
    return headers
  }

  async latestDirectory (): Promise<SignedDirectory | undefined> {
    const [latest] = await this.directories.values({ reverse: true, limit: 1 }).all()
    return latest
  }

  async directoryHistory (): Promise<DirectoryIndexEntry[]> {
    return this.directoryIndex.values().all()
  }

  async timestamp (): Promise<SignedTimestamp | undefined> {
    return this.timestamps.get(LATEST)
  }

  async putTimestamp (value: SignedTimestamp): Promise<void> {
    await this.timestamps.put(LATEST, value)
  }

  async enrolment (id: string): Promise<EnrolmentRecord | undefined> {
    return this.enrolments.get(id)
  }

  async putEnrolment (record: EnrolmentRecord): Promise<void> {
    await this.enrolments.put(record.id, record)
  }

  async allEnrolments (): Promise<EnrolmentRecord[]> {
    const all = await this.enrolments.values().all()
    return all.sort((a, b) => a.received.localeCompare(b.received))
  }

  async proposal (id: string): Promise<ProposalRecord | undefined> {
    return this.proposals.get(id)
  }

  async putProposals (records: ProposalRecord[]): Promise<void> {
    await this.proposals.batch(records.map((r) => ({ type: 'put' as const, key: r.id, value: r })))
  }

  /** Every proposal, in arrival order. */
  async allProposals (): Promise<ProposalRecord[]> {
    const all = await this.proposals.values().all()
    return all.sort((a, b) => a.seq - b.seq)
  }

  async candidate (): Promise<CandidateRecord | undefined> {
    return this.candidates.get(CURRENT)
  }

  async putCandidate (record: CandidateRecord): Promise<void> {
    await this.candidates.put(CURRENT, record)
  }

  async clearCandidate (): Promise<void> {
    await this.candidates.del(CURRENT)
  }

  /** One atomic batch: the new version, its proposals and enrolments marked, the candidate cleared. */
  async publish (publication: Publication): Promise<void> {
    const batch = this.db.batch()
    if (publication.root !== undefined) {
      const key = versionKey(publication.root.signed.version)
      if (await this.roots.get(key) !== undefined) throw new AppendOnlyError(`root v${publication.root.signed.version}`)
      batch.put(key, publication.root, { sublevel: this.roots })
    }
    if (publication.directory !== undefined) {
      const { envelope, index } = publication.directory
      const key = versionKey(envelope.signed.version)
      if (await this.directories.get(key) !== undefined) throw new AppendOnlyError(`directory v${envelope.signed.version}`)
      batch.put(key, envelope, { sublevel: this.directories })
      batch.put(key, index, { sublevel: this.directoryIndex })
      batch.put(key, { signed: envelope.signed, signatures: envelope.signatures }, { sublevel: this.directoryHeadersSub })
    }
    for (const p of publication.proposals) batch.put(p.id, p, { sublevel: this.proposals })
    for (const e of publication.enrolments) batch.put(e.id, e, { sublevel: this.enrolments })
    batch.del(CURRENT, { sublevel: this.candidates })
    await batch.write()
  }
}
