import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { isBeeldnetError } from '../../protocol/errors.ts'
import { ImportSourceError } from '../errors.ts'
import type { CommitResult, StudyStore } from '../store/study-store.ts'
import { isDicomdirName, readDicomdir } from './dicomdir.ts'

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
  const warn = (message: string): void => onEvent?.({ type: 'warning', message })
  const files = await collectFiles(paths, warn)
  onEvent?.({ type: 'found', total: files.length })
  const summary: ImportSummary = { files: files.length, stored: 0, duplicates: 0, rejected: [], outcomes: [], studies: [], bytes: 0 }
  const session = store.beginImport()
  // A staged file is known by its bytes' hash (unique within a session), never by its SOP Instance
  // UID: several files of one import may carry the same UID, and each must be named for itself.
  const stagedBySha = new Map<string, ImportFileOutcome>()
  try {
    for (const [n, path] of files.entries()) {
      signal?.throwIfAborted()
      try {
        const outcome = await session.addFile(path, signal)
        summary.bytes += outcome.size
        const sopInstanceUID = outcome.header.sopInstanceUID
        if (outcome.status === 'duplicate') {
          summary.duplicates++
          summary.outcomes.push({ path, status: 'duplicate', sopInstanceUID })
        } else {
          const staged: ImportFileOutcome = { path, status: 'stored', sopInstanceUID }
          stagedBySha.set(outcome.sha256, staged)
          summary.outcomes.push(staged)
        }
        onEvent?.({ type: 'file', path, done: n + 1, total: files.length, status: outcome.status })
      } catch (err) {
        if (!isBeeldnetError(err)) throw err
        summary.outcomes.push({ path, status: 'rejected', code: err.code, message: err.message })
        onEvent?.({ type: 'file', path, done: n + 1, total: files.length, status: 'rejected', code: err.code })
      }
    }
    signal?.throwIfAborted()
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
  return summary
}

/** Expands the paths to files: a DICOMDIR (or a folder holding one) stands for the files it lists. */
async function collectFiles (paths: string[], warn: (message: string) => void): Promise<string[]> {
  const out: string[] = []
  for (const path of paths) {
    const info = await lstat(path).catch((err: unknown) => { throw new ImportSourceError(`cannot read ${path}: ${(err as Error).message}`, { cause: err }) })
    if (info.isFile()) {
      if (isDicomdirName(path)) out.push(...await filesOfDicomdir(path, warn) ?? [])
      else out.push(path)
    } else if (info.isDirectory()) {
      await walk(path, out, warn)
    } else {
      warn(`skipped ${path}: not a file or folder`)
    }
  }
  return out
}

async function walk (dir: string, out: string[], warn: (message: string) => void): Promise<void> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))
  const dicomdir = entries.find((e) => e.isFile() && isDicomdirName(e.name))
  if (dicomdir !== undefined) {
    const listed = await filesOfDicomdir(join(dir, dicomdir.name), warn)
    if (listed !== undefined) {
      out.push(...listed)
      await warnAboutUnlisted(dir, new Set(listed), warn)
      return
    }
  }
  for (const entry of entries) {
    const path = join(dir, entry.name)
    // Symlinks are not followed: a medium must not lead the import elsewhere on the disk.
    if (entry.isDirectory()) await walk(path, out, warn)
    else if (entry.isFile()) out.push(path)
  }
}

/** A stale DICOMDIR misses files: say how many DICOM-looking files on the medium it does not list. */
async function warnAboutUnlisted (dir: string, listed: Set<string>, warn: (message: string) => void): Promise<void> {
  const all: string[] = []
  await walkPlain(dir, all)
  const unlisted = all.filter((p) => !listed.has(p) && !isDicomdirName(p) && !/\.(exe|dll|inf|ini|txt|htm|html|xml|js|css|png|jpg|ico|pdf|cfg|dat)$/i.test(p))
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
async function filesOfDicomdir (path: string, warn: (message: string) => void): Promise<string[] | undefined> {
  try {
    const { files, unresolved } = await readDicomdir(path)
    if (unresolved.length > 0) warn(`${path} lists ${unresolved.length} file(s) that are not on the medium: ${unresolved.slice(0, 5).join(', ')}`)
    return files
  } catch (err) {
    warn(`${path} could not be read (${isBeeldnetError(err) ? err.code : (err as Error).message}); importing the folder's files instead`)
    return undefined
  }
}
