import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { afterEach, describe, expect, it } from 'vitest'
import { DelayForwarder } from '../../simulations/bench/wan-delay.ts'
import { until } from '../helpers/patience.ts'

/*
 * bench:wan's delay forwarder (the kernel has no netem): every byte passes, in order, both ways;
 * it is held at least the delay each way; and it is a delay line with a bounded memory: it reads
 * on while chunks wait, up to its bound, and then the sender is held back.
 */

const MiB = 1024 * 1024
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

async function server (handler: (socket: Socket) => void): Promise<number> {
  const accepted = new Set<Socket>()
  const s: Server = createServer({ allowHalfOpen: true }, (socket) => { accepted.add(socket); handler(socket) })
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  cleanups.push(() => { s.close(); for (const socket of accepted) socket.destroy() })
  return (s.address() as { port: number }).port
}

async function forwarder (delayMs: number, maxQueuedBytes: number, targetPort: number): Promise<{ fwd: DelayForwarder, port: number }> {
  const fwd = new DelayForwarder({ delayMs, maxQueuedBytes })
  cleanups.push(async () => { await fwd.close() })
  const port = await fwd.add({ listenHost: '127.0.0.1', listenPort: 0, targetHost: '127.0.0.1', targetPort })
  return { fwd, port }
}

async function dial (port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port, noDelay: true, allowHalfOpen: true })
  cleanups.push(() => { socket.destroy() })
  await once(socket, 'connect')
  return socket
}

describe('the delay forwarder', () => {
  it('passes every byte in order both ways, and a half-close after them', async () => {
    const echo = await server((s) => { s.on('error', () => {}); s.pipe(s) })
    const { fwd, port } = await forwarder(5, 1 * MiB, echo)
    const client = await dial(port)
    const sent = randomBytes(8 * MiB)
    const chunks: Buffer[] = []
    client.on('data', (d: Buffer) => chunks.push(d))
    const ended = once(client, 'end')
    client.end(sent)
    await ended
    expect(Buffer.concat(chunks).length).toBe(sent.length)
    expect(Buffer.concat(chunks).equals(sent)).toBe(true)
    expect(fwd.stats()).toMatchObject({ forwardBytes: sent.length, backwardBytes: sent.length, connections: 1 })
  })

  it('holds each byte at least the delay each way', async () => {
    const echo = await server((s) => { s.setNoDelay(true); s.pipe(s) })
    const delayMs = 100
    const { port } = await forwarder(delayMs, 1 * MiB, echo)
    const client = await dial(port)
    for (let i = 0; i < 3; i++) {
      const started = performance.now()
      client.write(Buffer.of(i))
      await once(client, 'data')
      // A lower bound the forwarder guarantees (a chunk leaves at most half a millisecond early),
      // not a budget: a busy machine only makes it longer.
      expect(performance.now() - started).toBeGreaterThanOrEqual(2 * (delayMs - 0.5))
    }
  })

  it('reads on while chunks wait, up to its bound, and then holds the sender back', async () => {
    let received = 0
    const sink = await server((s) => { s.on('data', (d: Buffer) => { received += d.length }) })
    const bound = 1 * MiB
    // A delay longer than the test: nothing is passed on while it runs.
    const { fwd, port } = await forwarder(600_000, bound, sink)
    const client = await dial(port)
    const block = Buffer.alloc(MiB)
    for (let i = 0; i < 64; i++) client.write(block)
    // Reads went on past the first chunk while none was passed on (a delay line, not stop-and-wait) ...
    await until(() => fwd.stats().peakQueuedBytes >= bound, 'the forwarder to hold its bound')
    // ... and then stopped: the socket buffers between fill and the rest waits in the sender.
    await until(() => client.writableLength > 32 * MiB, 'the sender to be held back')
    const { peakQueuedBytes, forwardBytes } = fwd.stats()
    // One read past the bound at most (a socket read is at most 64 KiB).
    expect(peakQueuedBytes).toBeLessThanOrEqual(bound + 64 * 1024)
    expect(forwardBytes).toBe(0)
    expect(received).toBe(0)
  })
})
