import { readFile, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buffer } from 'node:stream/consumers'
import { constants, createDeflateRaw, deflateRawSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { readHeader } from '../../../node/dicom/dataset-reader.ts'
import { inflatedRange } from '../../../node/dicom/inflated-source.ts'
import { readInstanceHeader } from '../../../node/dicom/instance-header.ts'
import { generateStudy } from '../../../simulations/generator/index.ts'
import { dcmtk } from '../../helpers/dcmtk.ts'
import { element, part10, uidElements } from '../../helpers/dicom-bytes.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

const tempDir = useTempDirs()
const DEFLATED = '1.2.840.10008.1.2.1.99'

function codeOf (fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return (err as { code?: string }).code
  }
  return undefined
}

/** `dcmconv +td`: the same instance as Deflated Explicit VR Little Endian, written by dcmtk. */
async function deflate (path: string): Promise<string> {
  const out = `${path}.deflated.dcm`
  const result = await dcmtk('dcmconv', ['+td', path, out])
  expect(result.code, result.stderr).toBe(0)
  return out
}

/** Deflate output of `data` flushed so that what follows starts on a byte of its own with a fresh history. */
async function fullFlushed (deflater: ReturnType<typeof createDeflateRaw>, data: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = []
  const onData = (c: Buffer): void => { chunks.push(c) }
  deflater.on('data', onData)
  deflater.write(data)
  await new Promise<void>((resolve) => deflater.flush(constants.Z_FULL_FLUSH, resolve))
  deflater.off('data', onData)
  return Buffer.concat(chunks)
}

/**
 * A deflate bomb: after the UIDs, private OB elements of 1 MiB of zeros each, compressed once and
 * repeated `mebibytes` times (each inflates to its element again), then `tail`.
 */
async function bomb (path: string, mebibytes: number, tail: Buffer): Promise<number> {
  const deflater = createDeflateRaw({ level: 9 })
  const head = await fullFlushed(deflater, uidElements())
  const oneMiB = await fullFlushed(deflater, element(0x0009, 0x1010, 'OB', Buffer.alloc(1024 * 1024)))
  deflater.destroy()
  const file = part10(DEFLATED, Buffer.concat([head, ...Array.from({ length: mebibytes }, () => oneMiB), tail]))
  await writeFile(path, file)
  return file.length
}

describe('deflated datasets (1.2.840.10008.1.2.1.99)', () => {
  it('index as the same instance uncompressed: image, SR and PDF as dcmconv writes them', async () => {
    const dir = await tempDir()
    const study = await generateStudy(dir, {
      seed: 11,
      patient: { id: 'P11', issuer: 'HOSP', name: 'Jansen^Piet', bsn: '111222333', birthDate: '19600101', sex: 'M' },
      reports: { sr: true, pdf: true },
      series: [{ modality: 'CT', instances: 1, rows: 128, columns: 128 }]
    })
    expect(study.instances.length).toBe(3)
    for (const instance of study.instances) {
      const deflated = await deflate(instance.path)
      expect((await readFile(deflated)).length).toBeLessThan((await readFile(instance.path)).length)
      const header = readInstanceHeader(deflated)
      expect(header.transferSyntaxUID).toBe(DEFLATED)
      expect({ ...header, transferSyntaxUID: '' }).toEqual({ ...readInstanceHeader(instance.path), transferSyntaxUID: '' })
    }
  })

  it('serve a value of the header as a byte range of the inflated dataset, streamed', async () => {
    const dir = await tempDir()
    const study = await generateStudy(dir, { seed: 12, series: [{ modality: 'CT', instances: 1, rows: 64, columns: 64 }] })
    const original = study.instances[0]!.path
    const deflated = await deflate(original)
    const plain = readHeader(original)
    const parsed = readHeader(deflated)
    expect(parsed.deflated).toBe(true)
    expect(parsed.pixelDataLength).toBe(plain.pixelDataLength)
    const pixels = await buffer(inflatedRange(deflated, parsed.datasetOffset, { offset: parsed.pixelDataOffset!, length: parsed.pixelDataLength! }))
    const source = await readFile(original)
    expect(pixels.equals(source.subarray(plain.pixelDataOffset!, plain.pixelDataOffset! + plain.pixelDataLength!))).toBe(true)
  })

  it('refuse a cut-off or corrupt deflate stream by code', async () => {
    const dir = await tempDir()
    const study = await generateStudy(dir, { seed: 13, series: [{ modality: 'CT', instances: 1, rows: 128, columns: 128 }] })
    const deflated = await deflate(study.instances[0]!.path)
    const bytes = await readFile(deflated)
    const cut = join(dir, 'cut.dcm')
    await writeFile(cut, bytes)
    await truncate(cut, bytes.length - 2000)
    expect(codeOf(() => readInstanceHeader(cut))).toBe('BEELDNET_ERR_DICOM_TRUNCATED')
    const parsed = readHeader(deflated)
    const corrupt = join(dir, 'corrupt.dcm')
    await writeFile(corrupt, Buffer.concat([bytes.subarray(0, parsed.datasetOffset), Buffer.alloc(64, 0xFF)]))
    expect(codeOf(() => readInstanceHeader(corrupt))).toBe('BEELDNET_ERR_DICOM_MALFORMED')
    const empty = join(dir, 'empty.dcm')
    await writeFile(empty, part10(DEFLATED, deflateRawSync(Buffer.alloc(0))))
    expect(codeOf(() => readInstanceHeader(empty))).toBe('BEELDNET_ERR_DICOM_MISSING_UID')
  })

  it('stop inflating a bomb at the header limit: what lies past it is never read', async () => {
    const dir = await tempDir()
    const path = join(dir, 'bomb.dcm')
    // 80 MiB of zeros, then bytes that are no deflate at all: a reader that went past its 64 MiB
    // limit would meet them and say MALFORMED; one that stops says HEADER_TOO_LARGE.
    await bomb(path, 80, Buffer.alloc(256, 0xFF))
    expect(codeOf(() => readInstanceHeader(path))).toBe('BEELDNET_ERR_DICOM_HEADER_TOO_LARGE')
    expect(codeOf(() => readInstanceHeader(path, { maxHeaderBytes: 1024 * 1024 }))).toBe('BEELDNET_ERR_DICOM_HEADER_TOO_LARGE')
    // the same with room to go further does reach the garbage: the test tells the two apart
    expect(codeOf(() => readInstanceHeader(path, { maxHeaderBytes: 512 * 1024 * 1024 }))).toBe('BEELDNET_ERR_DICOM_MALFORMED')
  })

  it('refuse a value that claims more than the limit before inflating any of it', async () => {
    const dir = await tempDir()
    const path = join(dir, 'claim.dcm')
    await writeFile(path, part10(DEFLATED, deflateRawSync(Buffer.concat([uidElements(), element(0x0009, 0x1010, 'OB', Buffer.alloc(0), 0x80000000), Buffer.alloc(16 * 1024 * 1024)]))))
    expect(codeOf(() => readInstanceHeader(path))).toBe('BEELDNET_ERR_DICOM_HEADER_TOO_LARGE')
  })

  it('refuse a 2 MB file that inflates to 2 GiB without the memory growing', async () => {
    const dir = await tempDir()
    const path = join(dir, 'bomb.dcm')
    const size = await bomb(path, 2048, deflateRawSync(Buffer.alloc(0)))
    expect(size).toBeLessThan(4 * 1024 * 1024)
    global.gc?.()
    const before = process.memoryUsage().rss
    let peak = before
    for (let i = 0; i < 3; i++) {
      expect(codeOf(() => readInstanceHeader(path))).toBe('BEELDNET_ERR_DICOM_HEADER_TOO_LARGE')
      peak = Math.max(peak, process.memoryUsage().rss)
    }
    // Up to the 64 MiB header limit is inflated per pass and may wait for the garbage collector on a
    // busy machine (three passes: 192 MiB); what must never happen is the 2 GiB.
    expect(peak - before).toBeLessThan(256 * 1024 * 1024)
  })
})
