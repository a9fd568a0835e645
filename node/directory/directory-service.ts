import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import { BrokenChainError, ForkError, isBeeldnetError, RollbackError } from '../../protocol/errors.ts'
import { verifyDirectoryDelta, type HeldDirectory } from '../../protocol/registry/delta.ts'
import {
  directoryOf, envelopeOf, isSignedDirectory, parseDocument, DirectoryDelta, SignedDirectory, SignedRoot, SignedTimestamp,
  type Directory, type DirectoryHeader, type Root, type Timestamp
} from '../../protocol/registry/documents.ts'
import { entriesOf, type EntriesTree } from '../../protocol/registry/entries-tree.ts'
import { directoryHash, verifyRootUpdate, verifyTimestamp, type Verified, type VerifiedDirectory } from '../../protocol/registry/verify.ts'
import { ConfigError, RootNotPinnedError, TimestampMismatchError } from '../errors.ts'
import { linkOf, verifyLink, verifyOffered, type HeldLink } from './chain.ts'
import { createRegistryClient, type RegistryClient } from './registry-client.ts'
import { readJsonFile, type ErrorRecord, type TrustedSet, type TrustStore } from './trust-store.ts'

/*
 * Keeps the node's verified view of the network: the root in force and the newest directory.
 * It polls the registry (then mirrors, if the registry fails), and takes directories from anywhere
 * else (a file, later a peer): a file proves itself against the pinned root, whoever delivered it.
 * Every refusal leaves what is held untouched and is recorded as lastError; a fork keeps both files
 * as evidence and raises 'alarm'. Other parts (connection gating) follow 'update'.
 */

export interface DirectoryServiceComponents {
  trustStore: TrustStore
  logger: Logger
  /** how to reach a registry or mirror (default: HTTP with createRegistryClient) */
  clientFor?: (url: string) => RegistryClient
}

export interface DirectoryServiceInit {
  /** the registry's base URL; '' means none: only files and mirrors (default '') */
  registryUrl?: string
  /** URL prefixes serving the same files, tried in order when the registry fails (default []) */
  mirrors?: string[]
  /** seconds between polls; 0 turns polling off (default 300) */
  pollIntervalSeconds?: number
  /** the clock (default () => new Date()) */
  now?: () => Date
  /** most versions a refresh walks to catch up; beyond that it refuses (default 1000) */
  maxCatchUp?: number
}

export interface DirectoryUpdate {
  previous: Directory | undefined
  current: Directory
  hash: string
  source: string
}

/** Something that looks like an attack rather than an outage: a fork, or a forged signature. */
export interface DirectoryAlarm {
  code: string
  message: string
  source: string
  version?: number
  /** files kept as evidence (forks/) */
  evidence: string[]
}

export interface DirectoryServiceEvents {
  update: [DirectoryUpdate]
  alarm: [DirectoryAlarm]
}

export interface DirectoryStatus {
  network: string | null
  rootVersion: number | null
  directoryVersion: number | null
  hash: string | null
  issued: string | null
  expires: string | null
  expired: boolean
  /** seconds since the held directory was issued */
  ageSeconds: number | null
  institutions: number
  lastRefreshed: string | null
  lastError: ErrorRecord | null
  registryUrl: string | null
  mirrors: string[]
}

export interface AcceptResult {
  changed: boolean
  version: number
  hash: string
  source: string
}

export interface DirectoryService extends EventEmitter<DirectoryServiceEvents> {
  start (): Promise<void>
  stop (): Promise<void>
  /** asks the registry (then the mirrors) for news now; throws the refusal's error, keeping what is held */
  refresh (signal?: AbortSignal): Promise<AcceptResult>
  /** takes a directory (or an ascending list of versions) from any source: it must verify against the root */
  acceptDirectory (value: unknown, source: string, signal?: AbortSignal): Promise<AcceptResult>
  /** a JSON file holding one signed directory or an ascending array of them */
  acceptDirectoryFile (path: string, signal?: AbortSignal): Promise<AcceptResult>
  status (): DirectoryStatus
  /** the root in force, if one is pinned */
  readonly root: Root | undefined
  /** the held directory, if any */
  readonly directory: Directory | undefined
  /** the held directory as signed (the envelope), to hand on to peers: it proves itself to them */
  heldEnvelope (): SignedDirectory | undefined
}

const ALARM_CODES = new Set(['BEELDNET_ERR_FORK', 'BEELDNET_ERR_FORGED', 'BEELDNET_ERR_ENTRIES_MISMATCH'])

/** Refusals of a delta after which the whole directory is fetched instead (not an attack: an older registry, a mirror without deltas, a gap). */
const DELTA_FALLBACK_CODES = new Set(['BEELDNET_ERR_NOT_FOUND', 'BEELDNET_ERR_NOT_PUBLISHED', 'BEELDNET_ERR_BROKEN_CHAIN', 'BEELDNET_ERR_UNKNOWN_ROOT', 'BEELDNET_ERR_REGISTRY_RESPONSE', 'BEELDNET_ERR_BAD_REQUEST'])

class DefaultDirectoryService extends EventEmitter<DirectoryServiceEvents> implements DirectoryService {
  private readonly trustStore: TrustStore
  private readonly logger: Logger
  private readonly clientFor: (url: string) => RegistryClient
  private readonly registryUrl: string
  private readonly mirrors: string[]
  private readonly pollIntervalSeconds: number
  private readonly now: () => Date
  private readonly maxCatchUp: number
  private set: TrustedSet | undefined
  /** the held directory as a verifier holds it, and (once needed) the trie of its entries, to take deltas */
  private held: { directory: Directory, tree: EntriesTree | undefined } | undefined
  private roots = new Map<number, Root>()
  private queue: Promise<unknown> = Promise.resolve()
  private timer: NodeJS.Timeout | undefined
  private polling: AbortController | undefined

  constructor (components: DirectoryServiceComponents, init: DirectoryServiceInit) {
    super()
    this.trustStore = components.trustStore
    this.logger = components.logger.child({ component: 'directory' })
    this.clientFor = components.clientFor ?? ((url) => createRegistryClient({ url }))
    this.registryUrl = (init.registryUrl ?? '').replace(/\/+$/, '')
    this.mirrors = init.mirrors ?? []
    this.pollIntervalSeconds = init.pollIntervalSeconds ?? 300
    this.now = init.now ?? (() => new Date())
    this.maxCatchUp = init.maxCatchUp ?? 1000
  }

  get root (): Root | undefined { return this.set?.root.signed }
  get directory (): Directory | undefined { return this.held?.directory }

  heldEnvelope (): SignedDirectory | undefined { return this.set?.directory ?? undefined }

  private get sources (): string[] {
    return [...(this.registryUrl === '' ? [] : [this.registryUrl]), ...this.mirrors]
  }

  async start (): Promise<void> {
    await this.load()
    if (this.set === undefined) {
      this.logger.warn('no root pinned: this node trusts no directory until it is enrolled (beeldnet node enrol)')
      return
    }
    this.logger.info({ rootVersion: this.set.root.signed.version, directoryVersion: this.set.directory?.signed.version ?? null }, 'directory loaded')
    if (this.pollIntervalSeconds > 0 && this.sources.length > 0) {
      this.polling = new AbortController()
      this.timer = setInterval(() => { this.poll() }, this.pollIntervalSeconds * 1000)
      // Polling alone must never keep a process alive.
      this.timer.unref()
      this.poll()
    }
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    this.polling?.abort(new Error('directory service stopping'))
    await this.queue.catch(() => {})
  }

  private async load (): Promise<void> {
    this.set = await this.trustStore.load()
    this.held = this.set?.directory == null ? undefined : { directory: directoryOf(this.set.directory), tree: undefined }
    this.roots = this.set === undefined ? new Map() : await this.trustStore.roots()
  }

  private poll (): void {
    const signal = this.polling?.signal
    if (signal === undefined || signal.aborted) return
    // Failures are recorded and logged by refresh itself; the held directory stays in force.
    this.refresh(signal).catch(() => {})
  }

  /** Runs `fn` after whatever runs now: two swaps never interleave. */
  private async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn)
    this.queue = run.catch(() => {})
    return run
  }

  private requireSet (): TrustedSet {
    if (this.set === undefined) throw new RootNotPinnedError()
    return this.set
  }

  async refresh (signal?: AbortSignal): Promise<AcceptResult> {
    return this.exclusive(async () => {
      this.requireSet()
      const sources = this.sources
      if (sources.length === 0) throw new ConfigError('no registry.url or registry.mirrors configured: nothing to refresh from')
      let first: unknown
      for (const url of sources) {
        signal?.throwIfAborted()
        try {
          const result = await this.refreshFrom(this.clientFor(url), signal)
          await this.save({ ...this.requireSet(), lastRefreshed: this.now().toISOString(), lastError: null })
          return result
        } catch (err) {
          if (signal?.aborted === true) throw err
          this.logger.warn({ source: url, code: codeOf(err), err: isBeeldnetError(err) ? undefined : err }, `refresh from ${url} failed: ${(err as Error).message}`)
          first ??= err
        }
      }
      await this.recordError(first, sources[0]!)
      throw first
    })
  }

  private async refreshFrom (client: RegistryClient, signal?: AbortSignal): Promise<AcceptResult> {
    const timestamp = await this.fetchTimestamp(client, signal)
    const set = this.requireSet()
    const held = set.directory === null ? undefined : { version: set.directory.signed.version, hash: set.directoryHash! }
    if (timestamp !== undefined) {
      const named = timestamp.signed.directory
      if (held !== undefined && named.version === held.version && named.hash === held.hash) {
        await this.save({ ...set, timestamp: parseDocument(SignedTimestamp, timestamp.envelope, 'timestamp') })
        return { changed: false, version: held.version, hash: held.hash, source: client.url }
      }
      if (held !== undefined && named.version < held.version) throw new RollbackError('directory named by the timestamp', named.version, held.version)
    }
    if (held !== undefined) {
      const result = await this.refreshByDelta(client, held.version, timestamp?.envelope, signal)
      if (result !== undefined) {
        if (timestamp !== undefined) checkAgainstTimestamp(timestamp.signed, this.requireSet().directory!.signed, result.hash, held.version)
        return result
      }
    }
    const latest = await client.get('/v1/directory', signal)
    const latestDoc = parseDocument(SignedDirectory.shape.signed, (latest as { signed?: unknown } | null)?.signed, 'directory header')
    const latestHash = directoryHash(latestDoc)
    if (timestamp !== undefined) checkAgainstTimestamp(timestamp.signed, latestDoc, latestHash, held?.version)
    // Versions in between are fetched and verified one at a time; only the last link is kept.
    let via: HeldLink | undefined
    if (held !== undefined && latestDoc.version > held.version + 1) {
      if (latestDoc.version - held.version > this.maxCatchUp) throw new BrokenChainError(`directory v${latestDoc.version} is ${latestDoc.version - held.version} versions ahead of the held v${held.version}; more than ${this.maxCatchUp} to walk`)
      via = { ...held, rootVersion: set.directory!.signed.rootVersion }
      for (let v = held.version + 1; v < latestDoc.version; v++) {
        const value = await client.get(`/v1/directories/${v}`, signal)
        try {
          via = linkOf(verifyLink(value, { roots: this.roots, current: set.root.signed, held: via, now: this.now() }, false))
        } catch (err) {
          await this.raiseAlarm(err, [value], client.url)
          throw err
        }
      }
    }
    const result = await this.adopt([latest], client.url, timestamp?.envelope, via)
    if (timestamp !== undefined && result.version === timestamp.signed.directory.version && result.hash !== timestamp.signed.directory.hash) {
      throw new TimestampMismatchError(`the timestamp names directory v${result.version} ${timestamp.signed.directory.hash.slice(0, 16)}, the registry serves ${result.hash.slice(0, 16)}`)
    }
    return result
  }

  /**
   * What changed since the held version, from /v1/directories/:held/delta, verified against the
   * held directory and its trie. Undefined when the source has no delta for it (an older registry,
   * a mirror serving whole files) or it does not chain: the caller then takes the whole directory.
   * A forged or tampered delta is an alarm, as a whole file would be.
   */
  private async refreshByDelta (client: RegistryClient, from: number, timestamp: unknown, signal?: AbortSignal): Promise<AcceptResult | undefined> {
    let value: unknown
    try {
      value = await client.get(`/v1/directories/${from}/delta`, signal)
    } catch (err) {
      if (signal?.aborted === true || !isBeeldnetError(err) || !DELTA_FALLBACK_CODES.has(err.code)) throw err
      this.logger.debug({ source: client.url, code: err.code }, 'no delta: taking the whole directory')
      return undefined
    }
    try {
      return await this.adoptDelta(value, client.url, timestamp)
    } catch (err) {
      if (!isBeeldnetError(err) || !DELTA_FALLBACK_CODES.has(err.code)) throw err
      this.logger.warn({ source: client.url, code: err.code }, `the delta from v${from} does not apply (${err.message}): taking the whole directory`)
      return undefined
    }
  }

  /** The held directory with its trie, built once (from the verified institutions) when a first delta comes. */
  private heldDirectory (): HeldDirectory | undefined {
    const set = this.requireSet()
    if (this.held === undefined || set.directoryHash === null) return undefined
    this.held.tree ??= entriesOf(this.held.directory.institutions).tree
    return { directory: this.held.directory, hash: set.directoryHash, tree: this.held.tree }
  }

  /** Verifies a delta against the held directory and swaps the result in, as adopt does for a whole one. */
  private async adoptDelta (value: unknown, source: string, timestamp?: unknown): Promise<AcceptResult> {
    const set = this.requireSet()
    const held = this.heldDirectory()
    if (held === undefined) throw new BrokenChainError('no directory held to apply a delta to')
    let verified: VerifiedDirectory
    try {
      verified = verifyDirectoryDelta(value, { roots: this.roots, current: set.root.signed, held, now: this.now() })
    } catch (err) {
      await this.raiseAlarm(err, (value as { headers?: unknown[] } | null)?.headers ?? [], source)
      throw err
    }
    const delta = value as DirectoryDelta
    return this.swapIn(set, verified, envelopeOf(verified.signed, delta.headers.at(-1)!.signatures), source, timestamp, held.directory.version)
  }

  /**
   * The registry's timestamp, verified; a newer root it names is fetched and verified link by link
   * first (the timestamp may be signed by a key of that newer root). Mirrors may serve none.
   */
  private async fetchTimestamp (client: RegistryClient, signal?: AbortSignal): Promise<{ signed: Timestamp, envelope: unknown } | undefined> {
    let value: unknown
    try {
      value = await client.get('/v1/timestamp', signal)
    } catch (err) {
      if (client.url !== this.registryUrl && isBeeldnetError(err) && err.code === 'BEELDNET_ERR_NOT_FOUND') return undefined
      throw err
    }
    const claimed = parseDocument(SignedTimestamp, value, 'timestamp').signed
    await this.updateRoot(client, claimed.rootVersion, signal)
    const verified: Verified<Timestamp> = verifyTimestamp(value, this.requireSet().root.signed, this.now())
    const root = this.requireSet().root.signed
    if (verified.signed.rootVersion < root.version) throw new RollbackError('root named by the timestamp', verified.signed.rootVersion, root.version)
    return { signed: verified.signed, envelope: value }
  }

  /** Walks the root chain to `target`; each verified version is kept at once (it is true whatever follows). */
  private async updateRoot (client: RegistryClient, target: number, signal?: AbortSignal): Promise<void> {
    let root = this.requireSet().root.signed
    while (root.version < target) {
      const value = await client.get(`/v1/roots/${root.version + 1}`, signal)
      const next = verifyRootUpdate(root, value)
      await this.trustStore.saveRoot(value, next.signed.version)
      this.roots.set(next.signed.version, next.signed)
      await this.save({ ...this.requireSet(), root: parseDocument(SignedRoot, value, 'root') })
      this.logger.info({ rootVersion: next.signed.version, threshold: next.signed.threshold }, 'root rotated')
      root = next.signed
    }
  }

  async acceptDirectory (value: unknown, source: string, signal?: AbortSignal): Promise<AcceptResult> {
    return this.exclusive(async () => {
      signal?.throwIfAborted()
      this.requireSet()
      try {
        return await this.adopt(Array.isArray(value) ? value : [value], source)
      } catch (err) {
        await this.recordError(err, source)
        throw err
      }
    })
  }

  async acceptDirectoryFile (path: string, signal?: AbortSignal): Promise<AcceptResult> {
    return this.acceptDirectory(await readJsonFile(path), `file:${path}`, signal)
  }

  /** Verifies `offered` (ascending, newest last) against what is held and swaps it in. */
  private async adopt (offered: unknown[], source: string, timestamp?: unknown, via?: HeldLink): Promise<AcceptResult> {
    const set = this.requireSet()
    const held = via ?? (set.directory === null ? undefined : { version: set.directory.signed.version, hash: set.directoryHash!, rootVersion: set.directory.signed.rootVersion })
    let verified: VerifiedDirectory
    try {
      verified = verifyOffered(offered, { roots: this.roots, current: set.root.signed, held, now: this.now() })
    } catch (err) {
      await this.raiseAlarm(err, offered, source)
      throw err
    }
    const last = offered.at(-1)
    const newest = isSignedDirectory(last) ? last : parseDocument(SignedDirectory, last, 'directory')
    return this.swapIn(set, verified, newest, source, timestamp, held?.version)
  }

  private async swapIn (set: TrustedSet, verified: VerifiedDirectory, envelope: SignedDirectory, source: string, timestamp: unknown, previous: number | undefined): Promise<AcceptResult> {
    const changed = verified.hash !== set.directoryHash
    const before = this.held?.directory
    await this.save({
      ...set,
      directory: changed ? envelope : set.directory,
      directoryHash: verified.hash,
      timestamp: timestamp === undefined ? set.timestamp : parseDocument(SignedTimestamp, timestamp, 'timestamp')
    })
    if (changed) {
      this.held = { directory: verified.signed, tree: verified.tree }
      this.logger.info({ source, version: verified.signed.version, hash: verified.hash, previous: previous ?? null }, 'directory updated')
      this.emit('update', { previous: before, current: verified.signed, hash: verified.hash, source })
    }
    return { changed, version: verified.signed.version, hash: verified.hash, source }
  }

  private async raiseAlarm (err: unknown, offered: unknown[], source: string): Promise<void> {
    if (!isBeeldnetError(err) || !ALARM_CODES.has(err.code)) return
    const alarm: DirectoryAlarm = { code: err.code, message: err.message, source, evidence: [] }
    const set = this.requireSet()
    if (err instanceof ForkError && set.directory !== null) {
      const version = set.directory.signed.version
      const other = offered.find((o) => (o as { signed?: { version?: unknown } }).signed?.version === version)
      alarm.version = version
      if (other !== undefined) {
        alarm.evidence = await this.trustStore.keepForkEvidence(set.directory, other, version, set.directoryHash!, directoryHash((other as { signed: DirectoryHeader }).signed))
      }
    }
    this.logger.error({ alarm }, `directory alarm: ${err.message}`)
    this.emit('alarm', alarm)
  }

  private async recordError (err: unknown, source: string): Promise<void> {
    const set = this.set
    if (set === undefined) return
    const lastError: ErrorRecord = { code: codeOf(err), message: (err as Error).message ?? String(err), at: this.now().toISOString(), source }
    try {
      await this.save({ ...set, lastError })
    } catch (saveErr) {
      this.logger.error({ err: saveErr }, 'cannot record the last error in the trust store')
    }
  }

  private async save (set: TrustedSet): Promise<void> {
    await this.trustStore.save(set)
    this.set = set
  }

  status (): DirectoryStatus {
    const set = this.set
    const dir = set?.directory?.signed
    const now = this.now().getTime()
    return {
      network: set?.root.signed.network ?? null,
      rootVersion: set?.root.signed.version ?? null,
      directoryVersion: dir?.version ?? null,
      hash: set?.directoryHash ?? null,
      issued: dir?.issued ?? null,
      expires: dir?.expires ?? null,
      expired: dir !== undefined && Date.parse(dir.expires) <= now,
      ageSeconds: dir === undefined ? null : Math.max(0, Math.floor((now - Date.parse(dir.issued)) / 1000)),
      institutions: set?.directory?.institutions.length ?? 0,
      lastRefreshed: set?.lastRefreshed ?? null,
      lastError: set?.lastError ?? null,
      registryUrl: this.registryUrl === '' ? null : this.registryUrl,
      mirrors: this.mirrors
    }
  }
}

/** The registry must serve what its timestamp names (or newer, if it published in between). */
function checkAgainstTimestamp (ts: Timestamp, latest: DirectoryHeader, latestHash: string, heldVersion: number | undefined): void {
  const named = ts.directory
  if (latest.version < named.version) {
    throw new TimestampMismatchError(`the timestamp names directory v${named.version}, the registry serves v${latest.version}`)
  }
  // Same version as held with another hash is left to verification: a validly signed one is a fork.
  if (latest.version === named.version && latestHash !== named.hash && latest.version !== heldVersion) {
    throw new TimestampMismatchError(`the timestamp names directory v${named.version} ${named.hash.slice(0, 16)}, the registry serves ${latestHash.slice(0, 16)}`)
  }
}

function codeOf (err: unknown): string {
  return isBeeldnetError(err) ? err.code : 'BEELDNET_ERR_INTERNAL'
}

export function createDirectoryService (components: DirectoryServiceComponents, init: DirectoryServiceInit = {}): DirectoryService {
  return new DefaultDirectoryService(components, init)
}
