import cliProgress from 'cli-progress'
import { Command, InvalidArgumentError, Option } from 'commander'
import { readFile, stat } from 'node:fs/promises'
import { createOutput, reportError, type Output } from '../../protocol/cli/output.ts'
import type { PullAnswer } from '../../protocol/exchange/pull.ts'
import type { QueryResponse } from '../../protocol/exchange/query.ts'
import { loadConfig } from '../config/config.ts'
import { nodePaths } from '../paths.ts'
import { readCliToken } from '../users/cli-token.ts'
import type { TransferProgress } from '../transfers/events.ts'
import type { IncomingRecord, OutgoingRecord, TransferRecord } from '../transfers/transfer-store.ts'
import { formatBytes, formatPersonName } from './format.ts'
import { ImportSourceError } from '../errors.ts'
import { NodeRefusedError } from './errors.ts'
import { createNodeApi, type NodeApi } from './node-api-client.ts'

/*
 * `beeldnet node send | query | pull | transfers`: the exchange through the running node's HTTP
 * API, since the node holds the store and the peer connections. Progress comes from the node's
 * server-sent events: a bar per transfer on a terminal, plain lines otherwise.
 */

interface GlobalOptions { dataDir: string, json: boolean }
interface NodeOption { node?: string }
interface RequesterOptions { clinician: string, uzi: string, role: string, purpose: string, department?: string }

const FINAL = new Set(['complete', 'declined', 'failed', 'cancelled'])

/**
 * The running node's API: --node, else the address in this data directory's config; with the
 * token in BEELDNET_TOKEN, else the one the node keeps for its own CLI in the data directory.
 */
export async function nodeApiFor (dataDir: string, given: string | undefined): Promise<NodeApi> {
  const paths = nodePaths(dataDir)
  const token = process.env.BEELDNET_TOKEN ?? await readCliToken(paths.cliToken)
  if (given !== undefined) return createNodeApi(given, token)
  if (!await stat(paths.config).then(() => true, () => false)) return createNodeApi('http://127.0.0.1:8470', token)
  const { http } = await loadConfig(paths.config)
  const host = http.host === '0.0.0.0' || http.host === '::' ? '127.0.0.1' : http.host.includes(':') ? `[${http.host}]` : http.host
  return createNodeApi(`http://${host}:${http.port}`, token)
}

/** --node: which running node a verb asks. */
export function nodeOption (): Option {
  return new Option('--node <url>', 'the running node\'s HTTP API (default: from this data directory\'s config)')
}

/** Runs a verb against the running node's API (--node, else the data directory's config), with the exit code it returns. */
export async function run (cmd: Command, action: (api: NodeApi, out: Output) => Promise<number | undefined>): Promise<void> {
  const opts = cmd.optsWithGlobals<GlobalOptions & NodeOption>()
  const out = createOutput(opts.json)
  try {
    process.exitCode = await action(await nodeApiFor(opts.dataDir, opts.node), out) ?? 0
  } catch (err) {
    process.exitCode = reportError(err, opts.json)
  }
}

function destination (value: string): { ura: string, department: string } {
  const match = /^([0-9]{8})(?:\/([A-Z0-9-]{1,16}))?$/.exec(value)
  if (match === null) throw new InvalidArgumentError('give URA[/DEPARTMENT], e.g. 01002154/RAD')
  return { ura: match[1]!, department: match[2] ?? 'RAD' }
}

function withRequester (cmd: Command): Command {
  return cmd
    .addOption(new Option('--clinician <name>', 'the clinician asking (NEN 7513: who)').env('BEELDNET_CLINICIAN').makeOptionMandatory())
    .addOption(new Option('--uzi <number>', 'their UZI number (9 digits)').env('BEELDNET_UZI').makeOptionMandatory())
    .addOption(new Option('--role <code>', 'their UZI role code').env('BEELDNET_UZI_ROLE').default('01.015'))
    .addOption(new Option('--purpose <purpose>', 'why').choices(['treatment', 'second-opinion', 'referral', 'emergency']).default('treatment'))
    .option('--department <code>', 'the requesting department')
}

function requesterOf (o: RequesterOptions): Record<string, unknown> {
  return { clinician: { name: o.clinician, uzi: o.uzi, role: o.role }, purpose: o.purpose, ...(o.department === undefined ? {} : { department: o.department }) }
}

function describe (r: TransferRecord): string {
  const who = r.direction === 'outgoing' ? `to ${r.destination.ura}/${r.destination.department}` : `from ${r.senderUra}`
  const error = r.lastError === undefined ? '' : `  ${r.lastError.code}`
  const next = r.direction === 'outgoing' && r.state === 'queued' && r.nextAttemptAt !== undefined ? `  next attempt ${r.nextAttemptAt}` : ''
  return `${r.transferId.slice(0, 12)}  ${r.direction.padEnd(8)} ${r.state.padEnd(10)} ${who}  ${r.done.instances}/${r.totals.instances} instances  ${formatBytes(r.done.bytes)}/${formatBytes(r.totals.bytes)}  ${r.studyInstanceUID}${error}${next}`
}

/** Follows one transfer until it ends; returns its final record. */
async function follow (api: NodeApi, out: Output, transferId: string): Promise<OutgoingRecord> {
  const controller = new AbortController()
  const events = api.events('/api/transfers/events', controller.signal)
  // Subscribed first, then the record: nothing between the two is missed.
  const first = events.next()
  let record = await api.get<OutgoingRecord>(`/api/transfers/${transferId}`)
  const progress = out.progress(`sending ${transferId.slice(0, 12)}`)
  progress.start(record.totals.bytes)
  try {
    for (let next = await first; !FINAL.has(record.state) && next.done !== true; next = await events.next()) {
      const { event, data } = next.value
      if (event === 'progress' && (data as TransferProgress).transferId === transferId) {
        const p = data as TransferProgress
        progress.update(p.bytesDone, `${p.instancesDone}/${p.instancesTotal} instances, ${formatBytes(p.rate)}/s`)
      }
      if (event === 'state' && (data as TransferRecord).transferId === transferId) record = data as OutgoingRecord
    }
  } finally {
    controller.abort()
    progress.stop()
  }
  return record
}

/** All transfers, one bar each on a terminal, until Ctrl-C. */
async function watch (api: NodeApi, out: Output): Promise<void> {
  const controller = new AbortController()
  process.once('SIGINT', () => { controller.abort() })
  const tty = process.stderr.isTTY === true && !out.json
  const multi = tty ? new cliProgress.MultiBar({ stream: process.stderr, hideCursor: true, format: '{id} {dir} [{bar}] {percentage}% {instances} {rate} {state}' }, cliProgress.Presets.shades_classic) : undefined
  const bars = new Map<string, cliProgress.SingleBar>()
  for await (const { event, data } of api.events('/api/transfers/events', controller.signal)) {
    if (out.json) { process.stdout.write(JSON.stringify({ event, data }) + '\n'); continue }
    const p = data as TransferProgress & { state: string }
    const id = p.transferId.slice(0, 12)
    if (multi === undefined) {
      if (event !== 'progress') process.stderr.write(`${id} ${event}${p.state === undefined ? '' : ` ${p.state}`}\n`)
      continue
    }
    if (event !== 'progress') continue
    let bar = bars.get(p.transferId)
    const payload = { id, dir: p.direction === 'outgoing' ? '->' : '<-', instances: `${p.instancesDone}/${p.instancesTotal}`, rate: `${formatBytes(p.rate)}/s`, state: p.state }
    if (bar === undefined) {
      bar = multi.create(p.bytesTotal, p.bytesDone, payload)
      bars.set(p.transferId, bar)
    }
    bar.update(p.bytesDone, payload)
  }
  multi?.stop()
}

export function addExchangeCommands (node: Command): void {

  node.command('send')
    .description('send a study to another institution; follows the transfer until the receiver has committed it (exit 1 if it fails)')
    .argument('<StudyInstanceUID>')
    .requiredOption('--to <URA[/DEPARTMENT]>', 'the receiving institution and department (default department RAD)', destination)
    .requiredOption('--reason <text>', 'why the study is sent (referral, second opinion...)')
    .option('--note <text>', 'a note for the receiving department')
    .option('--report <pdf>', 'a PDF report to add to the study first (it goes first; sending the study again later sends only what is new)')
    .option('--report-title <title>', 'the attached report\'s title', 'Verslag')
    .option('--confirm-bulk', 'yes, send it although many studies of this patient went to this institution today', false)
    .option('--deidentify <profile>', 'send a de-identified copy (PS3.15): basic[,retain-dates][,clean-descriptors]; a teaching or research institution gets basic without it (images with burned-in text are confirmed in the web app)')
    .option('--no-wait', 'queue it and return at once')
    .addOption(nodeOption())
    .action(async (uid: string, opts: { to: { ura: string, department: string }, reason: string, note?: string, report?: string, reportTitle: string, confirmBulk: boolean, deidentify?: string, wait: boolean }, cmd: Command) => run(cmd, async (api, out) => {
      if (opts.report !== undefined) {
        const pdf = await readFile(opts.report).catch((err: Error) => { throw new ImportSourceError(`cannot read ${opts.report}: ${err.message}`, { cause: err }) })
        const attached = await api.postBytes<{ sopInstanceUID: string }>(`/api/studies/${encodeURIComponent(uid)}/reports?title=${encodeURIComponent(opts.reportTitle)}`, 'application/pdf', pdf)
        out.info(`attached ${opts.report} as report ${attached.sopInstanceUID}`)
      }
      const queued = await api.post<OutgoingRecord & { deidentified?: { studyInstanceUID: string, profile: string } }>('/api/transfers', {
        studyInstanceUID: uid, to: opts.to, reason: opts.reason, ...(opts.note === undefined ? {} : { note: opts.note }), ...(opts.confirmBulk ? { confirmBulk: true } : {}),
        ...(opts.deidentify === undefined ? {} : { deidentify: { profile: opts.deidentify } })
      })
      if (queued.deidentified !== undefined) out.info(`de-identified (${queued.deidentified.profile}) as study ${queued.deidentified.studyInstanceUID}`)
      out.info(`queued ${queued.transferId}: ${queued.totals.instances} instances, ${formatBytes(queued.totals.bytes)} to ${opts.to.ura}/${opts.to.department}`)
      if (!opts.wait) { out.result(queued, () => describe(queued)); return 0 }
      const done = await follow(api, out, queued.transferId)
      out.result(done, () => describe(done))
      return done.state === 'complete' ? 0 : 1
    }))

  withRequester(node.command('query'))
    .description('find studies at another institution by patient (BSN, or patient id and issuer) or accession number')
    .requiredOption('--at <URA>', 'the institution to ask')
    .option('--bsn <bsn>').option('--birth-date <YYYYMMDD>').option('--patient-id <id>').option('--issuer <issuer>')
    .option('--from <YYYYMMDD>', 'studies on or after').option('--until <YYYYMMDD>', 'studies on or before')
    .option('--modality <modality>').option('--accession <number>')
    .option('--limit <n>', 'most studies to list', (v) => Number(v), 50)
    .addOption(nodeOption())
    .action(async (opts: RequesterOptions & Record<string, string | number | undefined>, cmd: Command) => run(cmd, async (api, out) => {
      const criteria = Object.fromEntries(Object.entries({
        bsn: opts.bsn, birthDate: opts.birthDate, patientId: opts.patientId, issuer: opts.issuer, dateFrom: opts.from, dateTo: opts.until, modality: opts.modality, accessionNumber: opts.accession, limit: opts.limit
      }).filter(([, v]) => v !== undefined))
      const answer = await api.post<QueryResponse>('/api/query', { at: opts.at, criteria, requester: requesterOf(opts) })
      if (answer.type === 'beeldnet/query-refused') throw new NodeRefusedError(answer.code, answer.reason)
      out.result(answer, () => answer.studies.length === 0
        ? 'no studies found'
        : [...answer.studies.map((s) => `${s.date}  ${s.modalities.join('/').padEnd(6)} ${formatPersonName(s.patient.name)} (${s.patient.birthDate})  ${s.description}  ${s.numberOfInstances} instances  ${s.studyInstanceUID}`),
            ...(answer.truncated ? ['(more matched: narrow the query)'] : [])].join('\n'))
      return 0
    }))

  withRequester(node.command('pull'))
    .description('ask another institution for a study; its policy answers allowed (it is sent here), queued or refused')
    .argument('<StudyInstanceUID>')
    .requiredOption('--at <URA>', 'the institution that holds it')
    .option('--deliver-to <department>', 'where it is to arrive here', 'RAD')
    .addOption(nodeOption())
    .action(async (uid: string, opts: RequesterOptions & { at: string, deliverTo: string }, cmd: Command) => run(cmd, async (api, out) => {
      const answer = await api.post<PullAnswer>('/api/pulls', { at: opts.at, studyInstanceUID: uid, requester: requesterOf(opts), deliverTo: opts.deliverTo })
      out.result(answer, () => `${answer.decision}: ${answer.reason}${answer.code === undefined ? '' : ` (${answer.code})`}`)
      return answer.decision === 'refused' ? 1 : 0
    }))

  node.command('transfers')
    .description('transfers in and out; --watch follows them live')
    .option('--watch', 'progress of every transfer as it happens, until Ctrl-C')
    .option('--cancel <transferId>', 'stop an outgoing transfer for good')
    .option('--retry <transferId>', 'queue a failed outgoing transfer again')
    .addOption(nodeOption())
    .action(async (opts: { watch?: boolean, cancel?: string, retry?: string }, cmd: Command) => run(cmd, async (api, out) => {
      if (opts.cancel !== undefined || opts.retry !== undefined) {
        const record = await api.post<OutgoingRecord>(opts.cancel !== undefined ? `/api/transfers/${opts.cancel}/cancel` : `/api/transfers/${opts.retry!}/retry`)
        out.result(record, () => describe(record))
        return 0
      }
      if (opts.watch === true) { await watch(api, out); return 0 }
      const { outgoing, incoming } = await api.get<{ outgoing: OutgoingRecord[], incoming: IncomingRecord[] }>('/api/transfers')
      const all: TransferRecord[] = [...outgoing, ...incoming].sort((a, b) => b.updatedAt.localeCompare(a.updatedAt))
      out.result({ outgoing, incoming }, () => all.length === 0 ? 'no transfers' : all.map(describe).join('\n'))
      return 0
    }))
}
