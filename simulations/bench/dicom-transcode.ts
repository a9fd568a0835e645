import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { generateStudy } from '../generator/index.ts'
import { MB, since, storescu, sync } from './processes.ts'
import type { BenchRow } from './table.ts'

/*
 * Transcoding rows of the DICOM benchmark: a JPEG 2000 (lossless) CT study of 40 instances
 * (512x512, 16-bit) goes into the node by storescu as stored, then out by C-GET to a getscu that
 * proposes only uncompressed syntaxes (so every instance is decoded), and a JPEG 2000 multi-frame
 * instance (120 frames of 512x512, 60 MB decoded) out by C-MOVE to a storescp that accepts only
 * uncompressed and by C-GET (decoded frame by frame as it streams; BENCH_DICOM_LARGE=0 leaves it out).
 * MB/s counts the decoded bytes delivered; peak RSS is the node's, as in the other rows.
 * The JPEG 2000 files are made here with dcmjs-codecs' encoder (dcmtk has no JPEG 2000 codec).
 */

export interface TranscodeBenchContext {
  work: string
  /** storescu/getscu/movescu arguments reaching the node: -aet, its calling title, -aec, its title, host, port */
  into: string[]
  /** AE title of the storescp the node's C-MOVE sends to (accepts only uncompressed), and where it writes */
  moveDestination: string
  destinationDir: string
  /** starts a new peak RSS for the node, and reads it */
  resetPeak: () => Promise<void>
  peak: () => Promise<number>
  log: (line: string) => void
}

const J2K_LOSSLESS = '1.2.840.10008.1.2.4.90'
const NODELAY = { ...process.env, TCP_NODELAY: '1' }

type Codecs = typeof import('dcmjs-codecs')

/** JPEG 2000 copies of `files` into `dir` (each read and encoded whole here, in the bench process). */
async function j2kCopies (files: string[], dir: string): Promise<string[]> {
  const codecs = createRequire(import.meta.url)('dcmjs-codecs') as Codecs
  codecs.log.setLevel('silent')
  if (!codecs.NativeCodecs.isInitialized()) await codecs.NativeCodecs.initializeAsync()
  await mkdir(dir, { recursive: true })
  const out: string[] = []
  for (const [n, file] of files.entries()) {
    const bytes = await readFile(file)
    const transcoder = new codecs.Transcoder(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length))
    transcoder.transcode(J2K_LOSSLESS)
    const path = join(dir, `${String(n).padStart(4, '0')}.dcm`)
    await writeFile(path, Buffer.from(transcoder.getDicomPart10()))
    out.push(path)
  }
  return out
}

async function tool (name: string, args: string[]): Promise<number> {
  const started = process.hrtime.bigint()
  const child = spawn(name, args, { env: NODELAY, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000) })
  const [code] = await once(child, 'exit') as [number | null]
  if (code !== 0) throw new Error(`${name} exited with ${code}: ${stderr.trim()}`)
  return since(started)
}

async function bytesIn (dir: string): Promise<{ files: number, bytes: number }> {
  const names = await readdir(dir)
  const sizes = await Promise.all(names.map(async (n) => (await stat(join(dir, n))).size))
  return { files: names.length, bytes: sizes.reduce((a, b) => a + b, 0) }
}

function row (name: string, files: number, bytes: number, seconds: number, peakRssMb: number): BenchRow {
  return { name, mbPerS: bytes / MB / seconds, instancesPerS: files / seconds, seconds, bytes, peakRssMb, vsStorescuStorescp: null }
}

export async function transcodeRows (ctx: TranscodeBenchContext): Promise<BenchRow[]> {
  const { work, into, log } = ctx
  const rows: BenchRow[] = []
  log('making a JPEG 2000 CT study (40 instances, 512x512) with dcmjs-codecs ...')
  const ct = await generateStudy(join(work, 'src', 'j2k-ct'), { seed: 90_400, series: [{ modality: 'CT', instances: 40, rows: 512, columns: 512 }] })
  const ctFiles = await j2kCopies(ct.instances.map((i) => i.path), join(work, 'j2k', 'ct'))
  await storescu(['-xv', ...into, ...ctFiles], NODELAY)

  log('C-GET of the JPEG 2000 study, decoded for a getscu that takes only uncompressed ...')
  const got = join(work, 'j2k', 'got')
  await mkdir(got, { recursive: true })
  await sync()
  await ctx.resetPeak()
  const getSeconds = await tool('getscu', ['-S', ...into.slice(0, 4), '-od', got, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${ct.studyInstanceUID}`, ...into.slice(4)])
  const received = await bytesIn(got)
  if (received.files !== ctFiles.length) throw new Error(`getscu received ${received.files} of ${ctFiles.length} JPEG 2000 instances`)
  rows.push(row('cget-transcode-j2k', received.files, received.bytes, getSeconds, await ctx.peak()))
  await rm(got, { recursive: true, force: true })

  if (process.env.BENCH_DICOM_LARGE !== '0') {
    log('making a JPEG 2000 multi-frame instance (120 frames of 512x512) ...')
    const mf = await generateStudy(join(work, 'src', 'j2k-mf'), { seed: 90_120, series: [{ modality: 'CT', instances: 1, rows: 512, columns: 512, frames: 120 }] })
    const mfFiles = await j2kCopies(mf.instances.map((i) => i.path), join(work, 'j2k', 'mf'))
    await storescu(['-xv', ...into, ...mfFiles], NODELAY)
    for (const name of await readdir(ctx.destinationDir)) await rm(join(ctx.destinationDir, name), { force: true })
    log('C-MOVE of the multi-frame instance to a storescp that takes only uncompressed, decoded frame by frame ...')
    await sync()
    await ctx.resetPeak()
    const moveSeconds = await tool('movescu', ['-S', ...into.slice(0, 4), '-aem', ctx.moveDestination, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${mf.studyInstanceUID}`, ...into.slice(4)])
    const moved = await bytesIn(ctx.destinationDir)
    if (moved.files !== 1) throw new Error(`storescp received ${moved.files} files of the JPEG 2000 multi-frame instance`)
    rows.push(row('cmove-transcode-j2k-mf', moved.files, moved.bytes, moveSeconds, await ctx.peak()))

    log('C-GET of the multi-frame instance, decoded frame by frame as it streams ...')
    await mkdir(got, { recursive: true })
    await sync()
    await ctx.resetPeak()
    const mfGetSeconds = await tool('getscu', ['-S', ...into.slice(0, 4), '-od', got, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${mf.studyInstanceUID}`, ...into.slice(4)])
    const gotMf = await bytesIn(got)
    if (gotMf.files !== 1) throw new Error(`getscu received ${gotMf.files} files of the JPEG 2000 multi-frame instance`)
    rows.push(row('cget-transcode-j2k-mf', gotMf.files, gotMf.bytes, mfGetSeconds, await ctx.peak()))
    await rm(got, { recursive: true, force: true })
  }
  return rows
}
