import { createHash, randomBytes } from 'node:crypto'
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BlobStore, type ReadBuffers } from '../../../node/store/blob-store.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

const tempDir = useTempDirs()
const MiB = 1024 * 1024

async function openBlobs (): Promise<BlobStore> {
  const blobs = new BlobStore({ dir: await tempDir('blobs') })
  await blobs.start()
  return blobs
}

/** `total` bytes in fresh 256 KiB chunks (as frames arrive), hashed as they are made. */
function chunks (total: number): { source: AsyncGenerator<Uint8Array>, digest: () => string } {
  const hash = createHash('sha256')
  const block = randomBytes(MiB)
  return {
    source: (async function * () {
      for (let made = 0; made < total; made += 256 * 1024) {
        const chunk = Buffer.allocUnsafe(256 * 1024)
        block.copy(chunk, 0, (made / 256) % (MiB - 256 * 1024))
        hash.update(chunk)
        yield chunk
      }
    })(),
    digest: () => hash.digest('hex')
  }
}

describe('blob store staging and reading', () => {
  it('stages 512 MiB under an abort signal without holding on to the chunks it wrote', async () => {
    const blobs = await openBlobs()
    const SIZE = 512 * MiB
    const input = chunks(SIZE)
    let maxArrayBuffers = 0
    const sampled = (async function * () {
      for await (const chunk of input.source) {
        maxArrayBuffers = Math.max(maxArrayBuffers, process.memoryUsage().arrayBuffers)
        yield chunk
      }
    })()
    const staged = await blobs.stage(sampled, new AbortController().signal)
    expect(staged).toMatchObject({ size: SIZE, sha256: input.digest() })
    // Garbage not yet collected included, far below the payload (a chunk kept per read would be all of it).
    expect(maxArrayBuffers).toBeLessThan(SIZE / 2)
  })

  it('ends a staging whose source stalls as soon as the signal aborts, with its reason, and leaves no temp file', async () => {
    const blobs = await openBlobs()
    const stalled = (async function * () {
      yield new Uint8Array(1000)
      await new Promise(() => {})
    })()
    const controller = new AbortController()
    const staging = blobs.stage(stalled, controller.signal)
    await new Promise((resolve) => setTimeout(resolve, 50))
    const reason = new Error('the node is stopping')
    controller.abort(reason)
    await expect(staging).rejects.toBe(reason)
    expect(await readdir(join(blobs.dir, 'tmp'))).toEqual([])
  })

  it('reads a stored blob in chunks of the asked size, verified; a changed file fails after its last chunk', async () => {
    const blobs = await openBlobs()
    const bytes = randomBytes(3 * MiB + 123)
    const staged = await blobs.stage((async function * () { yield bytes })())
    await blobs.commit(staged)
    const read: Uint8Array[] = []
    for await (const chunk of blobs.readVerified(staged.sha256, MiB)) read.push(chunk)
    expect(read.map((c) => c.byteLength)).toEqual([MiB, MiB, MiB, 123])
    expect(Buffer.concat(read).equals(bytes)).toBe(true)

    bytes[5] = bytes[5]! ^ 0xff
    await writeFile(blobs.pathOf(staged.sha256), bytes)
    const reading = (async () => { for await (const _ of blobs.readVerified(staged.sha256, MiB)) { /* drain */ } })()
    await expect(reading).rejects.toMatchObject({ code: 'BEELDNET_ERR_STORE_FILE_CORRUPT' })
    const missing = (async () => { for await (const _ of blobs.readVerified('0'.repeat(64))) { /* drain */ } })()
    await expect(missing).rejects.toMatchObject({ code: 'BEELDNET_ERR_STORE_FILE_MISSING' })
  })

  it('reads into buffers a caller gives back: each chunk right while it is held, the one read ahead given back at the end', async () => {
    const blobs = await openBlobs()
    const bytes = randomBytes(5 * MiB + 77)
    const staged = await blobs.stage((async function * () { yield bytes })())
    await blobs.commit(staged)
    const free: Buffer[] = []
    let allocated = 0
    const buffers: ReadBuffers = {
      acquire: (size) => free.pop() ?? (allocated++, Buffer.allocUnsafeSlow(size)),
      release: (chunk) => { free.push(Buffer.from(chunk.buffer, 0, chunk.buffer.byteLength)) }
    }
    // The consumer keeps a copy and gives each chunk back at once: the next reads reuse it.
    const copies: Buffer[] = []
    for await (const chunk of blobs.readVerified(staged.sha256, MiB, buffers)) {
      copies.push(Buffer.from(chunk))
      buffers.release(chunk)
    }
    expect(Buffer.concat(copies).equals(bytes)).toBe(true)
    expect(allocated).toBe(2)
    expect(free).toHaveLength(2)

    // A consumer that stops early: the chunk read ahead comes back too, the one it holds is its own.
    let held: Uint8Array | undefined
    for await (const chunk of blobs.readVerified(staged.sha256, MiB, buffers)) { held = chunk; break }
    expect(held?.byteLength).toBe(MiB)
    expect(free).toHaveLength(1)
  })
})
