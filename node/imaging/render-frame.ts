import { TransferSyntax } from '../dicom/tags.ts'
import { ThumbnailDecodeError } from './errors.ts'
import { ensureNativeDecoders, load } from './render.ts'

/*
 * One frame (a single-frame Part 10 made by single-frame.ts) to JPEG or PNG, as DICOMweb's rendered
 * resources ask (PS3.18 8.3.5): dcmjs-imaging applies the modality LUT, the VOI window the caller
 * gives (else the instance's first, else the frame's range) with its function, and the photometric
 * interpretation; sharp cuts the source region, scales it into the viewport and encodes it.
 */

export type VoiFunction = 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID'

export interface VoiWindow {
  center: number
  width: number
  function: VoiFunction
}

export interface Viewport {
  /** the rendered image fits inside width x height, its aspect ratio kept */
  width: number
  height: number
  /** the source region, in pixels of the frame (checked by the caller to lie inside it); a negative width or height flips the image on that axis */
  region?: { x: number, y: number, width: number, height: number }
}

export interface RenderFrameOptions {
  format: 'jpeg' | 'png'
  window?: VoiWindow
  /** without one, the frame keeps its size */
  viewport?: Viewport
  /** only the longest side: a thumbnail's default size, never enlarged */
  maxSide?: number
  /** JPEG quality 1..100 */
  quality?: number
}

export interface RenderedImage {
  bytes: Buffer
  /** the frame's own size, before any viewport */
  columns: number
  rows: number
}

const NATIVE_SYNTAXES: ReadonlySet<string> = new Set(Object.values(TransferSyntax))

export async function renderFrame (part10: ArrayBuffer, target: { sopInstanceUID: string, transferSyntaxUID: string }, options: RenderFrameOptions): Promise<RenderedImage> {
  const { imaging, sharp } = await load()
  let rendered: { width: number, height: number, pixels: ArrayBuffer }
  let grayscale: boolean
  try {
    if (!NATIVE_SYNTAXES.has(target.transferSyntaxUID)) await ensureNativeDecoders(imaging)
    const image = new imaging.DicomImage(part10)
    grayscale = image.getElement('PhotometricInterpretation')?.startsWith('MONOCHROME') === true
    let windowLevel = imaging.WindowLevel.fromDicomImageElements(image.getElements())[0]
    if (options.window !== undefined) {
      // dcmjs-imaging 0.2.5 draws LINEAR_EXACT as (x - c) / w * 255, without PS3.3 C.11.2.1.3.2's
      // + 0.5: a centre moved down by half the width gives the standard's ((x - c) / w + 0.5) * 255.
      const { center, width } = options.window
      windowLevel = new imaging.WindowLevel(width, options.window.function === 'LINEAR_EXACT' ? center - width / 2 : center)
      image.setElement('VOILUTFunction', options.window.function)
    }
    rendered = image.render({ frame: 0, ...(windowLevel === undefined ? {} : { windowLevel }) })
  } catch (err) {
    throw new ThumbnailDecodeError(target.sopInstanceUID, target.transferSyntaxUID, err)
  }
  const { width, height, pixels } = rendered
  let pipeline = sharp(Buffer.from(pixels), { raw: { width, height, channels: 4 } })
  const region = options.viewport?.region
  let flip = false
  let flop = false
  if (region !== undefined) {
    const left = region.width < 0 ? region.x + region.width : region.x
    const top = region.height < 0 ? region.y + region.height : region.y
    const w = Math.abs(region.width)
    const h = Math.abs(region.height)
    pipeline = pipeline.extract({ left, top, width: w, height: h })
    flop = region.width < 0
    flip = region.height < 0
  }
  if (options.viewport !== undefined) {
    pipeline = pipeline.resize(options.viewport.width, options.viewport.height, { fit: 'inside' })
  } else if (options.maxSide !== undefined) {
    pipeline = pipeline.resize(options.maxSide, options.maxSide, { fit: 'inside', withoutEnlargement: true })
  }
  if (flip) pipeline = pipeline.flip()
  if (flop) pipeline = pipeline.flop()
  // RGBA with an opaque alpha: a grey image is encoded as one channel, a colour one as three.
  pipeline = grayscale ? pipeline.toColourspace('b-w') : pipeline.removeAlpha()
  const bytes = options.format === 'png'
    ? await pipeline.png().toBuffer()
    : await pipeline.jpeg({ quality: options.quality ?? 90 }).toBuffer()
  return { bytes, columns: width, rows: height }
}
