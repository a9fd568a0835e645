import { createRequire } from 'node:module'

/*
 * The drawing libraries of render-frame.ts: dcmjs-imaging (decodes and draws a frame to RGBA) and
 * sharp (scales and encodes it). Both load on the first render, not with the node: together they
 * cost ~40 MB of memory.
 */

export type Imaging = typeof import('dcmjs-imaging')
export type Sharp = typeof import('sharp').default

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
