import { mkdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import PQueue from 'p-queue'
import { BlobStore, type ReadBuffers, type StagedBlob } from './blob-store.ts'
import { StudyIndex, type StudyEntries, type StudyQuery } from './study-index.ts'
import type { InstanceRecord, SeriesRecord, StudyRecord } from './records.ts'
import { GroupCommitter, GroupItemFailure } from './group-commit.ts'
import { writeStudyFiles } from './study-export.ts'
import { DiskSpace, type AdmissionRoute, type DiskSpaceInit } from './disk-space.ts'
import { decideDuplicate, type DuplicateDecision, type DuplicatePolicy, type HeldCopy } from './duplicates.ts'
import { readInstanceHeader, type InstanceHeader } from '../dicom/instance-header.ts'
import { InstanceConflictError, PatientMismatchError, StudyHeldError, StudyNotFoundError } from '../errors.ts'

export interface StudyStoreInit {
  /** the node's data directory; the store keeps `store/` (files) and `index/` (level) inside it */
  dir: string
  /** test hook: runs after instance files are durable and before the index batch commits */
  beforeIndexCommit?: (studyInstanceUID: string) => Promise<void> | void
  /** what a copy of an instance already held becomes (config store.duplicates); default 'keep' */
  duplicates?: DuplicatePolicy
  /** told of every copy kept, replaced or refused, once that is final (for the log and the audit trail) */
  onDuplicate?: (event: DuplicateEvent) => void
  /** the free-space reserve and quota (config store.minFreeBytes, store.maxBytes); statfs injectable for tests */
  space?: Omit<DiskSpaceInit, 'dir'>
  /** test seam: before each write of staged instance bytes (BlobStoreInit.beforeWrite) */
  beforeBlobWrite?: (bytes: number) => void
}

/** A copy of an instance the store held (or already had in the same batch), and what became of it. */
export interface DuplicateEvent extends DuplicateDecision {
  studyInstanceUID: string
  sopInstanceUID: string
  patient: { id: string, issuer: string, name: string }
  /** the arriving copy's and the held copy's transfer syntax */
  transferSyntaxUID: string
  heldTransferSyntaxUID: string
  /** where the copy came from (a DIMSE caller, STOW-RS, a peer), when the caller said */
  origin?: string
}

/** What became of one staged file: new, a copy of a held instance kept or replacing it, or refused. */
export interface InstanceOutcome {
  sopInstanceUID: string
  sha256: string
  outcome: 'stored' | 'kept' | 'replaced' | 'refused'
  code?: string
  message?: string
}

/** What happened to one incoming file. */
export type StageOutcome =
  | { status: 'staged', header: InstanceHeader, sha256: string, size: number }
  | { status: 'duplicate', header: InstanceHeader, sha256: string, size: number }

export interface CommitResult {
  studyInstanceUID: string
  /** instances whose file is now the stored one (new, or replacing a held copy) */
  stored: number
  /** of those, how many replaced a held copy */
  replaced: number
  /** copies of held instances that were kept (the held copy stays) */
  duplicates: number
  /** one per staged file, in the order given */
  outcomes: InstanceOutcome[]
  /** `sha256` names the staged file itself: one batch may hold several files under one SOP Instance UID */
  rejected: Array<{ sopInstanceUID: string, sha256: string, code: string, message: string }>
}

export interface DiskUsage {
  studies: number
  instances: number
  /** bytes of indexed instance files */
  storedBytes: number
  /** free and total bytes of the file system holding the store */
  freeBytes: number
  totalBytes: number
}

export interface FsckReport {
  checked: number
  missing: Array<{ sha256: string, studyInstanceUID: string, sopInstanceUID: string }>
  corrupt: Array<{ sha256: string, studyInstanceUID: string, sopInstanceUID: string }>
  /** files on disk that no index entry points at (left by a crash before commit) */
  orphans: string[]
  repaired: boolean
}

/** An instance whose bytes are durable in a file outside blobs/ and whose header is parsed: ready to commit. */
export interface Staged {
  header: InstanceHeader
  blob: StagedBlob
}

/**
 * The node's study store: content-addressed files plus the level index. Incoming instances are
 * staged (file durable, not yet visible) and a study appears only when its index batch commits.
 */
export class StudyStore {
  readonly blobs: BlobStore
  readonly index: StudyIndex
  /** admission by free space and quota, for everything that brings bytes in */
  readonly space: DiskSpace
  private readonly dir: string
  private readonly beforeIndexCommit: StudyStoreInit['beforeIndexCommit']
  private readonly duplicatePolicy: DuplicatePolicy
  private readonly onDuplicate: StudyStoreInit['onDuplicate']
  private commitQueue: Promise<unknown> = Promise.resolve()
  /** commitStudy's requests, made durable in groups, each group in turn with deletes and holds */
  private readonly group = new GroupCommitter<CommitRequest, CommitResult>({
    commit: async (requests) => this.serialised(async () => this.commitGroupNow(requests)),
    maxItems: MAX_GROUP_REQUESTS,
    // Requests sharing a SOP Instance UID go in separate groups, in order: each is judged by what the
    // index holds, and the index holds what an earlier request did only after its group is written.
    keysOf: (request) => request.staged.map((s) => s.header.sopInstanceUID)
  })

  constructor (init: StudyStoreInit) {
    this.dir = init.dir
    this.space = new DiskSpace({ storedBytes: async () => this.storedBytes() }, { ...init.space, dir: init.dir })
    // Staging is where a full disk shows: as a refusal this store remembers (health, metrics).
    this.blobs = new BlobStore({ dir: join(init.dir, 'store'), noSpace: (err) => this.space.noSpace(err), beforeWrite: init.beforeBlobWrite })
    this.index = new StudyIndex(join(init.dir, 'index'))
    this.beforeIndexCommit = init.beforeIndexCommit
    this.duplicatePolicy = init.duplicates ?? 'keep'
    this.onDuplicate = init.onDuplicate
  }

  async start (): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    await this.index.start()
    try {
      await this.blobs.start()
    } catch (err) {
      // The index's lock says "in use" to every other process: a store that did not start must not keep it.
      await this.index.stop().catch((closeErr: unknown) => { process.emitWarning(`the store's index did not close after a failed start: ${String(closeErr)}`) })
      throw err
    }
  }

  async stop (): Promise<void> {
    await this.index.stop()
  }

  /**
   * Starts a batch of incoming instances; nothing becomes visible until `commit()`. Each instance is
   * admitted by free space first (`via` names the route in a refusal and the metrics).
   */
  beginImport (init: { origin?: string, via?: AdmissionRoute } = {}): ImportSession {
    return new ImportSession(this, init.origin, init.via ?? 'import')
  }

  /** @internal used by ImportSession: a file path or a stream of one instance's bytes */
  async stageInstance (source: string | AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<Staged> {
    // A file is checked where it lies first, so a viewer installer on a USB stick is never copied.
    if (typeof source === 'string') readInstanceHeader(source)
    // A received stream is fsynced with the rest of its group at commit (fsyncPath in syncStaged).
    const blob = typeof source === 'string' ? await this.blobs.stageFile(source, signal) : await this.blobs.stage(source, signal, { sync: false })
    try {
      return { header: readInstanceHeader(blob.tmpPath), blob }
    } catch (err) {
      await this.blobs.discard(blob)
      throw err
    }
  }

  /**
   * @internal one study's staged instances become visible together, or not at all. Commits that
   * arrive while another is being made durable are made durable together with one another (group
   * commit): this resolves once the instances' files and index entries are durable, never before.
   */
  async commitStudy (studyInstanceUID: string, staged: Staged[], origin?: string): Promise<CommitResult> {
    return this.group.submit({ studyInstanceUID, staged, origin })
  }

  /** Group commits made so far, the requests they held, and the largest group (for tests and metrics). */
  get groupCommits (): Readonly<{ groups: number, items: number, largestGroup: number }> {
    return this.group.stats
  }

  /** Commit requests waiting for the next group, and in the group being made durable. */
  get commitsPending (): { waiting: number, committing: number } {
    return { waiting: this.group.waiting, committing: this.group.committing }
  }

  /**
   * One group of commit requests, in order, each judged against the store as the earlier ones of
   * the group left it: files placed, every touched directory fsynced once, then one synced index
   * batch for every study of the group. A request that fails on its own (say beforeIndexCommit
   * for its study) fails alone; a failed placement, directory sync or index batch fails the whole group.
   */
  private async commitGroupNow (requests: CommitRequest[]): Promise<Array<CommitResult | GroupItemFailure>> {
    const answers: Array<CommitResult | GroupItemFailure> = []
    const studies = new Map<string, GroupStudy>()
    const discard: Staged[] = []
    for (const request of requests) {
      const uid = request.studyInstanceUID
      let study = studies.get(uid)
      if (study === undefined) {
        const previous = await this.index.getEntries(uid)
        study = { previous, next: previous, accepted: [], placed: [], events: [], answers: [] }
        studies.set(uid, study)
      }
      try {
        const plan = await this.sortIncoming(uid, request.staged, study.next, request.origin)
        discard.push(...plan.discard)
        if (plan.accepted.length > 0) study.next = nextEntries(plan.accepted, study.next)
        study.accepted.push(...plan.accepted)
        study.events.push(...plan.events)
        study.answers.push(answers.length)
        answers.push(plan.result)
      } catch (err) {
        answers.push(new GroupItemFailure(err))
      }
    }
    // Copies not kept go; those that are go to their addresses, all at once. No index entry points
    // at an accepted file's address (the same bytes held would have been judged a copy of a held
    // instance, not accepted), so a file there is an orphan and may be replaced.
    await Promise.allSettled(discard.map(async (d) => this.blobs.discard(d.blob)))
    await this.blobs.syncStaged([...studies.values()].flatMap((s) => s.accepted.map((a) => a.staged.blob)))
    const placing = [...studies.values()].map(async (study) => {
      const placed = await Promise.allSettled(study.accepted.map(async (a) => {
        await this.blobs.place(a.staged.blob)
        study.placed.push(a.staged.blob.sha256)
      }))
      const failed = placed.find((p) => p.status === 'rejected')
      if (failed !== undefined) throw failed.reason
    })
    const placeFailure = (await Promise.allSettled(placing)).find((p) => p.status === 'rejected')
    if (placeFailure !== undefined) {
      for (const study of studies.values()) for (const sha of study.placed) await this.blobs.remove(sha)
      throw placeFailure.reason
    }
    const failStudy = async (study: GroupStudy, err: unknown): Promise<void> => {
      for (const sha of study.placed) await this.blobs.remove(sha)
      for (const at of study.answers) answers[at] = new GroupItemFailure(err)
    }
    const writes = [...studies.values()].filter((s) => s.accepted.length > 0)
    try {
      await this.blobs.syncDirectoriesOf(writes.flatMap((s) => s.accepted.map((a) => a.staged.blob.sha256)))
    } catch (err) {
      for (const study of writes) await failStudy(study, err)
      throw err
    }
    const ready: GroupStudy[] = []
    for (const study of writes) {
      try {
        await this.beforeIndexCommit?.(study.next!.study.studyInstanceUID)
        ready.push(study)
      } catch (err) {
        await failStudy(study, err)
      }
    }
    if (ready.length > 0) {
      try {
        await this.index.writeStudies(ready.map((s) => ({ next: s.next!, previous: s.previous })))
      } catch (err) {
        // The index did not take them: files that only this group placed are orphans, remove them.
        for (const study of ready) await failStudy(study, err)
        throw err
      }
    }
    for (const study of studies.values()) {
      if (study.answers.some((at) => answers[at] instanceof GroupItemFailure)) continue
      for (const a of study.accepted) {
        if (a.replaces !== undefined && a.replaces.sha256 !== a.staged.blob.sha256) await this.blobs.remove(a.replaces.sha256)
      }
      this.tell(study.events)
    }
    return answers
  }

  /**
   * @internal a received transfer's verified instances become visible together, or none do. Unlike
   * commitStudy, one refused instance (a conflict with a stored one, another patient) refuses the
   * whole batch with its error and leaves every file where it is, so nothing half-arrived shows.
   * Copies of held instances follow the store's duplicates policy, as any other arrival.
   */
  async commitWhole (studyInstanceUID: string, staged: Staged[], origin?: string): Promise<CommitResult> {
    return this.serialised(async () => {
      for (const { header } of staged) {
        if (header.studyInstanceUID !== studyInstanceUID) throw new TypeError(`instance ${header.sopInstanceUID} is not of study ${studyInstanceUID}`)
      }
      const previous = await this.index.getEntries(studyInstanceUID)
      const plan = await this.sortIncoming(studyInstanceUID, staged, previous, origin)
      if (plan.refusal !== undefined) {
        this.tell(plan.events.filter((e) => e.action === 'refused'))
        throw plan.refusal
      }
      if (plan.accepted.length > 0) await this.placeAndIndex(studyInstanceUID, plan.accepted, previous)
      for (const s of plan.discard) await this.blobs.discard(s.blob)
      this.tell(plan.events)
      return plan.result
    })
  }

  /**
   * Decides, without touching a file, what each staged instance becomes: new, a kept or replacing
   * copy of one held (in the store or earlier in this batch), or refused. Within one batch a later
   * copy is judged against the earlier one as if that were stored, so a repeat never fails the first.
   */
  private async sortIncoming (studyInstanceUID: string, staged: Staged[], previous: StudyEntries | undefined, origin: string | undefined): Promise<IncomingPlan> {
    const result: CommitResult = { studyInstanceUID, stored: 0, replaced: 0, duplicates: 0, outcomes: [], rejected: [] }
    let patientKey: { id: string, issuer: string } | undefined = previous?.study.patient
    const accepted = new Map<string, Accepted>()
    const discard: Staged[] = []
    const events: DuplicateEvent[] = []
    let refusal: Error | undefined
    const refuse = (s: Staged, err: InstanceConflictError | PatientMismatchError): void => {
      refusal ??= err
      discard.push(s)
      result.outcomes.push({ sopInstanceUID: s.header.sopInstanceUID, sha256: s.blob.sha256, outcome: 'refused', code: err.code, message: err.message })
      result.rejected.push({ sopInstanceUID: s.header.sopInstanceUID, sha256: s.blob.sha256, code: err.code, message: err.message })
    }
    for (const s of staged) {
      const { header, blob } = s
      const sop = header.sopInstanceUID
      const earlier = accepted.get(sop)
      const held = earlier !== undefined
        ? { copy: { record: instanceRecord(earlier.staged.header, earlier.staged.blob), patient: earlier.staged.header.patient }, replaces: earlier.replaces }
        : await this.heldCopy(sop, previous)
      if (held === undefined) {
        patientKey ??= patientOf(header)
        if (header.patient.id !== patientKey.id || header.patient.issuer !== patientKey.issuer) {
          refuse(s, new PatientMismatchError(studyInstanceUID, describePatient(patientKey), describePatient(header.patient)))
          continue
        }
        accepted.set(sop, { staged: s })
        result.outcomes.push({ sopInstanceUID: sop, sha256: blob.sha256, outcome: 'stored' })
        continue
      }
      const decision = decideDuplicate(this.duplicatePolicy, held.copy, header, blob.sha256)
      events.push({
        ...decision,
        studyInstanceUID: header.studyInstanceUID,
        sopInstanceUID: sop,
        patient: { id: header.patient.id, issuer: header.patient.issuer, name: header.patient.name },
        transferSyntaxUID: header.transferSyntaxUID,
        heldTransferSyntaxUID: held.copy.record.transferSyntaxUID,
        ...(origin === undefined ? {} : { origin })
      })
      if (decision.action === 'refused') {
        refuse(s, new InstanceConflictError(sop, decision.why))
      } else if (decision.action === 'kept') {
        discard.push(s)
        result.outcomes.push({ sopInstanceUID: sop, sha256: blob.sha256, outcome: 'kept' })
      } else {
        // The earlier copy of this batch is dropped unplaced; a stored one is removed after the index commits.
        if (earlier !== undefined) discard.push(earlier.staged)
        accepted.set(sop, { staged: s, replaces: held.replaces })
        result.outcomes.push({ sopInstanceUID: sop, sha256: blob.sha256, outcome: 'replaced' })
      }
    }
    result.stored = accepted.size
    result.replaced = [...accepted.values()].filter((a) => a.replaces !== undefined).length
    result.duplicates = result.outcomes.filter((o) => o.outcome === 'kept').length
    return { result, accepted: [...accepted.values()], discard, events, refusal }
  }

  /** The stored copy of an instance, with its study's patient, or undefined when none is stored. */
  private async heldCopy (sopInstanceUID: string, previous: StudyEntries | undefined): Promise<{ copy: HeldCopy, replaces: InstanceRecord } | undefined> {
    const location = await this.index.getSopLocation(sopInstanceUID)
    if (location === undefined) return undefined
    const mine = location.studyInstanceUID === previous?.study.studyInstanceUID
    const record = mine ? previous.instances.find((i) => i.sopInstanceUID === sopInstanceUID) : await this.index.getInstance(location, sopInstanceUID)
    const study = mine ? previous.study : await this.index.getStudy(location.studyInstanceUID)
    if (record === undefined || study === undefined) return undefined
    return { copy: { record, patient: study.patient }, replaces: record }
  }

  private tell (events: DuplicateEvent[]): void {
    for (const e of events) {
      try {
        this.onDuplicate?.(e)
      } catch (err) {
        process.emitWarning(`a duplicate's listener failed: ${String(err)}`)
      }
    }
  }

  /**
   * Moves staged files to their content address, makes that durable, then writes the study's index
   * batch; the files of replaced instances are removed only once the index no longer points at them.
   */
  private async placeAndIndex (studyInstanceUID: string, accepted: Accepted[], previous: StudyEntries | undefined): Promise<void> {
    await this.blobs.syncStaged(accepted.map((a) => a.staged.blob))
    // A few moves at a time, not one after another: each is a few file-system calls through the
    // thread pool: a received 400-instance study waited 70-80 ms for them in turn before its
    // receipt, about 37 ms eight at a time (bench:wan).
    const moves = new PQueue({ concurrency: PLACE_CONCURRENCY })
    const moved = await Promise.allSettled(accepted.map(async ({ staged }) => moves.add(async () => this.blobs.commit(staged.blob))))
    const placed = accepted.filter((_, i) => moved[i]!.status === 'fulfilled' && moved[i]!.value === true).map((a) => a.staged.blob.sha256)
    const failed = moved.find((m) => m.status === 'rejected')
    if (failed !== undefined) throw failed.reason
    await this.blobs.syncDirectoriesOf(accepted.map((a) => a.staged.blob.sha256))
    await this.beforeIndexCommit?.(studyInstanceUID)
    const next = nextEntries(accepted, previous)
    try {
      await this.index.writeStudy(next, previous)
    } catch (err) {
      // The index did not take them: files that only this commit placed are orphans, remove them.
      for (const sha of placed) await this.blobs.remove(sha)
      throw err
    }
    for (const a of accepted) {
      if (a.replaces !== undefined && a.replaces.sha256 !== a.staged.blob.sha256) await this.blobs.remove(a.replaces.sha256)
    }
  }

  async getStudy (studyInstanceUID: string): Promise<StudyEntries> {
    const entries = await this.index.getEntries(studyInstanceUID)
    if (entries === undefined) throw new StudyNotFoundError(studyInstanceUID)
    return entries
  }

  /** The study's own record (patient, date, counts) without reading its series and instances. */
  async getStudyRecord (studyInstanceUID: string): Promise<StudyRecord> {
    const study = await this.index.getStudy(studyInstanceUID)
    if (study === undefined) throw new StudyNotFoundError(studyInstanceUID)
    return study
  }

  async findStudies (query?: StudyQuery): Promise<StudyRecord[]> {
    return this.index.findStudies(query)
  }

  /**
   * Writes the study's files to `dir` exactly as stored (byte for byte), one folder per series,
   * checking every file against its hash on the way. Returns the paths written.
   */
  async exportStudy (studyInstanceUID: string, dir: string, signal?: AbortSignal): Promise<string[]> {
    return writeStudyFiles(await this.getStudy(studyInstanceUID), dir, (instance) => this.blobs.readVerified(instance.sha256), signal)
  }

  /** A stored instance's bytes, verified against their hash as they stream. */
  openInstance (record: Pick<InstanceRecord, 'sha256'>, options: { chunkBytes?: number, buffers?: ReadBuffers } = {}): AsyncIterable<Uint8Array> {
    return this.blobs.readVerified(record.sha256, options.chunkBytes, options.buffers)
  }

  /** Deletes a study: index first (one batch), then its files. Refuses while anything holds it. */
  async deleteStudy (studyInstanceUID: string, options: { force?: boolean } = {}): Promise<StudyRecord> {
    return this.serialised(async () => {
      const entries = await this.getStudy(studyInstanceUID)
      const holders = await this.index.holdersOf(studyInstanceUID)
      if (holders.length > 0 && options.force !== true) throw new StudyHeldError(studyInstanceUID, holders)
      await this.index.deleteStudy(entries)
      for (const instance of entries.instances) await this.blobs.remove(instance.sha256)
      return entries.study
    })
  }

  /** Marks a study as needed (by an unfinished transfer, say) so retention and delete leave it alone. */
  async hold (studyInstanceUID: string, holder: string, reason: string): Promise<void> {
    // Queued with commits and deletes, so a hold can never be placed on a study being deleted.
    await this.serialised(async () => {
      await this.getStudy(studyInstanceUID)
      await this.index.hold(studyInstanceUID, holder, { reason, since: new Date().toISOString() })
    })
  }

  /** Runs `work` after every commit, delete and hold queued before it. */
  private async serialised<T> (work: () => Promise<T>): Promise<T> {
    const run = this.commitQueue.then(work)
    this.commitQueue = run.catch(() => {})
    return run
  }

  async release (studyInstanceUID: string, holder: string): Promise<void> {
    await this.index.release(studyInstanceUID, holder)
  }

  /** Deletes studies not updated for `maxAgeDays`, except held ones. Returns what was purged and kept. */
  async purgeExpired (maxAgeDays: number, now = new Date()): Promise<{ purged: StudyRecord[], keptHeld: string[] }> {
    const cutoff = new Date(now.getTime() - maxAgeDays * 86_400_000).toISOString()
    const purged: StudyRecord[] = []
    const keptHeld: string[] = []
    for (const study of await this.index.findStudies()) {
      if (study.updatedAt >= cutoff) continue
      try {
        purged.push(await this.deleteStudy(study.studyInstanceUID))
      } catch (err) {
        // Held (perhaps only since the listing) or already gone: the sweep goes on with the rest.
        if (err instanceof StudyHeldError) keptHeld.push(study.studyInstanceUID)
        else if (!(err instanceof StudyNotFoundError)) throw err
      }
    }
    return { purged, keptHeld }
  }

  async diskUsage (): Promise<DiskUsage> {
    let studies = 0
    let instances = 0
    let storedBytes = 0
    for (const study of await this.index.findStudies()) {
      studies++
      instances += study.numberOfInstances
      storedBytes += study.size
    }
    return { studies, instances, storedBytes, ...await this.space.disk() }
  }

  /** Bytes of the indexed instance files (what store.maxBytes bounds). */
  async storedBytes (): Promise<number> {
    let bytes = 0
    for (const study of await this.index.findStudies()) bytes += study.size
    return bytes
  }

  /**
   * Re-hashes every indexed file. With `repair`, corrupt files go to quarantine/, missing and corrupt
   * instances leave the index (so a peer can send them again), and orphan files are removed.
   */
  async fsck (options: { repair?: boolean, onProgress?: (done: number) => void } = {}): Promise<FsckReport> {
    const report: FsckReport = { checked: 0, missing: [], corrupt: [], orphans: [], repaired: false }
    const indexed = new Set<string>()
    for await (const instance of this.index.allInstances()) {
      indexed.add(instance.sha256)
      const state = await this.blobs.check(instance.sha256)
      const entry = { sha256: instance.sha256, studyInstanceUID: instance.studyInstanceUID, sopInstanceUID: instance.sopInstanceUID }
      if (state === 'missing') report.missing.push(entry)
      if (state === 'corrupt') report.corrupt.push(entry)
      report.checked++
      options.onProgress?.(report.checked)
    }
    for await (const sha of this.blobs.list()) if (!indexed.has(sha)) report.orphans.push(sha)
    if (options.repair === true) {
      await this.serialised(async () => {
        for (const c of report.corrupt) await this.blobs.quarantine(c.sha256)
        await this.dropInstances([...report.missing, ...report.corrupt])
        // Re-checked inside the queue: a commit since the scan may have indexed a file we saw as orphan.
        for (const sha of report.orphans) if (await this.index.getBlobOwner(sha) === undefined) await this.blobs.remove(sha)
      })
      report.repaired = true
    }
    return report
  }

  private async dropInstances (lost: Array<{ studyInstanceUID: string, sopInstanceUID: string }>): Promise<void> {
    const byStudy = Map.groupBy(lost, (l) => l.studyInstanceUID)
    for (const [studyUID, items] of byStudy) {
      const previous = await this.index.getEntries(studyUID)
      if (previous === undefined) continue
      const gone = new Set(items.map((i) => i.sopInstanceUID))
      const remaining = previous.instances.filter((i) => !gone.has(i.sopInstanceUID))
      if (remaining.length === 0) {
        await this.index.deleteStudy(previous)
      } else {
        await this.index.writeStudy(recount(previous, remaining), previous)
      }
    }
  }
}

interface Accepted {
  staged: Staged
  /** the stored instance this one replaces */
  replaces?: InstanceRecord
}

/** One commitStudy call waiting for its group. */
interface CommitRequest {
  studyInstanceUID: string
  staged: Staged[]
  origin: string | undefined
}

/** One study as a group commit goes through it: its entries before and after the group's requests. */
interface GroupStudy {
  previous: StudyEntries | undefined
  next: StudyEntries | undefined
  accepted: Accepted[]
  /** files this group placed (not there before), removed again if the study's commit fails */
  placed: string[]
  events: DuplicateEvent[]
  /** which of the group's answers are this study's */
  answers: number[]
}

/** Most commit requests one group takes: bounds the index batch and the files waiting on it. */
const MAX_GROUP_REQUESTS = 256
/** staged files moved into place at once in a commit (the thread pool has four threads) */
const PLACE_CONCURRENCY = 8

/** The study's entries once `accepted` are in, replacing the held copies they replace. */
function nextEntries (accepted: Accepted[], previous: StudyEntries | undefined): StudyEntries {
  const replaced = new Set(accepted.flatMap((a) => a.replaces === undefined ? [] : [a.replaces.sopInstanceUID]))
  const kept = previous === undefined ? undefined : { ...previous, instances: previous.instances.filter((i) => !replaced.has(i.sopInstanceUID)) }
  return aggregate(accepted.map((a) => a.staged.header), accepted.map((a) => instanceRecord(a.staged.header, a.staged.blob)), kept)
}

interface IncomingPlan {
  result: CommitResult
  accepted: Accepted[]
  /** staged files that will not be placed (kept and refused copies, superseded copies of this batch) */
  discard: Staged[]
  events: DuplicateEvent[]
  /** the first refusal, for commits that refuse the whole batch */
  refusal?: Error
}

/** One batch of incoming files (an import run, later a received transfer). */
export class ImportSession {
  private readonly store: StudyStore
  private readonly origin: string | undefined
  private readonly via: AdmissionRoute
  private readonly byStudy = new Map<string, Staged[]>()
  private readonly shas = new Set<string>()

  constructor (store: StudyStore, origin?: string, via: AdmissionRoute = 'import') {
    this.store = store
    this.origin = origin
    this.via = via
  }

  /** Stages one file; throws a BeeldnetError (with its code) if the file is unusable. */
  async addFile (path: string, signal?: AbortSignal): Promise<StageOutcome> {
    return this.add(path, signal)
  }

  /** Stages one instance from a file path or a stream of its bytes. */
  async add (source: string | AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<StageOutcome> {
    // A stream's size is known only at its end: it must fit the reserve with nothing added, and the
    // reserve is what absorbs it. A file's size is known before a byte is copied.
    const bytes = typeof source === 'string' ? (await stat(source).catch(() => undefined))?.size ?? 0 : 0
    await this.store.space.admit(bytes, `an instance from ${this.origin ?? 'an import'}`, this.via)
    const staged = await this.store.stageInstance(source, signal)
    const { header, blob } = staged
    // The same bytes twice in one batch are one instance; the same bytes as a stored file go on to
    // the commit, which keeps the stored copy and says so (log and audit trail).
    if (this.shas.has(blob.sha256)) {
      await this.store.blobs.discard(blob)
      return { status: 'duplicate', header, sha256: blob.sha256, size: blob.size }
    }
    this.shas.add(blob.sha256)
    const list = this.byStudy.get(header.studyInstanceUID) ?? []
    list.push(staged)
    this.byStudy.set(header.studyInstanceUID, list)
    return { status: 'staged', header, sha256: blob.sha256, size: blob.size }
  }

  /** Takes one staged file (by its hash: a batch may hold one SOP Instance UID twice) out of the batch again and discards it. */
  async drop (studyInstanceUID: string, sha256: string): Promise<void> {
    const list = this.byStudy.get(studyInstanceUID) ?? []
    const at = list.findIndex((s) => s.blob.sha256 === sha256)
    if (at < 0) return
    const [staged] = list.splice(at, 1)
    this.shas.delete(staged!.blob.sha256)
    if (list.length === 0) this.byStudy.delete(studyInstanceUID)
    await this.store.blobs.discard(staged!.blob)
  }

  /** Commits every study staged so far, each in its own atomic batch. */
  async commit (): Promise<CommitResult[]> {
    const results: CommitResult[] = []
    for (const [studyUID, staged] of this.byStudy) {
      results.push(await this.store.commitStudy(studyUID, staged, this.origin))
      this.byStudy.delete(studyUID)
    }
    this.shas.clear()
    return results
  }

  /**
   * Commits every study staged so far, each in its own atomic batch, and goes on after a study whose
   * commit failed: the answer says for each study what was committed or why nothing was.
   */
  async commitSettled (): Promise<Array<{ studyInstanceUID: string, result: CommitResult } | { studyInstanceUID: string, error: unknown }>> {
    // All at once: the studies of one request go into one group commit.
    const studies = [...this.byStudy]
    this.byStudy.clear()
    this.shas.clear()
    return Promise.all(studies.map(async ([studyUID, staged]) => {
      try {
        return { studyInstanceUID: studyUID, result: await this.store.commitStudy(studyUID, staged, this.origin) }
      } catch (error) {
        // A failed commit placed nothing the index points at; what it staged is dropped here.
        for (const s of staged) await this.store.blobs.discard(s.blob)
        return { studyInstanceUID: studyUID, error }
      }
    }))
  }

  /** Drops everything staged and not committed. */
  async abort (): Promise<void> {
    for (const staged of this.byStudy.values()) {
      for (const s of staged) await this.store.blobs.discard(s.blob)
    }
    this.byStudy.clear()
    this.shas.clear()
  }
}

function patientOf (header: InstanceHeader): { id: string, issuer: string } {
  return { id: header.patient.id, issuer: header.patient.issuer }
}

function describePatient (p: { id: string, issuer: string }): string {
  return p.issuer === '' ? JSON.stringify(p.id) : `${JSON.stringify(p.id)} (${p.issuer})`
}

function instanceRecord (header: InstanceHeader, blob: StagedBlob): InstanceRecord {
  return {
    studyInstanceUID: header.studyInstanceUID,
    seriesInstanceUID: header.seriesInstanceUID,
    sopInstanceUID: header.sopInstanceUID,
    sopClassUID: header.sopClassUID,
    transferSyntaxUID: header.transferSyntaxUID,
    part10: header.part10,
    ...header.instance,
    sha256: blob.sha256,
    size: blob.size,
    specificCharacterSet: header.specificCharacterSet
  }
}

/** Builds the study's next index entries from what was there plus the newly accepted instances. */
function aggregate (headers: InstanceHeader[], added: InstanceRecord[], previous: StudyEntries | undefined): StudyEntries {
  const now = new Date().toISOString()
  const first = headers[0]!
  const seriesByUid = new Map<string, SeriesRecord>((previous?.series ?? []).map((s) => [s.seriesInstanceUID, s]))
  for (const h of headers) {
    if (seriesByUid.has(h.seriesInstanceUID)) continue
    seriesByUid.set(h.seriesInstanceUID, {
      studyInstanceUID: h.studyInstanceUID,
      seriesInstanceUID: h.seriesInstanceUID,
      modality: h.series.modality,
      number: h.series.number,
      description: h.series.description,
      bodyPart: h.series.bodyPart,
      numberOfInstances: 0,
      size: 0
    })
  }
  const study: StudyRecord = previous?.study ?? {
    studyInstanceUID: first.studyInstanceUID,
    patient: { ...first.patient },
    date: first.study.date,
    time: first.study.time,
    accessionNumber: first.study.accessionNumber,
    description: first.study.description,
    referringPhysician: first.study.referringPhysician,
    studyId: first.study.studyId,
    modalities: [],
    numberOfSeries: 0,
    numberOfInstances: 0,
    numberOfReports: 0,
    size: 0,
    receivedAt: now,
    updatedAt: now
  }
  // A BSN learned from a later instance still makes the study findable by BSN.
  const bsn = study.patient.bsn ?? headers.find((h) => h.patient.bsn !== undefined)?.patient.bsn
  const base: StudyEntries = {
    study: { ...study, patient: { ...study.patient, ...(bsn === undefined ? {} : { bsn }) }, updatedAt: now },
    series: [...seriesByUid.values()],
    instances: previous?.instances ?? []
  }
  return recount(base, [...base.instances, ...added])
}

/** Recomputes series and study counts and sizes from the instance list. */
function recount (entries: StudyEntries, instances: InstanceRecord[]): StudyEntries {
  const series = entries.series
    .map((s) => {
      const mine = instances.filter((i) => i.seriesInstanceUID === s.seriesInstanceUID)
      return { ...s, numberOfInstances: mine.length, size: mine.reduce((n, i) => n + i.size, 0) }
    })
    .filter((s) => s.numberOfInstances > 0)
  const study: StudyRecord = {
    ...entries.study,
    modalities: [...new Set(series.map((s) => s.modality).filter((m) => m !== ''))].sort(),
    numberOfSeries: series.length,
    numberOfInstances: instances.length,
    numberOfReports: instances.filter((i) => i.isReport).length,
    size: instances.reduce((n, i) => n + i.size, 0)
  }
  return { study, series, instances }
}
