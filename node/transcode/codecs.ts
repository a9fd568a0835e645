import { createRequire } from 'node:module'
import type { FrameSource, PixelLayout } from './frame-reader.ts'
import { TranscodeFailedError, TranscodeUnsupportedError } from './errors.ts'

/*
 * One compressed frame to native pixels with dcmjs-codecs' WebAssembly decoders (libjpeg for JPEG
 * baseline, extended and lossless, CharLS for JPEG-LS, OpenJPEG / OpenJPH for JPEG 2000 and HTJ2K,
 * and an RLE decoder). The module (4 MB of WebAssembly) loads on the first instance that needs it,
 * once; a failed load is tried again next time. Decoding is synchronous: one frame at a time.
 * Colour is given back as the decoders make it: JPEG's YCbCr becomes RGB, as do JPEG 2000's
 * ICT/RCT; `photometricInterpretation` and `planarConfiguration` say what the pixels are.
 */

type Codecs = typeof import('dcmjs-codecs')
type Decoder = 'decodeJpeg' | 'decodeJpegLs' | 'decodeJpeg2000' | 'decodeHtJpeg2000' | 'decodeRle'

/** The compressed transfer syntaxes (PS3.5 A.4) a frame of which can be decoded here. */
const DECODERS: ReadonlyMap<string, Decoder> = new Map([
  ['1.2.840.10008.1.2.4.50', 'decodeJpeg'], // JPEG Baseline (Process 1)
  ['1.2.840.10008.1.2.4.51', 'decodeJpeg'], // JPEG Extended (Process 2 & 4)
  ['1.2.840.10008.1.2.4.57', 'decodeJpeg'], // JPEG Lossless, Non-Hierarchical (Process 14)
  ['1.2.840.10008.1.2.4.70', 'decodeJpeg'], // JPEG Lossless, First-Order Prediction (Process 14, SV1)
  ['1.2.840.10008.1.2.4.80', 'decodeJpegLs'], // JPEG-LS Lossless
  ['1.2.840.10008.1.2.4.81', 'decodeJpegLs'], // JPEG-LS Near-Lossless
  ['1.2.840.10008.1.2.4.90', 'decodeJpeg2000'], // JPEG 2000 (Lossless Only)
  ['1.2.840.10008.1.2.4.91', 'decodeJpeg2000'], // JPEG 2000
  ['1.2.840.10008.1.2.4.201', 'decodeHtJpeg2000'], // HTJ2K (Lossless Only)
  ['1.2.840.10008.1.2.4.202', 'decodeHtJpeg2000'], // HTJ2K (Lossless RPCL)
  ['1.2.840.10008.1.2.4.203', 'decodeHtJpeg2000'], // HTJ2K
  ['1.2.840.10008.1.2.5', 'decodeRle'] // RLE Lossless
])

/** Lossy compressed syntaxes: what is decoded from them keeps Lossy Image Compression "01". */
export const LOSSY_SYNTAXES: ReadonlySet<string> = new Set([
  '1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51', '1.2.840.10008.1.2.4.81', '1.2.840.10008.1.2.4.91', '1.2.840.10008.1.2.4.203'
])

export function canDecode (transferSyntaxUID: string): boolean {
  return DECODERS.has(transferSyntaxUID)
}

let codecs: Codecs | undefined
let loading: Promise<Codecs> | undefined

/** Loads the WebAssembly decoders once; later calls return at once. */
export async function loadDecoders (): Promise<void> {
  if (codecs !== undefined) return
  loading ??= (async () => {
    const module = createRequire(import.meta.url)('dcmjs-codecs') as Codecs
    module.log.setLevel('silent')
    await module.NativeCodecs.initializeAsync()
    codecs = module
    return module
  })().catch((err: unknown) => {
    loading = undefined
    throw err
  })
  await loading
}

export interface DecodedFrame {
  /** native pixels, rows * columns * samples * bytes per sample */
  pixels: Buffer
  photometricInterpretation: string
  planarConfiguration: number
}

const J2K_COLOUR_TO_RGB = new Set(['YBR_ICT', 'YBR_RCT', 'YBR_FULL', 'YBR_FULL_422', 'YBR_PARTIAL_422'])

/** Decodes frame `n` of `source` (native frames come back as they are): read asynchronously, decoded synchronously. Call loadDecoders() first. */
export async function decodeFrame (source: FrameSource, n: number): Promise<DecodedFrame> {
  const { layout } = source
  if (!source.encapsulated) {
    return { pixels: await source.frame(n), photometricInterpretation: layout.photometricInterpretation, planarConfiguration: layout.planarConfiguration }
  }
  const decoder = DECODERS.get(source.transferSyntaxUID)
  if (decoder === undefined) throw new TranscodeUnsupportedError(source.sopInstanceUID, source.transferSyntaxUID, 'no decoder for this transfer syntax')
  if (codecs === undefined) throw new Error('decodeFrame before loadDecoders()')
  const bitstream = await source.frame(n)
  try {
    return decodeBitstream(codecs, decoder, source.transferSyntaxUID, layout, bitstream, source.nativeFrameBytes)
  } catch (err) {
    throw new TranscodeFailedError(source.sopInstanceUID, n, err)
  }
}

function decodeBitstream (module: Codecs, decoder: Decoder, syntax: string, layout: PixelLayout, bitstream: Buffer, expected: number): DecodedFrame {
  const context = new module.Context({
    width: layout.columns,
    height: layout.rows,
    bitsAllocated: layout.bitsAllocated,
    bitsStored: layout.bitsStored,
    samplesPerPixel: layout.samplesPerPixel,
    pixelRepresentation: layout.pixelRepresentation,
    planarConfiguration: layout.planarConfiguration,
    photometricInterpretation: layout.photometricInterpretation,
    encodedBuffer: new Uint8Array(bitstream.buffer, bitstream.byteOffset, bitstream.byteLength)
  })
  // As dcmjs-codecs' own JPEG codecs do: baseline is always YCbCr to RGB, the others unless already RGB.
  const parameters = decoder === 'decodeJpeg'
    ? { convertColorspaceToRgb: syntax === '1.2.840.10008.1.2.4.50' || layout.photometricInterpretation !== 'RGB' }
    : {}
  const decoded = module.NativeCodecs[decoder](context, parameters)
  const out = decoded.getDecodedBuffer()
  // Exactly a frame (an odd one padded by one byte): anything else is pixels in another layout than the header says.
  if (out === undefined || out.length < expected || out.length > expected + 1) throw new Error(`the decoder gave ${out?.length ?? 0} bytes for a frame of ${expected}`)
  let photometricInterpretation = decoded.getPhotometricInterpretation() ?? layout.photometricInterpretation
  if (layout.samplesPerPixel === 1) photometricInterpretation = layout.photometricInterpretation
  else if ((decoder === 'decodeJpeg2000' || decoder === 'decodeHtJpeg2000') && J2K_COLOUR_TO_RGB.has(photometricInterpretation)) photometricInterpretation = 'RGB'
  return {
    pixels: Buffer.from(out.buffer, out.byteOffset, expected),
    photometricInterpretation,
    planarConfiguration: layout.samplesPerPixel > 1 ? decoded.getPlanarConfiguration() ?? layout.planarConfiguration : 0
  }
}
