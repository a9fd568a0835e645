import { Command, Option } from 'commander'
import { createInterface } from 'node:readline/promises'
import { keyidOf } from '../../protocol/keys.ts'
import { createOutput, reportError, type Output } from '../../protocol/cli/output.ts'
import { InstitutionKind, type Change, type PublicKeyEntry } from '../../protocol/registry/documents.ts'
import { GovernanceClient } from '../governance/client.ts'
import { createGovernanceKeyFile, loadGovernanceKeyFile } from '../governance/key-file.ts'

/*
 * `beeldnet governance ...`: what a member of network governance does, from their own machine,
 * with their own offline key. The registry is only a meeting point for proposals and signatures.
 */

interface GlobalOptions { registry: string, json: boolean }

async function run (cmd: Command, action: (client: GovernanceClient, out: Output) => Promise<number | undefined>): Promise<void> {
  const opts = cmd.optsWithGlobals<GlobalOptions>()
  const out = createOutput(opts.json)
  try {
    process.exitCode = await action(new GovernanceClient(opts.registry), out) ?? 0
  } catch (err) {
    process.exitCode = reportError(err, opts.json)
  }
}

/** `base64key[:name]` as `registry init` and `update-root` take governance keys. */
export function parseKeyArgument (value: string): PublicKeyEntry {
  const [publicKey, ...name] = value.split(':')
  const entry: PublicKeyEntry = { keyid: keyidOf(publicKey!), publicKey: publicKey! }
  return name.length > 0 ? { ...entry, name: name.join(':') } : entry
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value]

export function governanceCommand (): Command {
  const gov = new Command('governance').description('network governance: keys, proposals and signatures over the directory')
  gov.addOption(new Option('-r, --registry <url>', 'the registry').env('BEELDNET_REGISTRY_URL').default('http://127.0.0.1:8480'))
  gov.option('--json', 'machine-readable output on stdout', false)

  gov.command('keygen')
    .description('make a governance signing key (keep it offline; give its public key to the registry operator)')
    .requiredOption('--out <file>', 'where to write the key (mode 0600, never overwritten)')
    .requiredOption('--name <name>', 'the member\'s name, shown in diffs and status')
    .action(async (opts: { out: string, name: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>()
      try {
        const key = await createGovernanceKeyFile(opts.out, opts.name)
        createOutput(g.json).result({ keyid: key.keyid, publicKey: key.publicKey, name: key.name, file: opts.out },
          () => `key written to ${opts.out}\n  keyid       ${key.keyid}\n  public key  ${key.publicKey}\n  for 'registry init': --governance-key ${key.publicKey}:${key.name}`)
      } catch (err) {
        process.exitCode = reportError(err, g.json)
      }
    })

  gov.command('proposals')
    .description('pending enrolments and proposals')
    .action(async (_o: unknown, cmd: Command) => run(cmd, async (client, out) => {
      const [enrolments, proposals] = await Promise.all([client.enrolments(), client.proposals()])
      out.result({ enrolments, proposals }, () => [
        `${enrolments.length} enrolment(s) waiting:`,
        ...enrolments.map((e) => `  ${e.id.slice(0, 16)}  URA ${e.enrolment.signed.ura} ${e.enrolment.signed.name}  ${e.enrolment.signed.peerId}  [${e.enrolment.signed.addresses.join(', ')}]  ${e.received}`),
        `${proposals.length} proposal(s) pending:`,
        ...proposals.map((p) => `  ${p.id.slice(0, 16)}  ${describeChange(p.proposal.signed.change)}  ${p.received}`)
      ].join('\n'))
      return 0
    }))

  const propose = gov.command('propose').description('propose a change to the directory (or the root), signed with your key')
  propose.addOption(new Option('-k, --key <file>', 'your governance key file').makeOptionMandatory())
  const submit = (build: (client: GovernanceClient, opts: Record<string, unknown>) => Promise<Change>) =>
    async (opts: Record<string, unknown>, cmd: Command) => run(cmd, async (client, out) => {
      const key = await loadGovernanceKeyFile(cmd.optsWithGlobals<{ key: string }>().key)
      const root = await client.verifiedRoot()
      const change = await build(client, opts)
      const { id } = await client.propose(change, key, root.network)
      out.result({ id, change }, () => `proposed ${describeChange(change)} (${id.slice(0, 16)})`)
      return 0
    })

  propose.command('admit').description('admit an enrolled institution with its node key')
    .requiredOption('--enrolment <id>', 'the enrolment (id or prefix, see proposals)')
    .action(submit(async (client, o) => ({ action: 'admit', enrolment: await client.enrolment(o.enrolment as string) })))
  propose.command('update-addresses').description('replace a node\'s addresses')
    .requiredOption('--ura <ura>').requiredOption('--peer-id <peerId>').requiredOption('--address <multiaddr>', 'repeat for several', collect)
    .action(submit(async (_c, o) => ({ action: 'update-addresses', ura: o.ura as string, peerId: o.peerId as string, addresses: o.address as string[] })))
  propose.command('add-node-key').description('add a second node key (from its enrolment) to an institution')
    .requiredOption('--ura <ura>').requiredOption('--enrolment <id>')
    .action(submit(async (client, o) => ({ action: 'add-node-key', ura: o.ura as string, enrolment: await client.enrolment(o.enrolment as string) })))
  propose.command('rotate-node-key').description('replace a node key; the old one stays valid for the overlap')
    .requiredOption('--ura <ura>').requiredOption('--old-peer-id <peerId>').requiredOption('--enrolment <id>', 'the new key\'s enrolment')
    .option('--overlap-days <days>', 'how long the old key keeps working', Number, 7)
    .action(submit(async (client, o) => ({
      action: 'rotate-node-key', ura: o.ura as string, oldPeerId: o.oldPeerId as string, enrolment: await client.enrolment(o.enrolment as string), overlapDays: o.overlapDays as number
    })))
  propose.command('revoke-node-key').description('revoke one node key (kept as a tombstone)')
    .requiredOption('--ura <ura>').requiredOption('--peer-id <peerId>').requiredOption('--reason <text>')
    .action(submit(async (_c, o) => ({ action: 'revoke-node-key', ura: o.ura as string, peerId: o.peerId as string, reason: o.reason as string })))
  for (const action of ['suspend', 'reinstate', 'revoke'] as const) {
    propose.command(action).description(`${action} an institution${action === 'revoke' ? ' (permanent; it stays as a tombstone)' : ''}`)
      .requiredOption('--ura <ura>').requiredOption('--reason <text>')
      .action(submit(async (_c, o) => ({ action, ura: o.ura as string, reason: o.reason as string })))
  }
  propose.command('set-kind').description('say what an institution is: teaching-research gets studies de-identified only')
    .requiredOption('--ura <ura>')
    .addOption(new Option('--kind <kind>', 'kind of institution').choices(InstitutionKind.options).makeOptionMandatory())
    .requiredOption('--reason <text>')
    .action(submit(async (_c, o) => ({ action: 'set-kind', ura: o.ura as string, kind: o.kind as InstitutionKind, reason: o.reason as string })))
  propose.command('renew').description('re-sign the directory unchanged with a new expiry')
    .action(submit(async () => ({ action: 'renew' })))
  propose.command('update-root').description('new governance keys or threshold: needs the threshold of the old keys and of the new')
    .requiredOption('--threshold <k>', 'signatures needed', Number)
    .requiredOption('--governance-key <base64[:name]>', 'repeat for every key of the new root', collect)
    .option('--timestamp-key <base64>', 'a new online key for the registry\'s timestamps')
    .action(submit(async (_c, o) => ({
      action: 'update-root',
      threshold: o.threshold as number,
      governanceKeys: (o.governanceKey as string[]).map(parseKeyArgument),
      ...(o.timestampKey === undefined ? {} : { timestampKey: parseKeyArgument(o.timestampKey as string) })
    })))

  gov.command('sign')
    .description('review the candidate (recomputed here from the signed proposals), see what changes, and sign it')
    .requiredOption('-k, --key <file>', 'your governance key file')
    .option('-y, --yes', 'sign without asking (for scripts); the diff is still printed', false)
    .action(async (opts: { key: string, yes: boolean }, cmd: Command) => run(cmd, async (client, out) => {
      const key = await loadGovernanceKeyFile(opts.key)
      const reviewed = await client.reviewCandidate()
      const { candidate } = reviewed
      out.info(`candidate ${candidate.kind} v${candidate.signed.version} (${candidate.hash.slice(0, 16)}), ${candidate.signatures.length} signature(s) so far`)
      out.info(reviewed.diff.join('\n'))
      if (!opts.yes) {
        if (process.stdin.isTTY !== true) throw new Error('not a terminal: pass --yes to sign without a prompt')
        const rl = createInterface({ input: process.stdin, output: process.stderr })
        const answer = await rl.question(`sign as ${key.name} (${key.keyid.slice(0, 16)})? [y/N] `)
        rl.close()
        if (!/^y(es)?$/i.test(answer.trim())) { out.info('not signed'); return 1 }
      }
      const result = await client.sign(reviewed, key)
      out.result({ ...result, hash: candidate.hash, diff: reviewed.diff },
        () => result.published ? `signed; ${result.kind} v${result.version} is published` : `signed; ${result.collected} of ${result.needed} signatures`)
      return 0
    }))

  gov.command('status')
    .description('root, directory in force, candidate and pending work at the registry')
    .action(async (_o: unknown, cmd: Command) => run(cmd, async (client, out) => {
      const status = await client.status()
      out.result(status, () => JSON.stringify(status, null, 2))
      return 0
    }))

  gov.command('history')
    .description('every published directory version')
    .action(async (_o: unknown, cmd: Command) => run(cmd, async (client, out) => {
      const history = await client.history()
      out.result(history, () => history.map((h) => `v${h.version}  ${h.hash.slice(0, 16)}  issued ${h.issued}  expires ${h.expires}  signed by ${h.signers.length}`).join('\n') || 'nothing published yet')
      return 0
    }))

  return gov
}

export function describeChange (change: Change): string {
  switch (change.action) {
    case 'admit': return `admit URA ${change.enrolment.signed.ura} ${change.enrolment.signed.name} with node ${change.enrolment.signed.peerId}`
    case 'update-addresses': return `update addresses of ${change.peerId} (URA ${change.ura})`
    case 'add-node-key': return `add node key ${change.enrolment.signed.peerId} to URA ${change.ura}`
    case 'rotate-node-key': return `rotate ${change.oldPeerId} -> ${change.enrolment.signed.peerId} (URA ${change.ura}, ${change.overlapDays} days overlap)`
    case 'revoke-node-key': return `revoke node key ${change.peerId} (URA ${change.ura}): ${change.reason}`
    case 'set-kind': return `set the kind of URA ${change.ura} to ${change.kind}: ${change.reason}`
    case 'renew': return 'renew the directory'
    case 'update-root': return `update root: ${change.threshold} of ${change.governanceKeys.length} keys`
    default: return `${change.action} URA ${change.ura}: ${change.reason}`
  }
}
