import type { Socket } from 'node:net'

/*
 * Notices an association whose caller has gone quiet: nothing received for `idleMs` while the node
 * owes the caller nothing. While the node works on a request (a C-MOVE's caller rightly waits in
 * silence) or has paused the socket itself (the disk is behind), the silence is ours, not the caller's.
 */

export interface IdleWatchInit {
  /** how long the caller may send nothing */
  idleMs: number
  /** true while the node works on one of the caller's requests */
  busy: () => boolean
  /** called once, when the caller has been quiet for idleMs */
  onIdle: () => void
}

export interface IdleWatch {
  /** the node just finished work for the caller: its silence counts from now */
  touch (): void
}

export function watchIdle (socket: Socket, init: IdleWatchInit): IdleWatch {
  let last = Date.now()
  let timer: NodeJS.Timeout | undefined
  const check = (): void => {
    if (init.busy() || socket.isPaused()) last = Date.now()
    const left = last + init.idleMs - Date.now()
    if (left > 0) {
      timer = setTimeout(check, left)
      return
    }
    timer = undefined
    init.onIdle()
  }
  socket.on('data', () => { last = Date.now() })
  socket.once('close', () => { clearTimeout(timer) })
  timer = setTimeout(check, init.idleMs)
  return { touch () { last = Date.now() } }
}
