import type { Directory } from '../../protocol/registry/documents.ts'
import type { DirectoryService, DirectoryUpdate } from '../../node/directory/directory-service.ts'
import { NetworkNotReadyError } from './errors.ts'

/** An institution and the node key the directory must list as active. */
export interface ExpectedMember { ura: string, peerId: string }

/** True when every expected institution is active with its node key active. */
export function listsAllActive (directory: Directory, expected: ExpectedMember[]): boolean {
  return expected.every(({ ura, peerId }) => {
    const institution = directory.institutions.find((i) => i.ura === ura)
    return institution?.status.state === 'active' && institution.nodes.some((n) => n.peerId === peerId && n.status === 'active')
  })
}

export interface WaitForDirectoryInit {
  /** named in the error when time runs out */
  name: string
  /** default 30 s */
  timeoutMs?: number
  signal?: AbortSignal
}

/** Resolves with the held directory once `accept` holds for it (now, or after a later update). */
export function waitForDirectory (service: DirectoryService, accept: (d: Directory) => boolean, init: WaitForDirectoryInit): Promise<Directory> {
  if (init.signal?.aborted === true) return Promise.reject(init.signal.reason)
  const held = service.directory
  if (held !== undefined && accept(held)) return Promise.resolve(held)
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer)
      service.off('update', onUpdate)
      init.signal?.removeEventListener('abort', onAbort)
    }
    const onUpdate = (u: DirectoryUpdate): void => {
      if (!accept(u.current)) return
      done()
      resolve(u.current)
    }
    const onAbort = (): void => { done(); reject(init.signal!.reason) }
    const timer = setTimeout(() => {
      done()
      const s = service.status()
      reject(new NetworkNotReadyError(`${init.name} does not hold the expected directory after ${(init.timeoutMs ?? 30_000) / 1000} s: ` +
        `it holds v${s.directoryVersion ?? '-'} with ${s.institutions} institution(s); last error ${s.lastError?.code ?? 'none'} ${s.lastError?.message ?? ''}`.trim()))
    }, init.timeoutMs ?? 30_000)
    service.on('update', onUpdate)
    init.signal?.addEventListener('abort', onAbort, { once: true })
  })
}
