// Shared test helpers: temp dirs cleaned up after each test, dcmtk via execFile, dcmjs's reader.
import { execFile } from 'node:child_process'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach } from 'vitest'

const run = promisify(execFile)

export function useTempDirs (): () => Promise<string> {
  const dirs: string[] = []
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map(async (d) => rm(d, { recursive: true, force: true })))
  })
  return async () => {
    const d = await mkdtemp(join(tmpdir(), 'beeldnet-gen-'))
    dirs.push(d)
    return d
  }
}

/** Runs a dcmtk tool; dcmtk must be installed (Debian/Ubuntu: apt-get install dcmtk). */
export async function dcmtk (tool: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(tool, args, { maxBuffer: 64 << 20, encoding: 'utf8' })
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') {
      throw new Error(`${tool} not found: apt-get install dcmtk`, { cause: err })
    }
    throw err
  }
}

export async function dcmdump (path: string, ...args: string[]): Promise<string> {
  const { stdout, stderr } = await dcmtk('dcmdump', [...args, path])
  if (/^[EF]: /m.test(stderr)) throw new Error(`dcmdump ${path}: ${stderr}`)
  return stdout
}

interface DcmjsModule {
  data: {
    DicomMessage: { readFile: (buf: ArrayBuffer, opts?: object) => { dict: object; meta: object } }
    DicomMetaDictionary: { naturalizeDataset: (dict: object) => Record<string, unknown> }
  }
  log: { getLogger: (name: string) => { setLevel: (level: string) => void } }
}
const dcmjs = createRequire(import.meta.url)('dcmjs') as DcmjsModule
// Quiet "Invalid vr type ox - using OW": implicit VR pixel data has no VR, dcmjs's choice of OW is right.
dcmjs.log.getLogger('validation.dcmjs').setLevel('silent')

/** Parses a Part 10 file with dcmjs and returns the naturalized dataset (plus meta under _meta). */
export function readWithDcmjs (bytes: Uint8Array): Record<string, unknown> {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer
  const msg = dcmjs.data.DicomMessage.readFile(ab)
  const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(msg.dict)
  ds._meta = dcmjs.data.DicomMetaDictionary.naturalizeDataset(msg.meta)
  return ds
}

export async function listFiles (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)).sort()
}

/** Decoder for DICOM RLE (PackBits segments), to check our encoder independently of dcmtk. */
export function decodeRle (fragment: Uint8Array, pixels: number, bytesPerPixel: number): Uint8Array {
  const dv = new DataView(fragment.buffer, fragment.byteOffset, fragment.byteLength)
  const segments = dv.getUint32(0, true)
  const out = new Uint8Array(pixels * bytesPerPixel)
  for (let s = 0; s < segments; s++) {
    const start = dv.getUint32(4 + 4 * s, true)
    const end = s + 1 < segments ? dv.getUint32(8 + 4 * s, true) : fragment.length
    const plane = new Uint8Array(pixels)
    let i = start
    let o = 0
    while (i < end && o < pixels) {
      const n = fragment[i++] as number
      if (n < 128) { plane.set(fragment.subarray(i, i + n + 1), o); i += n + 1; o += n + 1 } else if (n > 128) {
        plane.fill(fragment[i++] as number, o, o + 257 - n); o += 257 - n
      }
    }
    // Segment s holds byte (bytesPerPixel - 1 - s) of each little-endian pixel (MSB first).
    for (let p = 0; p < pixels; p++) out[p * bytesPerPixel + (bytesPerPixel - 1 - s)] = plane[p] as number
  }
  return out
}
