import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { uploadOf } from '../../../node/cli/through-node.ts'
import { generateStudy } from '../../../simulations/generator/index.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

/*
 * `node import` beside a running node sends each file to the node's import API; a file whose first
 * bytes already say it is not DICOM is sent as those bytes only (the node refuses it on them, with
 * the same code and report line as for the whole file).
 */

const tempDir = useTempDirs()

async function bytesOf (stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.from(chunk))
  return Buffer.concat(chunks)
}

describe('what node import sends of a file to a running node', () => {
  it('sends only the opening of a file that is not DICOM, and all of a DICOM file', async () => {
    const dir = await tempDir()
    const video = join(dir, 'scan.mp4')
    await writeFile(video, randomBytes(8 * 1024 * 1024))
    const sent = await bytesOf(await uploadOf(video))
    expect(sent.length).toBe(140)
    expect(sent.equals((await readFile(video)).subarray(0, 140))).toBe(true)

    const study = await generateStudy(join(dir, 'study'), { seed: 9, series: [{ modality: 'CT', instances: 1, rows: 16, columns: 16 }] })
    const image = study.instances[0]!.path
    expect((await bytesOf(await uploadOf(image))).equals(await readFile(image))).toBe(true)
  })
})
