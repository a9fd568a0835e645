import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createReadStream } from 'node:fs'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { multipartBody, type OutgoingPart } from '../../node/dicomweb/multipart.ts'
import { generateStudy, type GeneratedStudy } from '../generator/index.ts'
import { freePort, MB, procStats, since, storescu, sync, waitListening, WorkerProcess } from './processes.ts'
import type { BenchRow } from './table.ts'
import { transcodeRows } from './dicom-transcode.ts'

/*
 * DICOM benchmark: the hospital side of a node. The same generated 400-instance CT study (512x512,
 * 16-bit, about 200 MB) goes into a node by storescu (C-STORE) and by STOW-RS, and out of it by
 * C-MOVE (to a storescp) and WADO-RS, next to dcmtk storescu -> storescp in the same run; every
 * dcmtk process and the node with TCP_NODELAY (the node sets it on its own sockets). The node runs
 * in its own process (store, HTTP server, DIMSE service) with bin/beeldnet's Node flags; its peak
 * RSS is its VmHWM during the row (reset before each row through /proc/<pid>/clear_refs). A PACS
 * pushes over several associations at once: the study goes in again over 4 and 8 storescu
 * associations (a share of the files each), and by 4 STOW-RS requests at once, next to 4 storescu
 * into one storescp. A 1 GB multi-frame instance then goes in both ways, to show memory stays
 * flat however large an instance is (BENCH_DICOM_LARGE=0 leaves it out); then out by C-MOVE.
 * Last, transcoding: a JPEG 2000 study out by C-GET and a JPEG 2000 multi-frame instance out by
 * C-MOVE, both decoded for requesters that take only uncompressed (dicom-transcode.ts).
 */

export const DICOM_COLUMNS = ['mbPerS', 'instancesPerS', 'seconds', 'bytes', 'peakRssMb', 'vsStorescuStorescp']

type Log = (line: string) => void

interface Study { uid: string, files: string[], bytes: number }

function studyOf (generated: GeneratedStudy): Study {
  return { uid: generated.studyInstanceUID, files: generated.instances.map((i) => i.path).sort(), bytes: generated.instances.reduce((n, i) => n + i.size, 0) }
}

const NODELAY = { ...process.env, TCP_NODELAY: '1' }

function row (name: string, study: Study, seconds: number, peakRssMb: number | null): BenchRow {
  return { name, mbPerS: study.bytes / MB / seconds, instancesPerS: study.files.length / seconds, seconds, bytes: study.bytes, peakRssMb, vsStorescuStorescp: null }
}

/** The files dealt round-robin into `n` shares, one per association or request. */
function shares (files: string[], n: number): string[][] {
  return Array.from({ length: n }, (_, k) => files.filter((_, i) => i % n === k))
}

/** storescu over `n` associations at once, a share of the files each; seconds until the last ends. */
async function storescuParallel (n: number, args: string[], files: string[]): Promise<number> {
  const started = process.hrtime.bigint()
  await Promise.all(shares(files, n).map(async (share) => storescu([...args, ...share], NODELAY)))
  return since(started)
}

/**
 * Starts a new peak for the process's VmHWM (clear_refs 5), so a row's peak RSS is its own; where
 * the kernel does not allow it, the peak stays the process's so far.
 */
async function resetPeak (pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => {})
}

/** A storescp writing bit-preserved to `dir`; stop() ends it. */
async function storescp (aeTitle: string, dir: string, port: number): Promise<{ stop: () => Promise<void> }> {
  await mkdir(dir, { recursive: true })
  const child = spawn('storescp', ['--aetitle', aeTitle, '-od', dir, '+B', String(port)], { env: NODELAY, stdio: ['ignore', 'ignore', 'inherit'] })
  await waitListening(port)
  return { stop: async () => { child.kill('SIGTERM'); await once(child, 'exit') } }
}

async function run (tool: string, args: string[]): Promise<number> {
  const started = process.hrtime.bigint()
  const child = spawn(tool, args, { env: NODELAY, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000) })
  const [code] = await once(child, 'exit') as [number | null]
  if (code !== 0) throw new Error(`${tool} exited with ${code}: ${stderr.trim()}`)
  return since(started)
}

/** The node's HTTP API and the API token DICOMweb clients call it with. */
interface NodeHttp { url: string, token: string }

/** STOW-RS of the study's files, streamed from disk as one multipart/related body. */
async function stow (http: NodeHttp, study: Study): Promise<number> {
  const started = process.hrtime.bigint()
  await stowFiles(http, study.files)
  return since(started)
}

/** STOW-RS by `n` requests at once, a share of the study's files each. */
async function stowParallel (http: NodeHttp, study: Study, n: number): Promise<number> {
  const started = process.hrtime.bigint()
  await Promise.all(shares(study.files, n).map(async (files) => stowFiles(http, files)))
  return since(started)
}

async function stowFiles ({ url, token }: NodeHttp, files: string[]): Promise<void> {
  const boundary = 'beeldnet-bench'
  async function * parts (): AsyncGenerator<OutgoingPart> {
    for (const file of files) yield { contentType: 'application/dicom', body: createReadStream(file, { highWaterMark: 256 * 1024 }) }
  }
  await new Promise<void>((resolve, reject) => {
    const req = request(`${url}/dicomweb/studies`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, accept: 'application/dicom+json' } }, (res) => {
      res.resume()
      res.on('end', () => {
        if (res.statusCode === 200) resolve()
        else reject(new Error(`STOW-RS answered ${res.statusCode}`))
      })
    })
    req.on('error', reject)
    Readable.from(multipartBody(parts(), boundary)).pipe(req)
  })
}

/** WADO-RS of the whole study, every byte read and counted. */
async function wado ({ url, token }: NodeHttp, study: Study): Promise<number> {
  const started = process.hrtime.bigint()
  const res = await fetch(`${url}/dicomweb/studies/${study.uid}`, { headers: { authorization: `Bearer ${token}`, accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } })
  if (!res.ok || res.body === null) throw new Error(`WADO-RS answered ${res.status}`)
  let bytes = 0
  for await (const chunk of res.body) bytes += chunk.byteLength
  if (bytes < study.bytes) throw new Error(`WADO-RS sent ${bytes} bytes, the study has ${study.bytes}`)
  return since(started)
}

async function countAtNode ({ url, token }: NodeHttp, study: Study): Promise<number> {
  const res = await fetch(`${url}/dicomweb/studies/${study.uid}/instances?limit=100000`, { headers: { authorization: `Bearer ${token}` } })
  return (await res.json() as unknown[]).length
}

export async function runDicomBench (print: Log): Promise<BenchRow[]> {
  const benchStarted = process.hrtime.bigint()
  const log: Log = (line) => { print(`${since(benchStarted).toFixed(0).padStart(4)} s  ${line}`) }
  const work = await mkdtemp(join(tmpdir(), 'beeldnet-bench-dicom-'))
  const stops: Array<() => Promise<void>> = []
  try {
    log('generating a 400-instance CT study (512x512, 16-bit) ...')
    const ct = studyOf(await generateStudy(join(work, 'src', 'ct'), { seed: 400_400, series: [{ modality: 'CT', instances: 400, rows: 512, columns: 512 }] }))
    const large = process.env.BENCH_DICOM_LARGE === '0'
      ? undefined
      : studyOf(await generateStudy(join(work, 'src', 'mf'), { seed: 1_000_100, series: [{ modality: 'CT', instances: 1, rows: 512, columns: 512, frames: 2000 }] }))
    const rows: BenchRow[] = []

    log('storescu -> storescp (the reference) ...')
    const referencePort = await freePort()
    const reference = await storescp('REFERENCE', join(work, 'reference'), referencePort)
    await sync()
    const scu = await storescu(['-aec', 'REFERENCE', '127.0.0.1', String(referencePort), ...ct.files], NODELAY)
    rows.push(row('storescu-storescp', ct, scu.seconds, null))
    await rm(join(work, 'reference'), { recursive: true, force: true })
    await mkdir(join(work, 'reference'))
    await sync()
    // storescp (without --fork) takes one association at a time: the others wait in its backlog.
    rows.push(row('storescu-storescp-x4', ct, await storescuParallel(4, ['-aec', 'REFERENCE', '127.0.0.1', String(referencePort)], ct.files), null))
    await reference.stop()
    await rm(join(work, 'reference'), { recursive: true, force: true })

    const pacsPort = await freePort()
    const pacs = await storescp('BENCH_PACS', join(work, 'pacs'), pacsPort)
    stops.push(pacs.stop)
    const node = WorkerProcess.start('node', 'dicom-node-worker.ts', [join(work, 'node'), String(await freePort()), String(pacsPort)])
    stops.push(async () => { await node.stop() })
    const { url, token, dimsePort } = await node.next('ready', 60_000) as unknown as { url: string, token: string, dimsePort: number }
    const http: NodeHttp = { url, token }
    const peak = async (): Promise<number> => (await procStats(node.pid)).peakRssMb
    const into = ['-aet', 'BENCH', '-aec', 'BEELDNET', '127.0.0.1', String(dimsePort)]
    const fresh = async (uid: string): Promise<void> => {
      node.send({ cmd: 'delete', uid })
      await node.next('deleted')
      await sync()
      await resetPeak(node.pid)
    }

    for (const n of [4, 8]) {
      log(`C-STORE into the node over ${n} associations at once (storescu x${n}) ...`)
      await sync()
      await resetPeak(node.pid)
      rows.push(row(`cstore-in-x${n}`, ct, await storescuParallel(n, into, ct.files), await peak()))
      if (await countAtNode(http, ct) !== ct.files.length) throw new Error(`the node does not hold every instance ${n} storescu associations sent`)
      await fresh(ct.uid)
    }

    log('C-STORE into the node (storescu) ...')
    rows.push(row('cstore-in', ct, (await storescu([...into, ...ct.files], NODELAY)).seconds, await peak()))
    if (await countAtNode(http, ct) !== ct.files.length) throw new Error('the node does not hold every instance storescu sent')

    log('C-MOVE out of the node (movescu, to a storescp) ...')
    await sync()
    await resetPeak(node.pid)
    rows.push(row('cmove-out', ct, await run('movescu', ['-S', ...into.slice(0, 4), '-aem', 'BENCH_PACS', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${ct.uid}`, ...into.slice(4)]), await peak()))
    if ((await readdir(join(work, 'pacs'))).length !== ct.files.length) throw new Error('storescp did not receive every instance of the C-MOVE')

    log('WADO-RS out of the node ...')
    await resetPeak(node.pid)
    rows.push(row('wado-out', ct, await wado(http, ct), await peak()))

    log('STOW-RS into the node ...')
    await fresh(ct.uid)
    rows.push(row('stow-in', ct, await stow(http, ct), await peak()))
    if (await countAtNode(http, ct) !== ct.files.length) throw new Error('the node does not hold every instance of the STOW-RS upload')

    log('STOW-RS into the node by 4 requests at once ...')
    await fresh(ct.uid)
    rows.push(row('stow-in-x4', ct, await stowParallel(http, ct, 4), await peak()))
    if (await countAtNode(http, ct) !== ct.files.length) throw new Error('the node does not hold every instance of the 4 STOW-RS uploads')

    if (large !== undefined) {
      log('the 1 GB multi-frame instance in by STOW-RS and by C-STORE, out by C-MOVE ...')
      await sync()
      await resetPeak(node.pid)
      rows.push(row('stow-in-1gb', large, await stow(http, large), await peak()))
      await fresh(large.uid)
      rows.push(row('cstore-in-1gb', large, (await storescu([...into, ...large.files], NODELAY)).seconds, await peak()))
      await sync()
      await resetPeak(node.pid)
      rows.push(row('cmove-out-1gb', large, await run('movescu', ['-S', ...into.slice(0, 4), '-aem', 'BENCH_PACS', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${large.uid}`, ...into.slice(4)]), await peak()))
    }

    // The ratio is for the CT study, the one the reference moved.
    const base = rows[0]!.mbPerS
    for (const r of rows) if (!r.name.endsWith('-1gb')) r.vsStorescuStorescp = r.mbPerS / base
    // Transcoding rows come after the ratio: they move other studies (JPEG 2000).
    rows.push(...await transcodeRows({ work, into, moveDestination: 'BENCH_PACS', destinationDir: join(work, 'pacs'), resetPeak: async () => { await resetPeak(node.pid) }, peak, log }))
    log(`done in ${since(benchStarted).toFixed(0)} s`)
    return rows
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    await rm(work, { recursive: true, force: true })
  }
}
