// yazl 3's API as we use it. @types/yazl types end()'s callback without its argument (the total
// size, the reason we use it), so the part we use is declared here, from yazl's README.
declare module 'yazl' {
  import type { EventEmitter } from 'node:events'
  import type { Readable } from 'node:stream'

  export interface EntryOptions {
    mtime?: Date
    mode?: number
    compress?: boolean
    compressionLevel?: number
    forceZip64Format?: boolean
    forceDosTimestamp?: boolean
    fileComment?: string
  }

  export class ZipFile extends EventEmitter {
    readonly outputStream: Readable
    addBuffer (buffer: Buffer, metadataPath: string, options?: EntryOptions): void
    addReadStreamLazy (metadataPath: string, options: EntryOptions & { size?: number }, getReadStream: (cb: (err: Error | null, stream?: Readable) => void) => void): void
    /** `calculatedTotalSize`: the ZIP's size in bytes, or -1 when it cannot be known in advance (compressed entries, unknown sizes) */
    end (options?: { forceZip64Format?: boolean, comment?: string }, calculatedTotalSizeCallback?: (calculatedTotalSize: number) => void): void
  }
}
