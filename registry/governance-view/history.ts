import type { Directory, Institution } from '../../protocol/registry/documents.ts'
import type { DirectoryIndexEntry } from '../store/records.ts'
import { diffInstitutions, type DirectoryChange } from './diff.ts'

/*
 * Each institution's history, derived by walking the published directory versions in order:
 * what changed from one version to the next is what governance decided in that version.
 * Published versions never change, so the walk is kept and only new versions are read.
 */

export interface HistoryEvent {
  version: number
  /** the version's issue time, when its changes took effect */
  at: string
  change: DirectoryChange
}

export interface HistoryState {
  /** the last version walked, and its hash (a different hash there means starting over) */
  upTo: { version: number, hash: string } | null
  institutions: Institution[]
  /** per URA, oldest first */
  events: Map<string, HistoryEvent[]>
}

export function emptyHistory (): HistoryState {
  return { upTo: null, institutions: [], events: new Map() }
}

/** The state after one more version (pure: `state` is not changed). */
export function walkVersion (state: HistoryState, directory: Directory, hash: string): HistoryState {
  const events = new Map(state.events)
  for (const change of diffInstitutions(state.institutions, directory.institutions)) {
    events.set(change.ura, [...events.get(change.ura) ?? [], { version: directory.version, at: directory.issued, change }])
  }
  return { upTo: { version: directory.version, hash }, institutions: directory.institutions, events }
}

/** The whole history of a list of versions, oldest first. */
export function historyOf (versions: ReadonlyArray<{ directory: Directory, hash: string }>): HistoryState {
  return versions.reduce((state, v) => walkVersion(state, v.directory, v.hash), emptyHistory())
}

export interface HistoryWalker {
  /** the history up to the newest entry of `index`, reading only versions not walked before */
  update: (index: readonly DirectoryIndexEntry[]) => Promise<HistoryState>
}

/** Keeps the walk between requests; one update at a time. */
export function createHistoryWalker (load: (version: number) => Promise<Directory>): HistoryWalker {
  let state = emptyHistory()
  let queue: Promise<unknown> = Promise.resolve()
  const update = async (index: readonly DirectoryIndexEntry[]): Promise<HistoryState> => {
    const upTo = state.upTo
    // Versions are append-only; anything else (another store behind the same server) starts over.
    if (upTo !== null && index.find((e) => e.version === upTo.version)?.hash !== upTo.hash) state = emptyHistory()
    for (const entry of index) {
      if (state.upTo !== null && entry.version <= state.upTo.version) continue
      state = walkVersion(state, await load(entry.version), entry.hash)
    }
    return state
  }
  return {
    update: async (index) => {
      const next = queue.then(async () => update(index))
      queue = next.catch(() => undefined)
      return next
    }
  }
}
