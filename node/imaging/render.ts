import { createRequire } from 'node:module'
import { TransferSyntax } from '../dicom/tags.ts'
import { ThumbnailDecodeError } from './errors.ts'

/*
 * One DICOM instance (Part 10 bytes, read whole) to a small PNG: dcmjs-imaging decodes and draws
 * the first frame to RGBA through the modality and VOI LUTs, sharp scales it down and encodes it.
 * Both load on the first thumbnail, not with the node: together they cost ~40 MB of memory.
 */

export type Imaging = typeof import('dcmjs-imaging')
export type Sharp = typeof import('sharp').default

const NATIVE_SYNTAXES: ReadonlySet<string> = new Set(Object.values(TransferSyntax))

let libraries: Promise<{ imaging: Imaging, sharp: Sharp }> | undefined
let nativeDecoders: Promise<void> | undefined

export async function load (): Promise<{ imaging: Imaging, sharp: Sharp }> {
  libraries ??= (async () => {
    const [imaging, sharp] = await Promise.all([import('dcmjs-imaging'), import('sharp')])
    // dcmjs (the copy dcmjs-imaging uses) prints "Invalid vr type ox" to the console for every
    // implicit VR pixel data element it reads: expected there, and not the node's log format.
    const dcmjs = createRequire(createRequire(import.meta.url).resolve('dcmjs-imaging'))('dcmjs') as { log?: { getLogger: (name: string) => { setLevel: (level: string) => void } } }
    dcmjs.log?.getLogger('validation.dcmjs').setLevel('silent')
    return { imaging: imaging.default, sharp: sharp.default }
  })()
  return libraries
}

/** The WebAssembly codecs (4 MB) load on the first compressed instance, once; a failed load is tried again next time. */
export async function ensureNativeDecoders (imaging: Imaging): Promise<void> {
  if (imaging.NativePixelDecoder.isInitialized()) return
  nativeDecoders ??= imaging.NativePixelDecoder.initializeAsync().catch((err: unknown) => {
    nativeDecoders = undefined
    throw err
  })
  await nativeDecoders
}

export interface RenderInit {
  /** the longest side of the PNG; smaller images are not enlarged */
  maxSide: number
}

export interface RenderTarget {
  sopInstanceUID: string
  transferSyntaxUID: string
}

/** Renders frame 1 of a Part 10 file to a PNG no larger than maxSide x maxSide, aspect ratio kept. */
export async function renderThumbnail (part10: ArrayBuffer, target: RenderTarget, init: RenderInit): Promise<Buffer> {
  const { imaging, sharp } = await load()
  let rendered: { width: number, height: number, pixels: ArrayBuffer }
  let grayscale: boolean
  try {
    // dcmjs inflates a deflated dataset whole in memory, however far it expands: it is never asked to.
    if (target.transferSyntaxUID === TransferSyntax.DeflatedExplicitVRLittleEndian) throw new Error('a deflated dataset is not inflated whole to draw it')
    if (!NATIVE_SYNTAXES.has(target.transferSyntaxUID)) await ensureNativeDecoders(imaging)
    const image = new imaging.DicomImage(part10)
    grayscale = image.getElement('PhotometricInterpretation')?.startsWith('MONOCHROME') === true
    // The dataset's first valid window (center/width), else none and dcmjs-imaging takes the
    // frame's min/max; MONOCHROME1 is inverted and colour drawn as is by the library.
    const windowLevel = imaging.WindowLevel.fromDicomImageElements(image.getElements())[0]
    rendered = image.render({ frame: 0, ...(windowLevel === undefined ? {} : { windowLevel }) })
  } catch (err) {
    throw new ThumbnailDecodeError(target.sopInstanceUID, target.transferSyntaxUID, err)
  }
  const { width, height, pixels } = rendered
  const scaled = sharp(Buffer.from(pixels), { raw: { width, height, channels: 4 } })
    .resize(init.maxSide, init.maxSide, { fit: 'inside', withoutEnlargement: true })
  // RGBA with an opaque alpha: a grey image is stored as one channel, a colour one as three.
  return (grayscale ? scaled.toColourspace('b-w') : scaled.removeAlpha()).png().toBuffer()
}
