import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { finished, pipeline } from 'node:stream/promises'
import { isBeeldnetError } from '../../protocol/errors.ts'
import { isDicomdirName, readDirectoryRecords, referencedFileIds } from '../dicom/dicomdir.ts'
import { beginImportRun, type ImportFileOutcome, type ImportRun, type ImportSummary } from '../dicom/file-import.ts'
import { describeDicomdir } from '../dicom/media-overview.ts'
import { checkedAsItArrives } from '../dicom/opening-check.ts'
import { isUploadName, planUpload, type DicomdirContents, type PlannedMedia, type UploadPlan } from '../dicom/media-plan.ts'
import { ImportSourceError } from '../errors.ts'
import type { StudyStore } from '../store/study-store.ts'
import { BadRequestError, ImportStateError, NotFoundError, StudyNotPickedError } from './errors.ts'

/*
 * Imports into the running node, file by file over HTTP (the CLI beside it, IT's page for a
 * patient's DVD or USB stick). A session is one import run: each file's bytes go straight to the
 * store's staging as they arrive and are named in the same per-file report as `node import`; every
 * study commits at the end. A folder with a DICOMDIR is planned as the walk on disk plans it: the
 * client announces the names, sends the DICOMDIRs, and then sends the files the plan names.
 * The plan also says what the DICOMDIRs list (patients, studies); the client may pick studies
 * before the first file, and from then on the plan names only their files and a file whose own
 * header is of a study on the medium that was not picked is refused: the browser is not trusted
 * to leave it out.
 */

/** A DICOMDIR lists a medium's files; one larger than this is not one. */
const MAX_DICOMDIR_BYTES = 64 * 1024 * 1024

export interface ImportSessionsInit {
  /** a session no one sent anything to for this long is aborted, and what it staged dropped (default 30 minutes) */
  idleMs?: number
}

interface Session {
  id: string
  /** who began it: only they may go on with it */
  owner: string
  announced?: string[]
  /** DICOMDIRs among the announced names, with what each references once it arrived */
  dicomdirs: Map<string, DicomdirContents | undefined>
  plan?: PlannedMedia
  /** the studies picked (POST .../pick); undefined: all of them */
  picked?: Set<string>
  planned?: Set<string>
  run: ImportRun
  received: number
  lastUsed: number
  /** tasks running or waiting: a session busy with a long file is not idle */
  busy: number
  /** one file at a time, in the order they arrive: the report keeps that order */
  queue: Promise<unknown>
  state: 'open' | 'committing' | 'done'
}

export interface BegunImport { id: string, dicomdirs: string[] }

/** The plan as the API answers it: once studies are picked, only their files (and those no DICOMDIR lists). */
export interface PlanAnswer extends UploadPlan {
  picked?: string[]
}

export class ImportSessions {
  private readonly sessions = new Map<string, Session>()
  private readonly store: StudyStore
  private readonly idleMs: number
  private readonly sweep: NodeJS.Timeout

  constructor (store: StudyStore, init: ImportSessionsInit = {}) {
    this.store = store
    this.idleMs = init.idleMs ?? 30 * 60_000
    this.sweep = setInterval(() => { void this.dropIdle() }, Math.min(60_000, this.idleMs)).unref()
  }

  /** `files`: the names of a folder's files (relative, `/` between components), when the client wants them planned. */
  begin (owner: string, files?: string[]): BegunImport {
    if (files !== undefined) {
      const bad = files.find((f) => !isUploadName(f))
      if (bad !== undefined) throw new BadRequestError(`not a relative name of a file in the folder: ${JSON.stringify(bad.slice(0, 200))}`)
    }
    const id = randomBytes(16).toString('hex')
    const dicomdirs = new Map((files ?? []).filter(isDicomdirName).map((d) => [d, undefined]))
    const admit = (header: { studyInstanceUID: string }): void => {
      const uid = header.studyInstanceUID
      if (session.picked !== undefined && !session.picked.has(uid) && onMedium(session.plan, uid)) throw new StudyNotPickedError(uid)
    }
    const session: Session = { id, owner, dicomdirs, run: beginImportRun(this.store, { origin: `upload by ${owner}`, admit }), received: 0, lastUsed: Date.now(), busy: 0, queue: Promise.resolve(), state: 'open' }
    if (files !== undefined) session.announced = files
    this.sessions.set(id, session)
    return { id, dicomdirs: [...dicomdirs.keys()] }
  }

  /** A DICOMDIR of the announced folder: written to a temp file (never held in memory) and read for its file IDs. */
  async addDicomdir (owner: string, id: string, name: string, body: Readable): Promise<{ path: string, listed: number, missing: string[] } | { path: string, error: string }> {
    const session = this.open(owner, id)
    if (!session.dicomdirs.has(name)) throw new ImportStateError(`${name} is not a DICOMDIR among the names this import announced`)
    return this.serially(session, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'beeldnet-dicomdir-'))
      try {
        const file = join(dir, 'DICOMDIR')
        let size = 0
        await pipeline(body, async function * (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            size += chunk.length
            if (size > MAX_DICOMDIR_BYTES) throw new ImportSourceError(`${name} is larger than ${MAX_DICOMDIR_BYTES / 1024 / 1024} MiB: not a DICOMDIR`)
            yield chunk
          }
        }, createWriteStream(file))
        let contents: DicomdirContents
        try {
          const records = readDirectoryRecords(file)
          contents = { ...referencedFileIds(records), listing: describeDicomdir(records) }
        } catch (err) {
          if (!isBeeldnetError(err)) throw err
          contents = { error: err.code }
        }
        session.dicomdirs.set(name, contents)
        return 'error' in contents ? { path: name, error: contents.error } : { path: name, listed: contents.ids.length, missing: contents.refused }
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    })
  }

  /** What to send, once every DICOMDIR of the announced names has arrived, and what is on the medium. */
  plan (owner: string, id: string): PlanAnswer {
    const session = this.open(owner, id)
    return this.answerOf(session)
  }

  /** Only these studies of the medium are imported: before the first file, and only studies the overview lists. */
  pick (owner: string, id: string, studies: string[]): PlanAnswer {
    const session = this.open(owner, id)
    if (session.announced === undefined) throw new ImportStateError('only an import that announced its files (POST /api/imports {files}) can pick studies')
    const plan = this.planOf(session)
    if (session.received > 0 || session.busy > 0) throw new ImportStateError('studies are picked before the first file is sent')
    const unknown = studies.find((uid) => !onMedium(plan, uid))
    if (unknown !== undefined) throw new BadRequestError(`the medium's DICOMDIR lists no study ${unknown.slice(0, 64)}`)
    session.picked = new Set(studies)
    delete session.planned
    return this.answerOf(session)
  }

  /** One file's bytes, streamed into the store's staging; `name` is how the report names it. */
  async addFile (owner: string, id: string, name: string, body: Readable, signal?: AbortSignal): Promise<{ outcome: ImportFileOutcome, received: number }> {
    const session = this.open(owner, id)
    if (name === '' || name.length > 4096 || [...name].some((c) => c.charCodeAt(0) < 0x20)) throw new BadRequestError('give the file\'s name (path=...) in printable characters, at most 4096')
    if (session.announced !== undefined && !this.plannedNames(session).has(name)) throw new ImportStateError(`${name} is not among the files this import planned (GET /api/imports/${id}/plan)`)
    try {
      return await this.serially(session, async () => {
        // A file that is not DICOM is refused on its first bytes and nothing more of it is written.
        const outcome = await session.run.add(name, checkedAsItArrives(body.iterator({ destroyOnReturn: false })), signal)
        session.received++
        return { outcome, received: session.received }
      })
    } finally {
      await drained(body)
    }
  }

  /** Commits every study staged; the session ends with the per-file report. */
  async commit (owner: string, id: string): Promise<ImportSummary> {
    const session = this.open(owner, id)
    const media: Partial<UploadPlan> = session.announced === undefined ? {} : this.answerOf(session)
    return this.serially(session, async () => {
      session.state = 'committing'
      try {
        return await session.run.finish({ missing: media.missing ?? [], warnings: media.warnings ?? [] })
      } finally {
        session.state = 'done'
        this.sessions.delete(id)
      }
    })
  }

  async abort (owner: string, id: string): Promise<void> {
    const session = this.open(owner, id)
    session.state = 'done'
    this.sessions.delete(id)
    await session.queue.catch(() => {})
    await session.run.abort()
  }

  /** Aborts every open import (the node stops). */
  async close (): Promise<void> {
    clearInterval(this.sweep)
    for (const session of [...this.sessions.values()]) {
      session.state = 'done'
      this.sessions.delete(session.id)
      await session.queue.catch(() => {})
      await session.run.abort()
    }
  }

  private open (owner: string, id: string): Session {
    const session = this.sessions.get(id)
    // Someone else's import is not there for this caller: its names and outcomes are theirs.
    if (session === undefined || session.owner !== owner) throw new NotFoundError(`no open import ${id.slice(0, 64)} (committed, aborted, idle too long, or begun by someone else)`)
    if (session.state !== 'open') throw new ImportStateError(`the import ${id} is being committed`)
    session.lastUsed = Date.now()
    return session
  }

  private planOf (session: Session): PlannedMedia {
    if (session.plan !== undefined) return session.plan
    const pending = [...session.dicomdirs].filter(([, c]) => c === undefined).map(([name]) => name)
    if (pending.length > 0) throw new ImportStateError(`send the DICOMDIR(s) first: ${pending.slice(0, 5).join(', ')}`)
    session.plan = planUpload(session.announced ?? [], new Map([...session.dicomdirs].map(([name, c]) => [name, c!])))
    return session.plan
  }

  private answerOf (session: Session): PlanAnswer {
    const { files, missing, warnings, overview, studyOf } = this.planOf(session)
    const picked = session.picked
    if (picked === undefined) return { files, missing, warnings, overview }
    // A name no DICOMDIR puts in a study is kept: its own header decides when it arrives.
    const wanted = (name: string): boolean => { const uid = studyOf.get(name); return uid === undefined || picked.has(uid) }
    return { files: files.filter(wanted), missing: missing.filter(wanted), warnings, overview, picked: [...picked] }
  }

  private plannedNames (session: Session): Set<string> {
    session.planned ??= new Set(this.answerOf(session).files)
    return session.planned
  }

  private async serially<T> (session: Session, task: () => Promise<T>): Promise<T> {
    session.busy++
    const run = async (): Promise<T> => {
      try { return await task() } finally {
        session.busy--
        session.lastUsed = Date.now()
      }
    }
    const result = session.queue.then(run, run)
    session.queue = result.catch(() => {})
    return result
  }

  private async dropIdle (): Promise<void> {
    const now = Date.now()
    for (const session of [...this.sessions.values()]) {
      if (session.state !== 'open' || session.busy > 0 || now - session.lastUsed < this.idleMs) continue
      this.sessions.delete(session.id)
      session.state = 'done'
      await session.queue.catch(() => {})
      await session.run.abort().catch(() => {})
    }
  }
}

/** Whether the medium's DICOMDIRs list the study (a file of a study they do not list is not the pick's to refuse). */
function onMedium (plan: PlannedMedia | undefined, studyInstanceUID: string): boolean {
  return plan?.overview.patients.some((p) => p.studies.some((s) => s.studyInstanceUID === studyInstanceUID)) ?? false
}

/**
 * The rest of a refused file's bytes, read and dropped before it is answered: a request closed
 * under a client still sending loses the client its answer, and Node stops reading a request
 * it has answered, which leaves a client that sends on waiting.
 */
async function drained (body: Readable): Promise<void> {
  if (body.readableEnded || body.destroyed) return
  body.resume()
  await finished(body).catch(() => {})
}
