import { readHeader } from '../dicom/dataset-reader.ts'
import { StoredFileMissingError } from '../errors.ts'
import type { InstanceRecord } from '../store/records.ts'
import { openFrames } from '../transcode/frame-reader.ts'
import { NoPixelDataError } from './errors.ts'
import { renderFrame, type RenderedImage, type RenderFrameOptions } from './render-frame.ts'
import { singleFramePart10 } from './single-frame.ts'

/*
 * The one way a stored instance's frame is drawn, for DICOMweb's /rendered and /thumbnail and the
 * web app's series thumbnails alike: the frame is read alone (node/transcode/frame-reader.ts), put
 * in a small single-frame Part 10 and drawn by dcmjs-imaging, so a deflated or a 1 GB multi-frame
 * instance costs one frame's memory.
 */

export type DrawnInstance = Pick<InstanceRecord, 'sha256' | 'sopInstanceUID' | 'sopClassUID' | 'transferSyntaxUID'>

/** Frame `frame` (from 1, checked by the caller) of the stored file at `path`, rendered as asked. */
export async function renderStoredFrame (path: string, instance: DrawnInstance, frame: number, options: RenderFrameOptions): Promise<RenderedImage> {
  let parsed
  try {
    parsed = readHeader(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new StoredFileMissingError(instance.sha256)
    throw err
  }
  if (parsed.pixelDataOffset === undefined) throw new NoPixelDataError(instance.sopInstanceUID, instance.sopClassUID)
  const source = await openFrames(path, { header: parsed })
  let bytes: Buffer
  try {
    bytes = await source.frame(frame)
  } finally {
    await source.close()
  }
  const part10 = await singleFramePart10(path, parsed, { encapsulated: source.encapsulated, bytes }, instance, frame)
  return renderFrame(part10, instance, options)
}
