import { lstat, readdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { isBeeldnetError } from '../../protocol/errors.ts'
import { ImportSourceError } from '../errors.ts'
import type { CommitResult, StudyStore } from '../store/study-store.ts'
import { isDicomdirName, readDicomdir } from './dicomdir.ts'
import type { InstanceHeader } from './instance-header.ts'
import { NOT_DICOM_NAMES } from './media-plan.ts'

/*
 * `beeldnet node import`: files, folders (recursively) and DVD/USB media with a DICOMDIR. A bad
 * file is rejected with its code and the rest goes on; each study commits as one batch at the end.
 */

export interface ImportRejection {
  path: string
  code: string
  message: string
}

/** What became of one file: each file of the import is named once, with its own outcome. */
export interface ImportFileOutcome {
  path: string
  /** stored: its bytes are in the store now; duplicate: the store keeps the copy it had (or another file of this import) */
  status: 'stored' | 'duplicate' | 'rejected'
  sopInstanceUID?: string
  code?: string
  message?: string
}

export interface ImportSummary {
  files: number
  stored: number
  duplicates: number
  /** every rejected file, in the order the files were read */
  rejected: ImportRejection[]
  outcomes: ImportFileOutcome[]
  studies: Array<{ studyInstanceUID: string, stored: number, duplicates: number }>
  bytes: number
  /** files a DICOMDIR names that are not on the medium (nothing to import for them) */
  missing: string[]
  /** what the walk of the media said (an unreadable DICOMDIR, files it does not list) */
  warnings: string[]
}

export type ImportEvent =
  | { type: 'found', total: number }
  | { type: 'file', path: string, done: number, total: number, status: 'staged' | 'duplicate' | 'rejected', code?: string }
  | { type: 'warning', message: string }

export interface ImportFilesInit {
  store: StudyStore
  onEvent?: (event: ImportEvent) => void
  signal?: AbortSignal
}

export async function importFiles (paths: string[], init: ImportFilesInit): Promise<ImportSummary> {
  const { store, onEvent, signal } = init
  const media = await collectMedia(paths, (message) => onEvent?.({ type: 'warning', message }))
  const { files } = media
  onEvent?.({ type: 'found', total: files.length })
  const run = beginImportRun(store)
  try {
    for (const [n, path] of files.entries()) {
      signal?.throwIfAborted()
      const outcome = await run.add(path, path, signal)
      onEvent?.({ type: 'file', path, done: n + 1, total: files.length, status: outcome.status === 'stored' ? 'staged' : outcome.status, ...(outcome.code === undefined ? {} : { code: outcome.code }) })
    }
    signal?.throwIfAborted()
  } catch (err) {
    await run.abort()
    throw err
  }
  return run.finish({ missing: media.missing, warnings: media.warnings })
}

/**
 * One import, file by file, from paths on this machine or from bytes that arrive (an upload to the
 * running node): each file is staged as it comes and named in the summary for itself, and every
 * study commits as one batch at the end.
 */
export interface ImportRun {
  /** `path` is how the summary names the file; `source` is its path on disk or its bytes as they arrive. A bad file is an outcome, not a throw. */
  add: (path: string, source: string | AsyncIterable<Uint8Array>, signal?: AbortSignal) => Promise<ImportFileOutcome>
  /** commits what was staged and says what became of every file */
  finish: (media?: { missing?: string[], warnings?: string[] }) => Promise<ImportSummary>
  /** drops everything staged */
  abort: () => Promise<void>
}

export interface ImportRunInit {
  origin?: string
  /** throws a BeeldnetError for a file the import must not take (a study not picked); the file is then rejected with its code */
  admit?: (header: InstanceHeader) => void
}

export function beginImportRun (store: StudyStore, init: ImportRunInit = {}): ImportRun {
  const summary: ImportSummary = { files: 0, stored: 0, duplicates: 0, rejected: [], outcomes: [], studies: [], bytes: 0, missing: [], warnings: [] }
  const session = store.beginImport(init.origin === undefined ? {} : { origin: init.origin })
  // A staged file is known by its bytes' hash (unique within a session), never by its SOP Instance
  // UID: several files of one import may carry the same UID, and each must be named for itself.
  const stagedBySha = new Map<string, ImportFileOutcome>()
  return {
    async add (path, source, signal) {
      summary.files++
      try {
        const outcome = await session.add(source, signal)
        summary.bytes += outcome.size
        try {
          init.admit?.(outcome.header)
        } catch (err) {
          if (outcome.status === 'staged') await session.drop(outcome.header.studyInstanceUID, outcome.sha256)
          throw err
        }
        const sopInstanceUID = outcome.header.sopInstanceUID
        if (outcome.status === 'duplicate') {
          summary.duplicates++
          const duplicate: ImportFileOutcome = { path, status: 'duplicate', sopInstanceUID }
          summary.outcomes.push(duplicate)
          return { ...duplicate }
        }
        const staged: ImportFileOutcome = { path, status: 'stored', sopInstanceUID }
        stagedBySha.set(outcome.sha256, staged)
        summary.outcomes.push(staged)
        return { ...staged }
      } catch (err) {
        if (!isBeeldnetError(err) || err.code === 'BEELDNET_ERR_DISK_FULL') {
          // not the file's fault (an upload cut off, the disk full): no outcome, the caller decides
          summary.files--
          throw err
        }
        const rejected: ImportFileOutcome = { path, status: 'rejected', code: err.code, message: err.message }
        summary.outcomes.push(rejected)
        return { ...rejected }
      }
    },
    async finish (media = {}) {
      try {
        const results: CommitResult[] = await session.commit()
        for (const r of results) {
          summary.stored += r.stored
          summary.duplicates += r.duplicates
          for (const rej of r.rejected) {
            const staged = stagedBySha.get(rej.sha256)
            if (staged !== undefined) Object.assign(staged, { status: 'rejected', code: rej.code, message: rej.message })
          }
          summary.studies.push({ studyInstanceUID: r.studyInstanceUID, stored: r.stored, duplicates: r.duplicates })
        }
      } catch (err) {
        await session.abort()
        throw err
      }
      // A staged file that was not refused and whose bytes are not what the store holds under its
      // UID now was taken as a duplicate of the stored copy.
      for (const [sha256, staged] of stagedBySha) {
        if (staged.status !== 'stored' || staged.sopInstanceUID === undefined) continue
        if ((await store.index.getSopLocation(staged.sopInstanceUID))?.sha256 !== sha256) staged.status = 'duplicate'
      }
      for (const { path, status, code = '', message = '' } of summary.outcomes) if (status === 'rejected') summary.rejected.push({ path, code, message })
      summary.missing.push(...media.missing ?? [])
      summary.warnings.push(...media.warnings ?? [])
      return summary
    },
    async abort () { await session.abort() }
  }
}

/** The files of paths on this machine, as the import takes them, with what a DICOMDIR names that is not there. */
export interface CollectedMedia {
  files: string[]
  missing: string[]
  warnings: string[]
}

/** Expands the paths to files: a DICOMDIR (or a folder holding one) stands for the files it lists. */
export async function collectMedia (paths: string[], onWarning?: (message: string) => void): Promise<CollectedMedia> {
  const media: CollectedMedia = { files: [], missing: [], warnings: [] }
  const warn = (message: string): void => { media.warnings.push(message); onWarning?.(message) }
  media.files = await collectFiles(paths, warn, media.missing)
  return media
}

/** Expands the paths to files: a DICOMDIR (or a folder holding one) stands for the files it lists. */
async function collectFiles (paths: string[], warn: (message: string) => void, missing: string[]): Promise<string[]> {
  const out: string[] = []
  for (const path of paths) {
    const info = await lstat(path).catch((err: unknown) => { throw new ImportSourceError(`cannot read ${path}: ${(err as Error).message}`, { cause: err }) })
    if (info.isFile()) {
      if (isDicomdirName(path)) out.push(...await filesOfDicomdir(path, warn, missing) ?? [])
      else out.push(path)
    } else if (info.isDirectory()) {
      await walk(path, out, warn, missing)
    } else {
      warn(`skipped ${path}: not a file or folder`)
    }
  }
  return out
}

async function walk (dir: string, out: string[], warn: (message: string) => void, missing: string[]): Promise<void> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))
  const dicomdir = entries.find((e) => e.isFile() && isDicomdirName(e.name))
  if (dicomdir !== undefined) {
    const listed = await filesOfDicomdir(join(dir, dicomdir.name), warn, missing)
    if (listed !== undefined) {
      out.push(...listed)
      await warnAboutUnlisted(dir, new Set(listed), warn)
      return
    }
  }
  for (const entry of entries) {
    const path = join(dir, entry.name)
    // Symlinks are not followed: a medium must not lead the import elsewhere on the disk.
    if (entry.isDirectory()) await walk(path, out, warn, missing)
    else if (entry.isFile()) out.push(path)
  }
}

/** A stale DICOMDIR misses files: say how many DICOM-looking files on the medium it does not list. */
async function warnAboutUnlisted (dir: string, listed: Set<string>, warn: (message: string) => void): Promise<void> {
  const all: string[] = []
  await walkPlain(dir, all)
  const unlisted = all.filter((p) => !listed.has(p) && !isDicomdirName(p) && !NOT_DICOM_NAMES.test(p))
  if (unlisted.length > 0) warn(`${dir}: ${unlisted.length} file(s) on the medium are not in its DICOMDIR and were not imported (import them by path if they belong): ${unlisted.slice(0, 3).join(', ')}`)
}

async function walkPlain (dir: string, out: string[]): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) await walkPlain(path, out)
    else if (entry.isFile()) out.push(path)
  }
}

/** The DICOMDIR's files, or undefined (with a warning) when it cannot be read, so the folder is walked instead. */
async function filesOfDicomdir (path: string, warn: (message: string) => void, missing: string[]): Promise<string[] | undefined> {
  try {
    const { files, unresolved } = await readDicomdir(path)
    missing.push(...unresolved.map((id) => join(dirname(path), ...id.split('\\'))))
    if (unresolved.length > 0) warn(`${path} lists ${unresolved.length} file(s) that are not on the medium: ${unresolved.slice(0, 5).join(', ')}`)
    return files
  } catch (err) {
    warn(`${path} could not be read (${isBeeldnetError(err) ? err.code : (err as Error).message}); importing the folder's files instead`)
    return undefined
  }
}
