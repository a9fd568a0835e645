import type { Logger } from 'pino'
import { z } from 'zod'
import { canonicalBytes, hashOfSigned } from '../protocol/canonical.ts'
import type { DirectoryDraft } from '../protocol/registry/changes.ts'
import { makeDirectoryDelta } from '../protocol/registry/delta.ts'
import { ForgedSignatureError } from '../protocol/errors.ts'
import { verifyBytes, type KeyPair } from '../protocol/keys.ts'
import {
  directoryOf, envelopeOf, MAX_DELTA_VERSIONS, parseDocument, NetworkName, Signature, SignedEnrolment as SignedEnrolmentSchema, SignedProposal as SignedProposalSchema,
  type Change, type Directory, type DirectoryHeader, type Institution, type Root, type SignedDirectory, type SignedEnrolment, type SignedProposal, type SignedRoot, type SignedTimestamp
} from '../protocol/registry/documents.ts'
import { checkThreshold, directoryHash, verifyEnrolment, verifyProposal } from '../protocol/registry/verify.ts'
import { assembleCandidate, checkProposalApplies, pendingDraft, progressOf, signedPartOf, thresholdsFor, verifyCandidate, type Progress } from './candidate.ts'
import { directoryBytes, type DirectoryBytes } from './directory-cache.ts'
import {
  BadRequestError, CandidateChangedError, NoCandidateError, NotFoundError, NotGovernanceKeyError, NotPublishedError,
  StaleRequestError, StoreTamperedError, TimestampKeyError
} from './errors.ts'
import { checkIntegrity } from './integrity.ts'
import { createSerial } from './serial.ts'
import type { CandidateRecord, DirectoryIndexEntry, EnrolmentRecord, ProposalRecord } from './store/records.ts'
import type { RegistryStore } from './store/registry-store.ts'
import { isFresh, signTimestamp, type TimestampSubject } from './timestamps.ts'

/*
 * The governance workflow: enrolments and proposals in, one frozen candidate at a time, signatures
 * collected, publication when the protocol's own verifiers say the threshold is met. The service
 * holds no key that can publish; its online key signs timestamps only.
 */

const ENROLMENT_WINDOW_MS = 10 * 60_000
const Hash = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 hex digest')

export const SignatureSubmission = z.strictObject({ hash: Hash, signature: Signature })

/** A governance member withdraws a frozen candidate (stale, or its proposals no longer wanted). */
export const DiscardCandidate = z.strictObject({
  signed: z.strictObject({ type: z.literal('beeldnet/discard-candidate'), network: NetworkName, hash: Hash }),
  signatures: z.array(Signature).min(1).max(64)
})

export interface RegistryServiceComponents {
  store: RegistryStore
  logger: Logger
  /** the online key named as the root's timestampKey */
  timestampKey: KeyPair
  /** the time (default: the system clock) */
  clock?: () => Date
}

export interface RegistryServiceInit {
  network: string
  /** how long a published directory is valid (default 30) */
  directoryValidityDays?: number
  /** how long a root version is valid (default 365) */
  rootValidityDays?: number
  /** how long a timestamp is fresh (default 60) */
  timestampValidityMinutes?: number
  /**
   * what to do when the store does not verify on start: 'refuse' to start (default), or 'serve'
   * what is there read-only, flagged in /health and /v1/status (nodes refuse it on their own)
   */
  onTamper?: 'refuse' | 'serve'
}

export interface CandidateView {
  kind: 'root' | 'directory'
  hash: string
  /** what the signatures cover: the root, or the directory's header */
  signed: Root | DirectoryHeader
  /** a directory candidate's institutions (its header names them by their entries root) */
  institutions?: Institution[]
  signatures: CandidateRecord['signatures']
  proposals: Array<{ id: string, proposal: SignedProposal }>
  base: { version: number, hash: string } | null
  frozen: string
  progress: Progress
}

export interface SignatureResult {
  published: boolean
  kind: 'root' | 'directory'
  version: number
  collected: number
  needed: number
  thresholds: Progress['thresholds']
}

export interface RegistryStatus {
  network: string
  root: { version: number, threshold: number, keys: Array<{ keyid: string, name?: string }> } | null
  directory: { version: number, hash: string, issued: string, expires: string } | null
  candidate: { kind: 'root' | 'directory', version: number, hash: string, collected: number, needed: number } | null
  pendingProposals: number
  pendingEnrolments: number
  integrity: { ok: boolean, problems: string[] }
}

interface Current {
  envelope: SignedDirectory
  directory: Directory
  hash: string
}

/** Deltas computed for the current version, by the version they start from (a few: most nodes are one behind). */
const DELTA_CACHE = 8

export class RegistryService {
  private readonly store: RegistryStore
  private readonly logger: Logger
  private readonly timestampKey: KeyPair
  private readonly clock: () => Date
  private readonly network: string
  private readonly directoryValidityDays: number
  private readonly rootValidityDays: number
  private readonly timestampValidityMinutes: number
  private readonly onTamper: 'refuse' | 'serve'
  private readonly serial = createSerial()
  private roots: SignedRoot[] = []
  private current: Current | undefined
  private bytes: DirectoryBytes | undefined
  private latestTimestamp: SignedTimestamp | undefined
  private problems: string[] = []
  private nextSeq = 0
  /** canonical bytes of the frozen candidate, so each signature check does not re-serialise it */
  private candidateBytes: { hash: string, bytes: Buffer } | undefined
  /** the directory in force with the pending proposals applied, kept between proposals (dropped when either changes) */
  private pending: DirectoryDraft | undefined
  private deltas = new Map<number, Promise<Buffer>>()

  constructor (components: RegistryServiceComponents, init: RegistryServiceInit) {
    this.store = components.store
    this.logger = components.logger
    this.timestampKey = components.timestampKey
    this.clock = components.clock ?? (() => new Date())
    this.network = init.network
    this.directoryValidityDays = init.directoryValidityDays ?? 30
    this.rootValidityDays = init.rootValidityDays ?? 365
    this.timestampValidityMinutes = init.timestampValidityMinutes ?? 60
    this.onTamper = init.onTamper ?? 'refuse'
  }

  /** Loads and re-verifies the store; refuses (or flags) a store that does not verify. */
  async start (): Promise<void> {
    this.roots = await this.store.allRoots()
    const latest = await this.store.latestDirectory()
    const report = checkIntegrity(this.roots, latest)
    this.problems = report.problems
    const root = this.roots.at(-1)?.signed
    if (root !== undefined && root.network !== this.network) this.problems.push(`the store holds network ${root.network}, the config says ${this.network}`)
    if (this.problems.length > 0) {
      this.logger.error({ problems: this.problems }, 'THE REGISTRY STORE DOES NOT VERIFY: edited by hand or corrupt')
      if (this.onTamper === 'refuse') throw new StoreTamperedError(this.problems)
    }
    if (latest !== undefined) await this.setCurrent(latest)
    this.latestTimestamp = await this.store.timestamp()
    this.nextSeq = (await this.store.allProposals()).reduce((max, p) => Math.max(max, p.seq + 1), 0)
    if (root !== undefined && root.timestampKey.keyid !== this.timestampKey.keyid) {
      this.logger.error({ named: root.timestampKey.keyid, held: this.timestampKey.keyid }, 'the root names another timestamp key than the one this registry holds')
    }
  }

  async stop (): Promise<void> {
    await this.serial.idle()
  }

  get integrity (): { ok: boolean, problems: string[] } {
    return { ok: this.problems.length === 0, problems: [...this.problems] }
  }

  private assertIntact (): void {
    if (this.problems.length > 0) throw new StoreTamperedError(this.problems)
  }

  private async setCurrent (envelope: SignedDirectory): Promise<void> {
    const hash = directoryHash(envelope.signed)
    this.current = { envelope, directory: directoryOf(envelope), hash }
    this.deltas = new Map()
    this.bytes = await directoryBytes(envelope, hash)
  }

  private rootInForce (): Root | undefined {
    return this.roots.at(-1)?.signed
  }

  private requireRoot (what: string): Root {
    const root = this.rootInForce()
    if (root === undefined) throw new NotPublishedError(what)
    return root
  }

  /* ---------- published files ---------- */

  root (): SignedRoot {
    const root = this.roots.at(-1)
    if (root === undefined) throw new NotPublishedError('root')
    return root
  }

  rootVersion (version: number): SignedRoot {
    const root = this.roots[version - 1]
    if (root === undefined) throw new NotFoundError(`root v${version} not found`)
    return root
  }

  /** The latest directory, serialised and gzipped once. */
  directory (): DirectoryBytes {
    if (this.bytes === undefined) throw new NotPublishedError('directory')
    return this.bytes
  }

  /**
   * The delta from version `from` to the current one (JSON bytes), computed once per version it
   * starts from. Not found: a version this registry does not hold whole, or too far back.
   */
  async directoryDelta (from: number): Promise<Buffer> {
    const current = this.current
    if (current === undefined) throw new NotPublishedError('directory')
    const to = current.directory.version
    if (!Number.isSafeInteger(from) || from < 1 || from > to) throw new NotFoundError(`directory v${from} not found`)
    if (to - from > MAX_DELTA_VERSIONS) throw new NotFoundError(`directory v${from} is more than ${MAX_DELTA_VERSIONS} versions behind v${to}: fetch the whole directory`)
    let delta = this.deltas.get(from)
    if (delta === undefined) {
      delta = this.computeDelta(from, current)
      if (this.deltas.size >= DELTA_CACHE) this.deltas.delete(this.deltas.keys().next().value!)
      this.deltas.set(from, delta)
      delta.catch(() => { if (this.deltas.get(from) === delta) this.deltas.delete(from) })
    }
    return delta
  }

  private async computeDelta (from: number, current: Current): Promise<Buffer> {
    const base = from === current.directory.version ? current.envelope : await this.store.directory(from)
    // A version kept in the format before signed headers cannot start a delta: nodes take the whole directory.
    if (base?.institutions === undefined) throw new NotFoundError(`directory v${from} cannot start a delta`)
    const headers = from === current.directory.version
      ? [{ signed: current.envelope.signed, signatures: current.envelope.signatures }]
      : await this.store.directoryHeaders(from + 1, current.directory.version)
    return Buffer.from(JSON.stringify(makeDirectoryDelta(directoryOf(base), current.directory, headers)), 'utf8')
  }

  async directoryVersion (version: number): Promise<SignedDirectory> {
    if (this.current?.envelope.signed.version === version) return this.current.envelope
    const found = await this.store.directory(version)
    if (found === undefined) throw new NotFoundError(`directory v${version} not found`)
    return found
  }

  async history (): Promise<DirectoryIndexEntry[]> {
    return this.store.directoryHistory()
  }

  /** The latest timestamp, re-signed when it has used half its validity. */
  async timestamp (): Promise<SignedTimestamp> {
    const subject = this.timestampSubject()
    if (isFresh(this.latestTimestamp, subject, this.clock(), this.timestampValidityMinutes)) return this.latestTimestamp
    return this.serial(async () => {
      if (isFresh(this.latestTimestamp, subject, this.clock(), this.timestampValidityMinutes)) return this.latestTimestamp
      return this.issueTimestamp(subject)
    })
  }

  private timestampSubject (): TimestampSubject {
    this.assertIntact()
    const root = this.requireRoot('timestamp')
    if (this.current === undefined) throw new NotPublishedError('timestamp (no directory yet)')
    if (root.timestampKey.keyid !== this.timestampKey.keyid) {
      throw new TimestampKeyError(`root v${root.version} names timestamp key ${root.timestampKey.keyid.slice(0, 16)}; this registry holds ${this.timestampKey.keyid.slice(0, 16)}`)
    }
    return { network: root.network, rootVersion: root.version, directory: { version: this.current.envelope.signed.version, hash: this.current.hash } }
  }

  private async issueTimestamp (subject: TimestampSubject): Promise<SignedTimestamp> {
    const ts = signTimestamp(this.timestampKey, subject, this.clock(), this.timestampValidityMinutes)
    await this.store.putTimestamp(ts)
    this.latestTimestamp = ts
    return ts
  }

  /* ---------- enrolments ---------- */

  /** A node asks to join: proof of possession, a recent request time, stored until governance acts. */
  async submitEnrolment (value: unknown): Promise<{ id: string, created: boolean }> {
    this.assertIntact()
    const verified = verifyEnrolment(value, this.network)
    const now = this.clock()
    if (Math.abs(Date.parse(verified.signed.requested) - now.getTime()) > ENROLMENT_WINDOW_MS) throw new StaleRequestError(verified.signed.requested, now)
    return this.serial(async () => {
      if (await this.store.enrolment(verified.hash) !== undefined) return { id: verified.hash, created: false }
      await this.store.putEnrolment({ id: verified.hash, enrolment: parseDocument(SignedEnrolmentSchema, value, 'enrolment'), received: now.toISOString(), status: 'pending' })
      this.logger.info({ id: verified.hash, ura: verified.signed.ura, peerId: verified.signed.peerId }, 'enrolment received')
      return { id: verified.hash, created: true }
    })
  }

  async enrolments (): Promise<Array<{ id: string, enrolment: SignedEnrolment, received: string }>> {
    return (await this.store.allEnrolments()).filter((e) => e.status === 'pending').map(({ id, enrolment, received }) => ({ id, enrolment, received }))
  }

  /* ---------- proposals ---------- */

  /** A governance member proposes one change; it must apply on top of what is pending. */
  async submitProposal (value: unknown): Promise<{ id: string, created: boolean }> {
    this.assertIntact()
    const root = this.requireRoot('proposals (no root yet)')
    const verified = verifyProposal(value, root)
    return this.serial(async () => {
      if (await this.store.proposal(verified.hash) !== undefined) return { id: verified.hash, created: false }
      const issued = this.clock().toISOString()
      this.pending ??= pendingDraft({
        root,
        directory: this.current?.directory,
        pending: (await this.store.allProposals()).filter((p) => p.status === 'pending'),
        issued,
        directoryValidityDays: this.directoryValidityDays,
        rootValidityDays: this.rootValidityDays
      })
      checkProposalApplies(verified.signed, { root, issued, rootValidityDays: this.rootValidityDays, draft: this.pending })
      const record: ProposalRecord = { id: verified.hash, proposal: parseDocument(SignedProposalSchema, value, 'proposal'), received: issued, seq: this.nextSeq++, status: 'pending' }
      try {
        await this.store.putProposals([record])
      } catch (err) {
        // The draft holds a change the store does not: build it again next time.
        this.pending = undefined
        throw err
      }
      this.logger.info({ id: record.id, action: verified.signed.change.action, by: verified.signers }, 'proposal received')
      return { id: record.id, created: true }
    })
  }

  async proposals (): Promise<Array<{ id: string, proposal: SignedProposal, received: string }>> {
    return (await this.store.allProposals()).filter((p) => p.status === 'pending').map(({ id, proposal, received }) => ({ id, proposal, received }))
  }

  /** One proposal with its fate: pending, included (in which version) or rejected (and why). */
  async proposal (id: string): Promise<ProposalRecord> {
    const found = /^[0-9a-f]{64}$/.test(id) ? await this.store.proposal(id) : undefined
    if (found === undefined) throw new NotFoundError(`proposal ${id.slice(0, 64)} not found`)
    return found
  }

  /* ---------- the candidate ---------- */

  /** The frozen candidate, frozen now from the pending proposals if there is none. */
  async candidate (): Promise<CandidateView> {
    const frozen = await this.store.candidate()
    if (frozen !== undefined) return this.view(frozen)
    this.assertIntact()
    return this.view(await this.serial(async () => await this.store.candidate() ?? await this.freeze()))
  }

  private async freeze (): Promise<CandidateRecord> {
    const root = this.rootInForce()
    if (root === undefined) throw new NoCandidateError('there is no root v1 candidate: run \'beeldnet registry init\'')
    const all = await this.store.allProposals()
    const now = this.clock()
    this.pending = undefined
    const { candidate, rejected } = assembleCandidate({
      root,
      directory: this.current?.directory,
      pending: all.filter((p) => p.status === 'pending'),
      issued: now.toISOString(),
      directoryValidityDays: this.directoryValidityDays,
      rootValidityDays: this.rootValidityDays
    })
    if (rejected.length > 0) {
      const byId = new Map(all.map((p) => [p.id, p]))
      await this.store.putProposals(rejected.map((r) => ({ ...byId.get(r.id)!, status: 'rejected', reason: r.reason })))
      this.logger.warn({ rejected }, 'proposals that no longer apply were set aside')
    }
    if (candidate === undefined) throw new NoCandidateError()
    const record: CandidateRecord = { ...candidate, signatures: [], frozen: now.toISOString() }
    await this.store.putCandidate(record)
    this.logger.info({ kind: record.kind, version: record.signed.version, hash: record.hash, proposals: record.proposalIds.length }, 'candidate frozen')
    return record
  }

  private async view (record: CandidateRecord): Promise<CandidateView> {
    const proposals: CandidateView['proposals'] = []
    for (const id of record.proposalIds) {
      const p = await this.store.proposal(id)
      if (p !== undefined) proposals.push({ id, proposal: p.proposal })
    }
    const progress = progressOf(thresholdsFor(record, this.rootForCandidate(record)), record.signatures)
    const institutions = record.kind === 'directory' ? { institutions: (record.signed as Directory).institutions } : {}
    return { kind: record.kind, hash: record.hash, signed: signedPartOf(record), ...institutions, signatures: record.signatures, proposals, base: record.base, frozen: record.frozen, progress }
  }

  /** The root a candidate is checked against: none for root v1, else the one in force. */
  private rootForCandidate (record: CandidateRecord): Root | undefined {
    return record.kind === 'root' && record.base === null ? undefined : this.rootInForce()
  }

  private bytesOf (record: CandidateRecord): Buffer {
    if (this.candidateBytes?.hash !== record.hash) this.candidateBytes = { hash: record.hash, bytes: canonicalBytes(signedPartOf(record)) }
    return this.candidateBytes.bytes
  }

  /** One governance signature over the frozen candidate; publishes when the threshold is met. */
  async addSignature (value: unknown): Promise<SignatureResult> {
    this.assertIntact()
    const { hash, signature } = parseDocument(SignatureSubmission, value, 'signature')
    return this.serial(async () => {
      const record = await this.store.candidate()
      if (record?.hash !== hash) throw new CandidateChangedError(hash, record?.hash)
      const root = this.rootForCandidate(record)
      const thresholds = thresholdsFor(record, root)
      const key = thresholds.flatMap((t) => t.keys).find((k) => k.keyid === signature.keyid)
      if (key === undefined) throw new NotGovernanceKeyError(signature.keyid, `${record.kind} v${record.signed.version}`)
      if (!verifyBytes(this.bytesOf(record), signature.sig, key.publicKey)) throw new ForgedSignatureError(`the signature over ${record.kind} v${record.signed.version}`, signature.keyid)
      // A key signing twice counts once.
      if (!record.signatures.some((s) => s.keyid === signature.keyid)) {
        record.signatures.push(signature)
        await this.store.putCandidate(record)
        this.logger.info({ kind: record.kind, version: record.signed.version, keyid: signature.keyid }, 'signature collected')
      }
      const held = this.current === undefined ? undefined : { version: this.current.envelope.signed.version, hash: this.current.hash }
      const verified = verifyCandidate(record, root, record.kind === 'directory' ? held : undefined, this.clock())
      const progress = progressOf(thresholds, record.signatures)
      if (verified !== undefined) await this.publish(record, verified.signers)
      return { published: verified !== undefined, kind: record.kind, version: record.signed.version, collected: progress.collected, needed: progress.needed, thresholds: progress.thresholds }
    })
  }

  private async publish (record: CandidateRecord, signers: string[]): Promise<void> {
    const version = record.signed.version
    const proposals: ProposalRecord[] = []
    const enrolments: EnrolmentRecord[] = []
    for (const id of record.proposalIds) {
      const p = await this.store.proposal(id)
      if (p === undefined) continue
      proposals.push({ ...p, status: 'included', includedIn: { kind: record.kind, version } })
      const enrolment = enrolmentOf(p.proposal.signed.change)
      const e = enrolment === undefined ? undefined : await this.store.enrolment(hashOfSigned(enrolment.signed))
      if (e !== undefined) enrolments.push({ ...e, status: 'included' })
    }
    if (record.kind === 'root') {
      const envelope = { signed: record.signed as Root, signatures: record.signatures }
      await this.store.publish({ root: envelope, proposals, enrolments })
      this.roots.push(envelope)
      if ((record.signed as Root).timestampKey.keyid !== this.timestampKey.keyid) {
        this.logger.error({ version }, 'the new root names another timestamp key: install it before timestamps can be issued')
      }
    } else {
      const envelope = envelopeOf(record.signed as Directory, record.signatures)
      const d = envelope.signed
      await this.store.publish({ directory: { envelope, index: { version, hash: record.hash, issued: d.issued, expires: d.expires, signers } }, proposals, enrolments })
      await this.setCurrent(envelope)
    }
    this.candidateBytes = undefined
    this.pending = undefined
    this.logger.info({ kind: record.kind, version, hash: record.hash, signers }, 'published')
    if (this.current !== undefined && this.rootInForce()?.timestampKey.keyid === this.timestampKey.keyid) await this.issueTimestamp(this.timestampSubject())
  }

  /** Withdraws the frozen candidate, on a governance member's signed request; its proposals stay pending. */
  async discardCandidate (value: unknown): Promise<{ discarded: string }> {
    this.assertIntact()
    const root = this.requireRoot('discarding a candidate (root v1 can only be signed, or the registry initialised again)')
    const request = parseDocument(DiscardCandidate, value, 'discard request')
    if (request.signed.network !== root.network) throw new BadRequestError(`the request is for network ${request.signed.network}`)
    const signers = checkThreshold('the discard request', canonicalBytes(request.signed), request.signatures, root.governanceKeys, 1)
    return this.serial(async () => {
      const record = await this.store.candidate()
      if (record?.hash !== request.signed.hash) throw new CandidateChangedError(request.signed.hash, record?.hash)
      await this.store.clearCandidate()
      this.pending = undefined
      this.logger.warn({ hash: record.hash, by: signers }, 'candidate discarded')
      return { discarded: record.hash }
    })
  }

  /* ---------- status ---------- */

  async status (): Promise<RegistryStatus> {
    const root = this.rootInForce()
    const record = await this.store.candidate()
    const d = this.current?.envelope.signed
    let candidate: RegistryStatus['candidate'] = null
    if (record !== undefined) {
      const p = progressOf(thresholdsFor(record, this.rootForCandidate(record)), record.signatures)
      candidate = { kind: record.kind, version: record.signed.version, hash: record.hash, collected: p.collected, needed: p.needed }
    }
    return {
      network: this.network,
      root: root === undefined ? null : { version: root.version, threshold: root.threshold, keys: root.governanceKeys.map((k) => ({ keyid: k.keyid, ...(k.name === undefined ? {} : { name: k.name }) })) },
      directory: d === undefined ? null : { version: d.version, hash: this.current!.hash, issued: d.issued, expires: d.expires },
      candidate,
      pendingProposals: (await this.proposals()).length,
      pendingEnrolments: (await this.enrolments()).length,
      integrity: this.integrity
    }
  }
}

function enrolmentOf (change: Change): SignedEnrolment | undefined {
  return 'enrolment' in change ? change.enrolment : undefined
}
