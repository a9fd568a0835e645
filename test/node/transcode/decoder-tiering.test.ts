import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { generateStudy } from '../../../simulations/generator/index.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

/*
 * A node as bin/beeldnet runs it decodes on WebAssembly's baseline compiler (Liftoff) and never
 * tiers the decoders up to TurboFan: that compilation costs 15-25 MB of peak RSS on a node's first
 * transcode (bench:dicom's cget-transcode-j2k), for decoding about 20 % faster. V8's own trace of
 * what it compiles, in a process started with the node's flags, shows which compiler ran.
 */

const root = join(import.meta.dirname, '..', '..', '..')
const tempDir = useTempDirs()

/** The Node flags on bin/beeldnet's exec line. */
async function nodeFlags (): Promise<string[]> {
  const script = await readFile(join(root, 'bin', 'beeldnet'), 'utf8')
  const exec = script.split('\n').find((line) => line.startsWith('exec '))
  return exec!.split(/\s+/).filter((word) => word.startsWith('--'))
}

/** A JPEG 2000 (lossless) copy of a generated 512x512 CT instance, by dcmjs-codecs' encoder. */
async function j2kInstance (dir: string): Promise<string> {
  const study = await generateStudy(join(dir, 'src'), { seed: 14_014, series: [{ modality: 'CT', instances: 1, rows: 512, columns: 512 }] })
  type Codecs = typeof import('dcmjs-codecs')
  const codecs = createRequire(import.meta.url)('dcmjs-codecs') as Codecs
  codecs.log.setLevel('silent')
  if (!codecs.NativeCodecs.isInitialized()) await codecs.NativeCodecs.initializeAsync()
  const file = await readFile(study.instances[0]!.path)
  const transcoder = new codecs.Transcoder(file.buffer.slice(file.byteOffset, file.byteOffset + file.length))
  transcoder.transcode('1.2.840.10008.1.2.4.90')
  const path = join(dir, 'j2k.dcm')
  await writeFile(path, Buffer.from(transcoder.getDicomPart10()))
  return path
}

const DECODE_MANY = `
const { openFrames } = await import(${JSON.stringify(join(root, 'node', 'transcode', 'frame-reader.ts'))})
const { decodeFrame, loadDecoders } = await import(${JSON.stringify(join(root, 'node', 'transcode', 'codecs.ts'))})
const source = await openFrames(process.argv[1])
await loadDecoders()
for (let i = 0; i < 60; i++) await decodeFrame(source, 1)
await source.close()
`

describe('the JPEG 2000 decoders in a node process', () => {
  it('run on Liftoff only: nothing is compiled by TurboFan however often a frame is decoded', async () => {
    const path = await j2kInstance(await tempDir('tiering'))
    const flags = await nodeFlags()
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [...flags, '--trace-wasm-compilation-times', '--input-type=module', '-e', DECODE_MANY, path], { maxBuffer: 64 * 1024 * 1024 })
    const trace = stdout + stderr
    expect(trace).toMatch(/using Liftoff/)
    expect(trace.split('\n').filter((line) => line.includes('using TurboFan'))).toEqual([])
  })
})
