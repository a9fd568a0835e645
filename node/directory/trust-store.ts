import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { canonicalBytes, hashOfSigned } from '../../protocol/canonical.ts'
import { isBeeldnetError } from '../../protocol/errors.ts'
import {
  parseDocument, SignedDirectory, SignedRoot, SignedTimestamp, type Directory, type Root
} from '../../protocol/registry/documents.ts'
import { checkThreshold, refuseOldFormat, verifyDirectory, verifyInitialRoot, verifyRootUpdate, type Verified } from '../../protocol/registry/verify.ts'
import { ImportSourceError, RootAlreadyPinnedError, RootHashMismatchError, TrustStoreError } from '../errors.ts'
import { removeLeftoverTemps, writeFileAtomic } from './atomic-file.ts'

/*
 * What the node trusts, on disk under <dataDir>/trust/:
 *   trusted.json    the last verified set (newest root, directory, timestamp), replaced atomically
 *   roots/<v>.json  every verified root version, from the pinned one on: the chain is re-checked at load
 *   forks/          evidence: two validly signed directories claiming the same version
 * A crash leaves the old set or the new one. On load the set is checked again (root chain, the
 * directory's hash and signatures), so a file damaged on disk is refused rather than believed.
 */

const ErrorRecord = z.strictObject({ code: z.string(), message: z.string(), at: z.string(), source: z.string().optional() })
export type ErrorRecord = z.infer<typeof ErrorRecord>

const TrustedSetFile = z.strictObject({
  root: SignedRoot,
  directory: SignedDirectory.nullable(),
  directoryHash: z.string().nullable(),
  timestamp: SignedTimestamp.nullable(),
  /** when a refresh last completed (with or without news) */
  lastRefreshed: z.string().nullable(),
  lastError: ErrorRecord.nullable()
})
export type TrustedSet = z.infer<typeof TrustedSetFile>

/** Where a node keeps what it trusts inside its data directory. */
export function trustDir (dataDir: string): string {
  return join(dataDir, 'trust')
}

export interface TrustStoreInit {
  /** the trust directory, normally <dataDir>/trust */
  dir: string
}

export interface TrustStore {
  readonly dir: string
  /** the verified set, or undefined if no root was ever pinned */
  load (): Promise<TrustedSet | undefined>
  /** replaces trusted.json atomically */
  save (set: TrustedSet): Promise<void>
  /** pins a root that is signed by a threshold of its own keys; with `expectedHash`, only that one */
  pinRoot (envelope: unknown, expectedHash?: string): Promise<Verified<Root>>
  pinRootFile (path: string, expectedHash?: string): Promise<Verified<Root>>
  /** keeps a root version verified by the caller (root rotation) */
  saveRoot (envelope: unknown, version: number): Promise<void>
  /** every kept root, by version */
  roots (): Promise<Map<number, Root>>
  /** keeps both directories of a fork; returns the files written */
  keepForkEvidence (held: unknown, offered: unknown, version: number, heldHash: string, offeredHash: string): Promise<string[]>
  /** the directory this node held at `time` (from directories/, its signatures checked again), for checking old receipts */
  directoryAt (time: string): Promise<Directory | undefined>
}

class FileTrustStore implements TrustStore {
  readonly dir: string
  private readonly trustedPath: string
  private readonly rootsDir: string
  private readonly forksDir: string
  /** every directory version this node accepted, kept: receipts are checked against the one of their time */
  private readonly directoriesDir: string

  constructor (init: TrustStoreInit) {
    this.dir = init.dir
    this.trustedPath = join(init.dir, 'trusted.json')
    this.rootsDir = join(init.dir, 'roots')
    this.forksDir = join(init.dir, 'forks')
    this.directoriesDir = join(init.dir, 'directories')
  }

  async load (): Promise<TrustedSet | undefined> {
    await removeLeftoverTemps(this.dir)
    let text: string
    try {
      text = await readFile(this.trustedPath, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new TrustStoreError(`cannot read ${this.trustedPath}: ${(err as Error).message}`, { cause: err })
    }
    try {
      const value = await this.setAsideOldFormat(JSON.parse(text))
      const set = parseDocument(TrustedSetFile, value, 'trusted.json')
      await this.check(set)
      return set
    } catch (err) {
      if (err instanceof TrustStoreError) throw err
      throw new TrustStoreError(`${this.trustedPath} does not verify (${isBeeldnetError(err) ? err.code : 'unreadable'}): ${(err as Error).message}`, { cause: err })
    }
  }

  /**
   * A directory held in the format before signed headers (an upgrade from an older version): the
   * file is kept under superseded/, the directory is dropped from the set with lastError
   * BEELDNET_ERR_DIRECTORY_FORMAT, and the node takes the next directory whole, as a new node would.
   */
  private async setAsideOldFormat (value: unknown): Promise<unknown> {
    const set = value as { directory?: unknown } | null
    try {
      refuseOldFormat(set?.directory)
      return value
    } catch (err) {
      if (!isBeeldnetError(err) || err.code !== 'BEELDNET_ERR_DIRECTORY_FORMAT') throw err
      const superseded = join(this.dir, 'superseded')
      await mkdir(superseded, { recursive: true, mode: 0o700 })
      await copyFile(this.trustedPath, join(superseded, `trusted-${Date.now()}.json`))
      const next = { ...set, directory: null, directoryHash: null, lastError: { code: err.code, message: err.message, at: new Date().toISOString() } }
      await writeFileAtomic(this.trustedPath, JSON.stringify(next))
      return next
    }
  }

  /** Re-checks a loaded set: the root chain from the pinned root, and the directory as a whole (signed header, entries root). */
  private async check (set: TrustedSet): Promise<void> {
    const roots = await this.roots()
    const newest = roots.get(set.root.signed.version)
    if (newest === undefined || hashOfSigned(newest) !== hashOfSigned(set.root.signed)) {
      throw new TrustStoreError(`trusted.json names root v${set.root.signed.version}, which is not the one kept in roots/`)
    }
    if (set.directory === null) return
    const dir = set.directory.signed
    const root = roots.get(dir.rootVersion)
    if (root === undefined) throw new TrustStoreError(`the held directory v${dir.version} is signed under root v${dir.rootVersion}, which is not kept`)
    // Integrity, not freshness: an expired directory is stale, not damaged.
    const verified = verifyDirectory(set.directory, { root, now: new Date(0) })
    if (verified.hash !== set.directoryHash) throw new TrustStoreError(`the held directory v${dir.version} does not match its recorded hash`)
  }

  async save (set: TrustedSet): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    if (set.directory !== null) {
      await mkdir(this.directoriesDir, { recursive: true, mode: 0o700 })
      const archived = join(this.directoriesDir, `${set.directory.signed.version}.json`)
      if (!await readFile(archived).then(() => true, () => false)) await writeFileAtomic(archived, JSON.stringify(set.directory))
    }
    await writeFileAtomic(this.trustedPath, JSON.stringify(set))
  }

  async directoryAt (time: string): Promise<Directory | undefined> {
    const versions = (await readdir(this.directoriesDir).catch(() => [] as string[]))
      .map((name) => /^([0-9]+)\.json$/.exec(name)?.[1]).filter((v): v is string => v !== undefined).map(Number).sort((a, b) => b - a)
    const roots = await this.roots()
    for (const version of versions) {
      const value = await readJsonFile(join(this.directoriesDir, `${version}.json`))
      const header = (value as { signed?: { issued?: unknown, rootVersion?: unknown } } | null)?.signed
      if (typeof header?.issued === 'string' && header.issued > time) continue
      const root = roots.get(Number(header?.rootVersion))
      if (root === undefined) throw new TrustStoreError(`directories/${version}.json is signed under root v${String(header?.rootVersion)}, which is not kept`)
      if (isOldFormat(value)) {
        // Kept before signed headers: its signatures cover the whole document, institutions included.
        const old = parseDocument(OldSignedDirectory, value, `directories/${version}.json`)
        checkThreshold(`kept directory v${version}`, canonicalBytes(old.signed), old.signatures, root.governanceKeys, root.threshold)
        return { ...old.signed, entries: { count: old.signed.institutions.length, root: '' } }
      }
      return verifyDirectory(value, { root, now: new Date(0) }).signed
    }
    return undefined
  }

  async pinRoot (envelope: unknown, expectedHash?: string): Promise<Verified<Root>> {
    const verified = verifyInitialRoot(envelope)
    if (expectedHash !== undefined && verified.hash !== expectedHash.toLowerCase()) throw new RootHashMismatchError(expectedHash, verified.hash)
    const held = await this.load()
    if (held !== undefined) {
      const pinned = [...(await this.roots()).values()].sort((a, b) => a.version - b.version)[0]!
      const pinnedHash = hashOfSigned(pinned)
      // Pinning the same root again is harmless (enrol run twice); another one is not.
      if (pinnedHash === verified.hash) return verified
      throw new RootAlreadyPinnedError(pinnedHash, verified.hash)
    }
    await this.saveRoot(envelope, verified.signed.version)
    await this.save({
      root: parseDocument(SignedRoot, envelope, 'root'),
      directory: null,
      directoryHash: null,
      timestamp: null,
      lastRefreshed: null,
      lastError: null
    })
    return verified
  }

  async pinRootFile (path: string, expectedHash?: string): Promise<Verified<Root>> {
    return this.pinRoot(await readJsonFile(path), expectedHash)
  }

  async saveRoot (envelope: unknown, version: number): Promise<void> {
    await mkdir(this.rootsDir, { recursive: true, mode: 0o700 })
    await writeFileAtomic(join(this.rootsDir, `${version}.json`), JSON.stringify(envelope))
  }

  async roots (): Promise<Map<number, Root>> {
    await removeLeftoverTemps(this.rootsDir)
    const names = (await readdir(this.rootsDir).catch(() => [] as string[])).filter((n) => /^[0-9]+\.json$/.test(n))
    const versions = names.map((n) => Number(n.slice(0, -5))).sort((a, b) => a - b)
    const out = new Map<number, Root>()
    let trusted: Root | undefined
    for (const version of versions) {
      const value = await readJsonFile(join(this.rootsDir, `${version}.json`))
      // The lowest kept version is the pinned one; each later one must follow from it.
      trusted = trusted === undefined ? verifyInitialRoot(value).signed : verifyRootUpdate(trusted, value).signed
      if (trusted.version !== version) throw new TrustStoreError(`roots/${version}.json holds root v${trusted.version}`)
      out.set(version, trusted)
    }
    return out
  }

  async keepForkEvidence (held: unknown, offered: unknown, version: number, heldHash: string, offeredHash: string): Promise<string[]> {
    await mkdir(this.forksDir, { recursive: true, mode: 0o700 })
    const files: string[] = []
    for (const [value, hash] of [[held, heldHash], [offered, offeredHash]] as const) {
      const path = join(this.forksDir, `directory-v${version}-${hash}.json`)
      await writeFileAtomic(path, JSON.stringify(value))
      files.push(path)
    }
    return files
  }
}

/** The directory as signed before headers (institutions inside the signed part): read only from directories/. */
const OldSignedDirectory = z.strictObject({
  signed: SignedDirectory.shape.signed.omit({ entries: true }).extend({ institutions: SignedDirectory.shape.institutions }),
  signatures: SignedDirectory.shape.signatures
})

function isOldFormat (value: unknown): boolean {
  try {
    refuseOldFormat(value)
    return false
  } catch (err) {
    if (isBeeldnetError(err) && err.code === 'BEELDNET_ERR_DIRECTORY_FORMAT') return true
    throw err
  }
}

export async function readJsonFile (path: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ImportSourceError(`cannot read ${path}: ${(err as Error).message}`, { cause: err })
  }
  try {
    return JSON.parse(text)
  } catch {
    throw new ImportSourceError(`${path} is not JSON`)
  }
}

export function createTrustStore (init: TrustStoreInit): TrustStore {
  return new FileTrustStore(init)
}
