import { mkdir } from 'node:fs/promises'
import { join, relative } from 'node:path'
import type { Change } from '../../protocol/registry/documents.ts'
import { GovernanceClient } from '../../registry/governance/client.ts'
import { createGovernanceKeyFile, loadGovernanceKeyFile, type GovernanceKey } from '../../registry/governance/key-file.ts'
import { GovernanceStepError } from './errors.ts'

/*
 * The network's governance, played by one process: k of n members with real key files, acting
 * only through the GovernanceClient, so every signature is given after the candidate was
 * recomputed and checked, as a member's own machine does it.
 */

export interface GovernanceMember {
  name: string
  /** absolute path of the key file (mode 0600) */
  file: string
  key: GovernanceKey
}

/** Makes one key file per name in `dir` (member-1.key, ...). */
export async function createGovernanceMembers (dir: string, names: readonly string[]): Promise<GovernanceMember[]> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const members: GovernanceMember[] = []
  for (const [i, name] of names.entries()) {
    const file = join(dir, `member-${i + 1}.key`)
    members.push({ name, file, key: await createGovernanceKeyFile(file, name) })
  }
  return members
}

export async function loadGovernanceMembers (files: string[]): Promise<GovernanceMember[]> {
  return Promise.all(files.map(async (file) => {
    const key = await loadGovernanceKeyFile(file)
    return { name: key.name, file, key }
  }))
}

/** For network.json: key files relative to the data directory. */
export function describeMembers (dataDir: string, members: GovernanceMember[]): Array<{ name: string, keyid: string, file: string }> {
  return members.map((m) => ({ name: m.name, keyid: m.key.keyid, file: relative(dataDir, m.file) }))
}

export interface LocalGovernanceInit {
  registryUrl: string
  network: string
  threshold: number
  members: GovernanceMember[]
}

export interface PublishResult { kind: string, version: number, hash: string }

export class LocalGovernance {
  readonly client: GovernanceClient
  readonly network: string
  readonly threshold: number
  readonly members: GovernanceMember[]

  constructor (init: LocalGovernanceInit) {
    if (init.members.length < init.threshold) throw new GovernanceStepError(`${init.members.length} member(s) cannot meet a threshold of ${init.threshold}`)
    this.client = new GovernanceClient(init.registryUrl)
    this.network = init.network
    this.threshold = init.threshold
    this.members = init.members
  }

  /**
   * Has the first `threshold` members review and sign the open candidate until it is published.
   * With `expectedHash`, a candidate with other content is refused (root v1: the hash `registry
   * init` gave out is what members compare against).
   */
  async signCandidate (expectedHash?: string, signal?: AbortSignal): Promise<PublishResult> {
    for (const member of this.members.slice(0, this.threshold)) {
      const reviewed = await this.client.reviewCandidate(signal)
      if (expectedHash !== undefined && reviewed.candidate.hash !== expectedHash) {
        throw new GovernanceStepError(`the candidate is ${reviewed.candidate.hash.slice(0, 16)}, not the expected ${expectedHash.slice(0, 16)}: not signing`)
      }
      const result = await this.client.sign(reviewed, member.key, signal)
      if (result.published) return { kind: result.kind, version: result.version, hash: reviewed.candidate.hash }
    }
    throw new GovernanceStepError(`${this.threshold} signatures did not publish the candidate`)
  }

  /** Proposes `changes` (as the first member) and has the threshold sign the candidate they make. */
  async publish (changes: Change[], signal?: AbortSignal): Promise<PublishResult> {
    const open = (await this.client.status(signal)).candidate
    // Proposals would join someone else's open candidate: do not sign what we did not propose.
    if (open !== null && open !== undefined) throw new GovernanceStepError('a candidate is already open at the registry; sign or discard it first')
    for (const change of changes) await this.client.propose(change, this.members[0]!.key, this.network, signal)
    return this.signCandidate(undefined, signal)
  }
}
