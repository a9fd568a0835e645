import { createHash } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { pino } from 'pino'
import { isBeeldnetError } from '../../protocol/errors.ts'
import { BeeldnetNode } from '../../node/beeldnet-node.ts'
import { importFiles } from '../../node/dicom/file-import.ts'
import { verifyTrail } from '../../node/audit/verify.ts'
import { nodePaths } from '../../node/paths.ts'
import type { OutgoingRecord } from '../../node/transfers/transfer-store.ts'
import { generateStudy, type SeriesSpec } from '../generator/index.ts'
import { nodeEnv } from '../scenarios/node-env.ts'
import type { HostContext, HostedNode, HostEvent, HostMessage, HostRequest, HostRequestMessage, HostStats, PreparedStudy, StudyToPrepare } from './host-protocol.ts'

/*
 * One process of the national day: hosts some of its nodes (real BeeldnetNodes, the code a hospital
 * runs) and does what the driver (run.ts) asks of them over IPC: prepare studies at their holders,
 * push, pull, take a directory file, watch for a key being refused, report CPU and memory. Several
 * nodes share a process because 120 processes would not fit two cores (node-cost.ts says what one
 * costs). The driver kills this process with SIGKILL for the node-crash fault: nothing here may
 * depend on a clean exit.
 */

const FINAL = new Set(['complete', 'failed', 'declined', 'cancelled'])
const PLAN_HOLD = 'national-day-plan'
const CLINICIAN = { name: 'Simulatie, A.', uzi: '900000001', role: '01.015' }

const logger = pino({ level: process.env.NATIONAL_DAY_LOG ?? 'silent' })
const nodes = new Map<string, { hosted: HostedNode, node: BeeldnetNode, env: Record<string, string> }>()
/** exchange -> the outgoing transfer that carries it, at the node that pushes */
const transfers = new Map<number, { ura: string, transferId: string }>()
/** what stop must end: arrival listeners of pulls, refusal watches */
const watchers: Array<() => void> = []

function send (message: HostMessage): void {
  process.send?.(message)
}

function emit (event: HostEvent): void {
  send(event)
}

function nodeOf (ura: string): BeeldnetNode {
  const entry = nodes.get(ura)
  if (entry === undefined) throw new Error(`no node of URA ${ura} in this process`)
  return entry.node
}

async function start (hosted: HostedNode[], env: Record<string, string>, registryUrl: string, pollIntervalSeconds: number): Promise<Array<{ ura: string, url: string }>> {
  const started: Array<{ ura: string, url: string }> = []
  for (const h of hosted) {
    const node = new BeeldnetNode({
      dataDir: h.dir,
      logger: logger.child({ node: h.slug }),
      env: { ...nodeEnv({ ...process.env, ...env }, { httpPort: 0, registryUrl, pollIntervalSeconds, p2pListen: h.addresses }), ...h.env }
    })
    await node.start()
    nodes.set(h.ura, { hosted: h, node, env })
    watchArrivals(h.ura, node)
    watchOutgoing(node)
    started.push({ ura: h.ura, url: node.url })
  }
  return started
}

/** Stops one node and starts it again with more settings (IT giving it a store quota, say). */
async function restartNode (ura: string, extra: Record<string, string>, registryUrl: string, pollIntervalSeconds: number): Promise<number> {
  const entry = nodes.get(ura)
  if (entry === undefined) throw new Error(`no node of URA ${ura} in this process`)
  await entry.node.stop()
  nodes.delete(ura)
  await start([{ ...entry.hosted, env: { ...entry.hosted.env, ...extra } }], entry.env, registryUrl, pollIntervalSeconds)
  return nodeOf(ura).store.storedBytes()
}

/** Every study that arrives is read back from the blobs: what the driver compares is what is on disk. */
function watchArrivals (ura: string, node: BeeldnetNode): void {
  node.exchange.on('study-complete', (e) => {
    if (e.direction !== 'incoming') return
    void (async () => {
      const sha256 = await storedHashes(node, e.studyInstanceUID)
      emit({ type: 'arrived', ura, studyInstanceUID: e.studyInstanceUID, sha256, wallAt: Date.now() })
    })().catch((err: unknown) => { logger.error({ err }, 'reading an arrived study back failed') })
  })
}

/** The sha256 of each instance of a study as its bytes are on disk now (not as the index says). */
async function storedHashes (node: BeeldnetNode, studyInstanceUID: string): Promise<string[]> {
  const entries = await node.store.getStudy(studyInstanceUID)
  const hashes: string[] = []
  for (const instance of entries.instances) {
    const hash = createHash('sha256')
    for await (const chunk of node.store.openInstance(instance)) hash.update(chunk)
    hashes.push(hash.digest('hex'))
  }
  return hashes.sort()
}

/** A study of the plan's shape at its holder: `images` instances of about bytes / images each, and its reports. */
async function prepare (studies: StudyToPrepare[], workRoot: string): Promise<PreparedStudy[]> {
  const prepared: PreparedStudy[] = []
  for (const s of studies) {
    const node = nodeOf(s.holder)
    const issuer = nodes.get(s.holder)!.hosted.issuer
    const side = Math.max(16, Math.round(Math.sqrt(s.bytes / s.images / 2)))
    // The generator has no MG: mammography goes as DX images of the same size, described as what they are.
    const modality = s.modality === 'MG' ? 'DX' : s.modality
    const series: SeriesSpec[] = [{ modality, instances: s.images, rows: side, columns: side, description: `${s.variant} (national day ${s.exchange})` }]
    const dir = join(workRoot, `study-${s.exchange}`)
    const study = await generateStudy(dir, { seed: 100_000 + s.exchange, patient: { issuer }, series, reports: { sr: true, pdf: s.reports > 1 } })
    const summary = await importFiles(study.instances.map((i) => i.path), { store: node.store })
    await rm(dir, { recursive: true, force: true })
    if (summary.rejected.length > 0) throw new Error(`study ${s.exchange}: ${summary.rejected.length} file(s) refused: ${summary.rejected[0]!.code}`)
    // Waiting to be sent is in use: the disk-full node's short retention must not purge it before its push.
    await node.store.hold(study.studyInstanceUID, PLAN_HOLD, `national day exchange ${s.exchange}, not sent yet`)
    prepared.push({ exchange: s.exchange, studyInstanceUID: study.studyInstanceUID, sha256: await storedHashes(node, study.studyInstanceUID), bytes: study.instances.reduce((n, i) => n + i.size, 0) })
  }
  return prepared
}

/**
 * The disk filling up: a large study lands in the store by another way (a PACS dumping a backlog)
 * and leaves less room under the quota than any study offered. Retention removes it in time.
 */
async function fill (ura: string, quota: number, workRoot: string): Promise<number> {
  const node = nodeOf(ura)
  const room = quota - await node.store.storedBytes() - 8192
  if (room > 4096) {
    const side = Math.floor(Math.sqrt(room / 2))
    const dir = join(workRoot, 'filler')
    const study = await generateStudy(dir, { seed: 99, patient: { issuer: nodes.get(ura)!.hosted.issuer }, series: [{ modality: 'CT', instances: 1, rows: side, columns: side, description: 'backlog from the PACS' }] })
    await importFiles(study.instances.map((i) => i.path), { store: node.store })
    await rm(dir, { recursive: true, force: true })
  }
  return quota - await node.store.storedBytes()
}

/** Outgoing transfers followed to their final state, by transfer id; every error code met on the way is kept. */
const followed = new Map<string, { exchange: number, codes: string[] }>()
/** final records of transfers whose follow() had not begun yet (a transfer can end before send() returns) */
const endedEarly = new Map<string, OutgoingRecord>()

/** One listener a node (not one a transfer: a busy node has hundreds under way). */
function watchOutgoing (node: BeeldnetNode): void {
  node.exchange.on('state', (record) => {
    if (record.direction !== 'outgoing') return
    const outgoing = record as OutgoingRecord
    const entry = followed.get(outgoing.transferId)
    if (entry === undefined) {
      if (FINAL.has(outgoing.state)) endedEarly.set(outgoing.transferId, outgoing)
      return
    }
    settle(node, entry, outgoing)
  })
}

function settle (node: BeeldnetNode, entry: { exchange: number, codes: string[] }, record: OutgoingRecord): void {
  const code = record.lastError?.code
  if (code !== undefined && entry.codes.at(-1) !== code) entry.codes.push(code)
  if (!FINAL.has(record.state)) return
  followed.delete(record.transferId)
  if (record.state === 'complete') void node.store.release(record.studyInstanceUID, PLAN_HOLD).catch(() => {})
  emit({ type: 'outcome', exchange: entry.exchange, state: record.state as 'complete', code, attempts: record.attempts, wallAt: Date.now(), codes: entry.codes })
}

function follow (exchange: number, node: BeeldnetNode, transferId: string): void {
  const entry = { exchange, codes: [] }
  followed.set(transferId, entry)
  const early = endedEarly.get(transferId)
  if (early !== undefined) { endedEarly.delete(transferId); settle(node, entry, early) }
}

async function push (exchange: number, from: string, to: string, study: string): Promise<string> {
  const node = nodeOf(from)
  const record = await node.exchange.send({ studyInstanceUID: study, to: { ura: to, department: 'RAD' }, reason: `national day exchange ${exchange}`, confirmBulk: true })
  transfers.set(exchange, { ura: from, transferId: record.transferId })
  follow(exchange, node, record.transferId)
  return record.transferId
}

/**
 * A pull: the requester asks, the source's policy allows (setup.ts gives every institution 'treatment'),
 * and the source pushes it back. Done when it arrives at the requester.
 */
async function pull (exchange: number, requester: string, source: string, study: string): Promise<string> {
  const node = nodeOf(requester)
  const arrived = new Promise<void>((resolve) => {
    const onComplete = (e: { direction: string, studyInstanceUID: string }): void => {
      if (e.direction !== 'incoming' || e.studyInstanceUID !== study) return
      node.exchange.off('study-complete', onComplete as never)
      resolve()
    }
    node.exchange.on('study-complete', onComplete as never)
    watchers.push(() => { node.exchange.off('study-complete', onComplete as never) })
  })
  const answer = await node.exchange.pull(source, { studyInstanceUID: study, requester: { clinician: CLINICIAN, purpose: 'treatment', department: 'RAD' }, deliverTo: 'RAD' })
  if (answer.decision !== 'allowed') {
    emit({ type: 'outcome', exchange, state: 'refused', code: answer.code ?? `BEELDNET_PULL_${answer.decision.toUpperCase()}`, attempts: 1, wallAt: Date.now(), codes: [] })
    return answer.decision
  }
  void arrived.then(() => { emit({ type: 'outcome', exchange, state: 'complete', attempts: 1, wallAt: Date.now(), codes: [] }) })
  return 'allowed'
}

/** Reports, per node of this process, the first moment its gating refuses `peerId`. */
function watchRefusal (peerId: string): void {
  const pending = new Set(nodes.keys())
  const timer = setInterval(() => {
    for (const ura of [...pending]) {
      const entry = nodes.get(ura)
      if (entry === undefined) { pending.delete(ura); continue }
      if (entry.hosted.peerId === peerId) { pending.delete(ura); continue }
      const check = entry.node.p2p.gating.check(peerId)
      if (check.allowed) continue
      pending.delete(ura)
      emit({ type: 'refuses', ura, peerId, wallAt: Date.now(), reason: check.reason ?? 'refused' })
    }
    if (pending.size === 0) clearInterval(timer)
  }, 20)
  watchers.push(() => { clearInterval(timer) })
}

/** Where each push of this process stands now, with the last error it met: for those that never ended. */
async function transferStates (): Promise<Array<{ exchange: number, state: string, code?: string, attempts: number }>> {
  const states = []
  for (const [exchange, { ura, transferId }] of transfers) {
    const record = await nodes.get(ura)?.node.exchange.queue.get(transferId)
    if (record !== undefined) states.push({ exchange, state: record.state, code: record.lastError?.code, attempts: record.attempts })
  }
  return states
}

function stats (): HostStats {
  const cpu = process.cpuUsage()
  return {
    pid: process.pid,
    nodes: nodes.size,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    rssMb: process.memoryUsage.rss() / 2 ** 20,
    peakRssMb: process.resourceUsage().maxRSS / 1024
  }
}

async function handle (request: HostRequest & HostContext): Promise<unknown> {
  switch (request.type) {
    case 'start': return start(request.nodes, request.env, request.registryUrl, request.pollIntervalSeconds)
    case 'prepare': return prepare(request.studies, request.workDir)
    case 'push': return push(request.exchange, request.from, request.to, request.study)
    case 'pull': return pull(request.exchange, request.requester, request.source, request.study)
    case 'accept-directory': return (await nodeOf(request.ura).directory.acceptDirectoryFile(request.file))
    case 'watch-refusal': watchRefusal(request.peerId); return null
    case 'directory-versions': return [...nodes.entries()].map(([ura, { node }]) => ({ ura, version: node.directory.directory?.version }))
    case 'transfer-states': return transferStates()
    case 'stored-bytes': return nodeOf(request.ura).store.storedBytes()
    case 'fill': return fill(request.ura, request.quota, request.workDir)
    case 'restart-node': return restartNode(request.ura, request.env, request.registryUrl, request.pollIntervalSeconds)
    case 'verify-trails': return Promise.all([...nodes.entries()].map(async ([ura, { hosted }]) => ({ ura, ...(await verifyTrail(nodePaths(hosted.dir).auditTrail)) })))
    case 'stats': return stats()
    case 'stop':
      for (const w of watchers.splice(0)) w()
      await Promise.allSettled([...nodes.values()].map(async ({ node }) => node.stop()))
      nodes.clear()
      return null
  }
}

process.on('message', (message: HostRequestMessage) => {
  const { id } = message
  handle(message).then(
    (value) => { send({ type: 'reply', id, ok: true, value }) },
    (err: unknown) => {
      const code = isBeeldnetError(err) ? err.code : 'BEELDNET_ERR_INTERNAL'
      send({ type: 'reply', id, ok: false, code, message: err instanceof Error ? err.message : String(err) })
    }
  )
})
process.on('disconnect', () => { process.exit(0) })
