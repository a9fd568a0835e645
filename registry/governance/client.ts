import { canonicalBytes, hashOfSigned } from '../../protocol/canonical.ts'
import { NotFoundError, RegistryRefusedError, RegistryResponseError, RegistryUnreachableError } from '../../protocol/errors.ts'
import { signDocument } from '../../protocol/keys.ts'
import { buildDirectoryCandidate, buildRootCandidate } from '../../protocol/registry/changes.ts'
import { diffDirectories, diffRoots } from '../../protocol/registry/diff.ts'
import type { Change, Directory, DirectoryHeader, Institution, Root, SignedEnrolment, SignedProposal } from '../../protocol/registry/documents.ts'
import { verifyDirectory, verifyInitialRoot, verifyProposal, verifyRootUpdate } from '../../protocol/registry/verify.ts'
import { CandidateMismatchError } from './errors.ts'
import type { GovernanceKey } from './key-file.ts'

/*
 * What a governance member's machine does against the registry. It trusts the registry for
 * nothing: the root chain and the current directory are verified here, and a candidate is signed
 * only if recomputing it from the signed proposals gives exactly the same bytes.
 */

export interface Candidate {
  kind: 'root' | 'directory'
  hash: string
  /** what the signatures cover: the root, or the directory's header */
  signed: Root | DirectoryHeader
  /** a directory candidate's institutions, named by its header's entries root */
  institutions?: Institution[]
  signatures: Array<{ keyid: string, sig: string }>
  proposals: Array<{ id: string, proposal: SignedProposal }>
  base: { version: number, hash: string } | null
}

export interface PendingEnrolment { id: string, enrolment: SignedEnrolment, received: string }
export interface PendingProposal { id: string, proposal: SignedProposal, received: string }

export interface ReviewedCandidate {
  candidate: Candidate
  /** readable differences against what is in force */
  diff: string[]
}

export class GovernanceClient {
  readonly registryUrl: string

  constructor (registryUrl: string) {
    this.registryUrl = registryUrl.replace(/\/+$/, '')
  }

  private async request<T> (method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    let response: Response
    try {
      response = await fetch(`${this.registryUrl}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal
      })
    } catch (err) {
      throw new RegistryUnreachableError(`the registry at ${this.registryUrl}`, err)
    }
    const text = await response.text()
    let json: unknown
    try {
      json = text === '' ? undefined : JSON.parse(text)
    } catch {
      throw new RegistryResponseError(`the registry answered ${response.status} with something that is not JSON`)
    }
    if (!response.ok) {
      const err = json as { code?: unknown, message?: unknown } | undefined
      throw new RegistryRefusedError(err?.code, typeof err?.message === 'string' ? err.message.slice(0, 512) : `the registry answered ${response.status}`)
    }
    return json as T
  }

  /** Root chain from v1 to the newest, each link verified; the last one is in force. */
  async verifiedRoots (signal?: AbortSignal): Promise<Root[]> {
    const chain = [verifyInitialRoot(await this.request('GET', '/v1/roots/1', undefined, signal)).signed]
    const latest = await this.request<{ signed: Root }>('GET', '/v1/root', undefined, signal)
    for (let v = 2; v <= latest.signed.version; v++) {
      chain.push(verifyRootUpdate(chain.at(-1)!, await this.request('GET', `/v1/roots/${v}`, undefined, signal)).signed)
    }
    return chain
  }

  async verifiedRoot (signal?: AbortSignal): Promise<Root> {
    return (await this.verifiedRoots(signal)).at(-1)!
  }

  /**
   * The directory in force, or undefined before the first is published. It is verified against the
   * root it names: right after a root rotation it is still the one signed under the previous root.
   */
  async verifiedDirectory (roots: Root[], signal?: AbortSignal): Promise<Directory | undefined> {
    let value: unknown
    try {
      value = await this.request('GET', '/v1/directory', undefined, signal)
    } catch (err) {
      if (err instanceof RegistryRefusedError && err.code === 'BEELDNET_ERR_NOT_PUBLISHED') return undefined
      throw err
    }
    const named = (value as { signed?: { rootVersion?: unknown } } | undefined)?.signed?.rootVersion
    const root = roots.find((r) => r.version === named) ?? roots.at(-1)!
    return verifyDirectory(value, { root }).signed
  }

  async enrolments (signal?: AbortSignal): Promise<PendingEnrolment[]> {
    return this.request('GET', '/v1/enrolments', undefined, signal)
  }

  async proposals (signal?: AbortSignal): Promise<PendingProposal[]> {
    return this.request('GET', '/v1/proposals', undefined, signal)
  }

  async status (signal?: AbortSignal): Promise<Record<string, unknown>> {
    return this.request('GET', '/v1/status', undefined, signal)
  }

  async history (signal?: AbortSignal): Promise<Array<{ version: number, hash: string, issued: string, expires: string, signers: string[] }>> {
    return this.request('GET', '/v1/directories', undefined, signal)
  }

  async enrolment (id: string, signal?: AbortSignal): Promise<SignedEnrolment> {
    const found = (await this.enrolments(signal)).find((e) => e.id === id || e.id.startsWith(id))
    if (found === undefined) throw new NotFoundError(`no pending enrolment ${id}`)
    return found.enrolment
  }

  /** Signs a change as a proposal and submits it. */
  async propose (change: Change, key: GovernanceKey, network: string, signal?: AbortSignal): Promise<{ id: string }> {
    const signed = { type: 'beeldnet/proposal' as const, network, proposed: new Date().toISOString(), change }
    const proposal: SignedProposal = { signed, signatures: [signDocument(signed, key)] }
    return this.request('POST', '/v1/proposals', proposal, signal)
  }

  /**
   * Fetches the candidate and checks it is exactly what the signed proposals make of the verified
   * state in force. Throws CandidateMismatchError otherwise; returns the diff to show the signer.
   */
  async reviewCandidate (signal?: AbortSignal): Promise<ReviewedCandidate> {
    const candidate = await this.request<Candidate>('GET', '/v1/candidate', undefined, signal)
    if (hashOfSigned(candidate.signed) !== candidate.hash) throw new CandidateMismatchError('the candidate\'s hash does not match its content')
    if (candidate.kind === 'root') return this.reviewRootCandidate(candidate, signal)
    const roots = await this.verifiedRoots(signal)
    const root = roots.at(-1)!
    const current = await this.verifiedDirectory(roots, signal)
    const offered: Directory = { ...candidate.signed as DirectoryHeader, institutions: candidate.institutions ?? [] }
    const changes = candidate.proposals.map((p) => verifyProposal(p.proposal, root).signed.change)
    const validityDays = (Date.parse(offered.expires) - Date.parse(offered.issued)) / 86_400_000
    const expected = buildDirectoryCandidate(current, root, changes, { issued: offered.issued, validityDays })
    assertSame(expected, offered, `directory v${offered.version}`)
    return { candidate, diff: diffDirectories(current, offered) }
  }

  private async reviewRootCandidate (candidate: Candidate, signal?: AbortSignal): Promise<ReviewedCandidate> {
    const offered = candidate.signed as Root
    if (offered.version === 1) return { candidate, diff: diffRoots(undefined, offered) }
    const current = await this.verifiedRoot(signal)
    const update = candidate.proposals.map((p) => verifyProposal(p.proposal, current).signed.change).find((c) => c.action === 'update-root')
    if (update === undefined) throw new CandidateMismatchError(`root v${offered.version} is offered without an update-root proposal`)
    const validityDays = (Date.parse(offered.expires) - Date.parse(offered.issued)) / 86_400_000
    assertSame(buildRootCandidate(current, update, { issued: offered.issued, validityDays }), offered, `root v${offered.version}`)
    return { candidate, diff: diffRoots(current, offered) }
  }

  /** Signs a reviewed candidate and submits the signature. */
  async sign (reviewed: ReviewedCandidate, key: GovernanceKey, signal?: AbortSignal): Promise<{ published: boolean, version: number, kind: string, collected: number, needed: number }> {
    const signature = signDocument(reviewed.candidate.signed, key)
    return this.request('POST', '/v1/candidate/signatures', { hash: reviewed.candidate.hash, signature }, signal)
  }
}

function assertSame (expected: unknown, offered: unknown, what: string): void {
  if (!canonicalBytes(expected).equals(canonicalBytes(offered))) {
    throw new CandidateMismatchError(`${what} is not what the signed proposals make of the state in force: refusing to sign`)
  }
}
