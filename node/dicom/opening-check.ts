import { checkOpening, OPENING_BYTES } from './dataset-reader.ts'

/**
 * A file's bytes as they arrive, refused as soon as its first bytes show it is not DICOM (by the rule
 * a local import applies where the file lies, checkOpening): a video on a patient's USB stick is
 * turned away after a few bytes, never written to staging in full. Nothing past the opening is read
 * from `source` once it is refused; the chunks go on unchanged otherwise.
 */
export async function * checkedAsItArrives (source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const opening: Uint8Array[] = []
  let openingBytes = 0
  let checked = false
  for await (const chunk of source) {
    if (checked) {
      yield chunk
      continue
    }
    opening.push(chunk)
    openingBytes += chunk.byteLength
    if (openingBytes < OPENING_BYTES) continue
    checkOpening(opening.length === 1 ? chunk : Buffer.concat(opening))
    checked = true
    yield * opening.splice(0)
  }
  if (!checked) {
    checkOpening(Buffer.concat(opening))
    yield * opening
  }
}
