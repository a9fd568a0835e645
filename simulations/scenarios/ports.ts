import { createServer, type Server } from 'node:net'
import { ScenarioOptionError } from './errors.ts'

/*
 * Consecutive free TCP ports on one host. The libp2p ports of a local network are fixed when its
 * nodes enrol (the directory lists them), so they are chosen once, here, and never as port 0.
 * A port free now may be taken later; that is as good as it gets without holding the sockets.
 */

export interface FreePortRangeInit {
  /** default '127.0.0.1' */
  host?: string
  /** lowest first port tried (default 20000) */
  from?: number
  /** highest last port (default 32000: below Linux's ephemeral range, 32768-60999, where port-0 listeners and outgoing connections would take ports between our check and the node's listen) */
  to?: number
  /** random bases tried before giving up (default 50) */
  attempts?: number
}

export async function findFreePortRange (count: number, init: FreePortRangeInit = {}): Promise<number> {
  const host = init.host ?? '127.0.0.1'
  const from = init.from ?? 20_000
  const to = init.to ?? 32_000
  if (count < 1 || from + count > to) throw new ScenarioOptionError(`no room for ${count} consecutive ports in ${from}-${to}`)
  for (let attempt = 0; attempt < (init.attempts ?? 50); attempt++) {
    const base = from + Math.floor(Math.random() * (to - from - count))
    if (await allFree(host, base, count)) return base
  }
  throw new ScenarioOptionError(`found no ${count} consecutive free ports on ${host}`)
}

async function allFree (host: string, base: number, count: number): Promise<boolean> {
  const held: Server[] = []
  try {
    for (let port = base; port < base + count; port++) held.push(await listen(host, port))
    return true
  } catch {
    return false
  } finally {
    await Promise.all(held.map((s) => new Promise((resolve) => s.close(resolve))))
  }
}

function listen (host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen({ host, port, exclusive: true }, () => { resolve(server) })
  })
}
