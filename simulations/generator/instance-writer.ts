// Writes one instance file as a stream: preamble + File Meta (optional), dataset header, then the pixel data
// element and its frames one at a time through a write stream, waiting for 'drain' (backpressure). Memory
// stays flat whatever the file size: no frame is kept after it is written.
import { createWriteStream } from 'node:fs'
import { open, stat, unlink } from 'node:fs/promises'
import { once } from 'node:events'
import { finished } from 'node:stream/promises'
import { encodeDataset, encodeElementHeader, encodeFilePreamble, encodeItemHeader, type FileMeta, type Item } from
  './dataset-writer.ts'
import type { Charset } from './charsets.ts'
import type { TransferSyntax } from './transfer-syntaxes.ts'
import { InvalidSpecError } from './errors.ts'

const PIXEL_DATA = 0x7FE00010

export interface PixelSource {
  frames: number
  /** Native: bytes per frame (all frames equal). Ignored when encapsulated. */
  frameLength: number
  /** 'OW' for 16-bit native, 'OB' for 8-bit native and encapsulated. */
  vr: 'OB' | 'OW'
  /**
   * Bytes of frame i: native pixel bytes in the transfer syntax's byte order, or one encapsulated fragment.
   * May reuse one buffer: the writer has finished with frame i before it asks for frame i + 1.
   */
  frame (index: number): Uint8Array
}

export interface InstanceFile {
  path: string
  /** File Meta for a Part 10 file; undefined writes a bare dataset (no preamble, DICM or group 0002). */
  meta?: FileMeta
  dataset: Item
  transferSyntax: TransferSyntax
  charset: Charset
  pixels?: PixelSource
}

/** Writes the file and returns its size in bytes. On failure or abort the partial file is removed. */
export async function writeInstanceFile (file: InstanceFile, signal?: AbortSignal): Promise<number> {
  signal?.throwIfAborted()
  const { syntax, encapsulated } = file.transferSyntax
  const head = encodeDataset(file.dataset, syntax, { charset: file.charset })
  const preamble = file.meta === undefined ? new Uint8Array(0) : encodeFilePreamble(file.meta)
  const ws = createWriteStream(file.path, { highWaterMark: 1 << 20 })
  const write = async (chunk: Uint8Array): Promise<void> => {
    if (!ws.write(chunk)) await once(ws, 'drain', { signal })
  }
  // For frames: wait until the stream has written the chunk, so the caller may refill the same buffer.
  // Frames are large, so one write per frame costs nothing, and nothing queues up: memory stays flat.
  const writeFrame = async (chunk: Uint8Array): Promise<void> => {
    await new Promise<void>((resolve, reject) => ws.write(chunk, (err) => err ? reject(err) : resolve()))
  }
  // Abort destroys the stream, which fails the pending write or drain wait.
  const onAbort = (): void => { ws.destroy(signal?.reason as Error) }
  signal?.addEventListener('abort', onAbort, { once: true })
  // Where the Basic Offset Table's values start, when they must be patched in after the frames are written.
  let botAt = -1
  const offsets: number[] = []
  try {
    await write(preamble)
    await write(head)
    const px = file.pixels
    if (px !== undefined && !encapsulated) {
      const total = px.frames * px.frameLength
      const pad = total % 2
      if (total + pad > 0xFFFFFFFE) throw new InvalidSpecError(`pixel data of ${total} bytes exceeds 4 GiB`)
      await write(encodeElementHeader(PIXEL_DATA, px.vr, total + pad, syntax))
      for (let i = 0; i < px.frames; i++) {
        signal?.throwIfAborted()
        const bytes = px.frame(i)
        if (bytes.length !== px.frameLength) throw new RangeError(`frame ${i} has ${bytes.length} bytes`)
        await writeFrame(bytes)
      }
      if (pad === 1) await write(new Uint8Array(1))
    } else if (px !== undefined) {
      await write(encodeElementHeader(PIXEL_DATA, 'OB', 0xFFFFFFFF, syntax))
      // Basic Offset Table: one offset per frame (one fragment per frame), filled in afterwards for
      // multi-frame since fragment sizes are known only once encoded.
      await write(encodeItemHeader(0xFFFEE000, 4 * px.frames))
      botAt = preamble.length + head.length + 12 + 8
      const bot = new Uint8Array(4 * px.frames) // single frame: the one offset is 0 and needs no patch
      await write(bot)
      let offset = 0
      for (let i = 0; i < px.frames; i++) {
        signal?.throwIfAborted()
        const fragment = px.frame(i)
        if (fragment.length % 2 !== 0) throw new RangeError(`fragment ${i} has odd length`)
        offsets.push(offset)
        await write(encodeItemHeader(0xFFFEE000, fragment.length))
        await writeFrame(fragment)
        offset += 8 + fragment.length
      }
      await write(encodeItemHeader(0xFFFEE0DD, 0))
    }
    ws.end()
    await finished(ws)
    if (botAt >= 0 && offsets.length > 1) {
      const table = new Uint8Array(4 * offsets.length)
      const dv = new DataView(table.buffer)
      offsets.forEach((o, i) => dv.setUint32(4 * i, o, true))
      const fh = await open(file.path, 'r+')
      try { await fh.write(table, 0, table.length, botAt) } finally { await fh.close() }
    }
  } catch (err) {
    ws.destroy()
    await finished(ws).catch(() => {})
    await unlink(file.path).catch(() => {})
    throw signal?.aborted === true ? signal.reason : err
  } finally {
    signal?.removeEventListener('abort', onAbort)
  }
  return (await stat(file.path)).size
}
