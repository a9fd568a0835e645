import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'

/*
 * The user-space delay of bench:wan (the kernel here has no netem): a TCP forwarder whose every
 * byte waits a fixed time in each direction. It is a delay line, not stop-and-wait: a chunk read at
 * time t is written at t + delay while reads go on, so a link with delay d and rate r holds about
 * r x d bytes in flight, as a real line does. Its memory is bounded: once a direction holds
 * `maxQueuedBytes` it stops reading (the sender's socket fills and the sender waits), and reads
 * again when the line has drained below it. A write the next socket does not take at once (its
 * kernel buffer is full: the shaped line downstream is busy) holds back the following chunks too.
 * A half-close travels the line like data: the FIN is passed on `delay` after it arrived.
 */

export interface DelayLineStats {
  /** bytes passed on */
  bytes: number
  /** bytes held now */
  queuedBytes: number
  /** the most bytes held at once */
  peakQueuedBytes: number
}

interface Held { due: number, chunk: Buffer | null }

/** How early a chunk may leave: half of the timers' millisecond. */
const EARLY_MS = 0.5

/** One direction of a forwarded connection: bytes read from `from` are written to `to` `delayMs` later. */
export class DelayLine implements DelayLineStats {
  bytes = 0
  queuedBytes = 0
  peakQueuedBytes = 0
  private readonly held: Held[] = []
  private head = 0
  private timer: NodeJS.Timeout | undefined
  private immediate: NodeJS.Immediate | undefined
  private blocked = false
  private readonly from: Socket
  private readonly to: Socket
  private readonly delayMs: () => number
  private readonly maxQueuedBytes: () => number

  constructor (from: Socket, to: Socket, options: { delayMs: () => number, maxQueuedBytes: () => number }) {
    this.from = from
    this.to = to
    this.delayMs = options.delayMs
    this.maxQueuedBytes = options.maxQueuedBytes
    from.on('data', (chunk: Buffer) => {
      this.hold(chunk)
      this.queuedBytes += chunk.length
      this.peakQueuedBytes = Math.max(this.peakQueuedBytes, this.queuedBytes)
      if (this.queuedBytes >= this.maxQueuedBytes()) from.pause()
    })
    from.on('end', () => { this.hold(null) })
    to.on('drain', () => { this.blocked = false; this.flush() })
  }

  private hold (chunk: Buffer | null): void {
    this.held.push({ due: performance.now() + this.delayMs(), chunk })
    this.schedule()
  }

  private schedule (): void {
    if (this.timer !== undefined || this.immediate !== undefined || this.blocked || this.head >= this.held.length) return
    // Timers fire on whole milliseconds of the loop's clock, most often one late (and setTimeout(0)
    // is 1 ms): ask for one early, and let flush() pass chunks due within EARLY_MS, so the delay
    // errs both ways, not late only. wan.ts calibrates what is left against a measured ping-pong.
    const remaining = this.held[this.head]!.due - performance.now()
    if (remaining <= EARLY_MS) this.immediate = setImmediate(() => { this.immediate = undefined; this.flush() })
    else this.timer = setTimeout(() => { this.timer = undefined; this.flush() }, Math.max(1, remaining - 1))
  }

  private flush (): void {
    const now = performance.now() + EARLY_MS
    while (!this.blocked && this.head < this.held.length && this.held[this.head]!.due <= now) {
      const { chunk } = this.held[this.head]!
      this.held[this.head++] = undefined as unknown as Held
      if (chunk === null) {
        this.to.end()
        continue
      }
      this.queuedBytes -= chunk.length
      this.bytes += chunk.length
      if (!this.to.write(chunk)) this.blocked = true
    }
    // Drop the passed part of the array now and then, not on every chunk.
    if (this.head > 1024 && this.head * 2 > this.held.length) {
      this.held.splice(0, this.head)
      this.head = 0
    }
    if (this.from.isPaused() && this.queuedBytes < this.maxQueuedBytes() && !this.from.destroyed) this.from.resume()
    this.schedule()
  }

  /** Forgets what it holds (the connection is gone). */
  stop (): void {
    clearTimeout(this.timer)
    clearImmediate(this.immediate)
    this.timer = undefined
    this.immediate = undefined
    this.held.length = 0
    this.head = 0
    this.queuedBytes = 0
  }
}

export interface Route { listenHost: string, listenPort: number, targetHost: string, targetPort: number }

export interface ForwarderStats {
  /** bytes passed on from the dialling side to the target (over all connections so far) */
  forwardBytes: number
  /** bytes passed back from the target to the dialling side */
  backwardBytes: number
  /** the most bytes one direction of one connection held at once */
  peakQueuedBytes: number
  connections: number
}

/**
 * Listens on each route's address and forwards every connection to its target through two delay
 * lines (one each way). Delay and bound are read per chunk, so `set` applies to the next chunk.
 */
export class DelayForwarder {
  private readonly servers: Server[] = []
  private readonly sockets = new Set<Socket>()
  private readonly lines = new Set<{ forward: DelayLine, backward: DelayLine }>()
  private readonly done = { forwardBytes: 0, backwardBytes: 0, peakQueuedBytes: 0, connections: 0 }
  private delayMs: number
  private maxQueuedBytes: number

  constructor (options: { delayMs: number, maxQueuedBytes: number }) {
    this.delayMs = options.delayMs
    this.maxQueuedBytes = options.maxQueuedBytes
  }

  set (options: { delayMs: number, maxQueuedBytes: number }): void {
    this.delayMs = options.delayMs
    this.maxQueuedBytes = options.maxQueuedBytes
  }

  /** Starts forwarding `route`; resolves with the port it listens on (listenPort 0: a free one). */
  async add (route: Route): Promise<number> {
    const server = createServer({ noDelay: true, pauseOnConnect: true, allowHalfOpen: true }, (client) => { this.accept(client, route) })
    server.listen(route.listenPort, route.listenHost)
    await once(server, 'listening')
    this.servers.push(server)
    return (server.address() as { port: number }).port
  }

  private accept (client: Socket, route: Route): void {
    const target = connect({ host: route.targetHost, port: route.targetPort, noDelay: true, allowHalfOpen: true })
    target.pause()
    this.sockets.add(client).add(target)
    const settings = { delayMs: () => this.delayMs, maxQueuedBytes: () => this.maxQueuedBytes }
    const pair = { forward: new DelayLine(client, target, settings), backward: new DelayLine(target, client, settings) }
    this.lines.add(pair)
    this.done.connections++
    // Reads start once the target is connected: what arrives before has nowhere to go yet.
    target.once('connect', () => { client.resume(); target.resume() })
    let closed = 0
    const close = (): void => {
      if (++closed < 2) return
      this.lines.delete(pair)
      this.done.forwardBytes += pair.forward.bytes
      this.done.backwardBytes += pair.backward.bytes
      this.done.peakQueuedBytes = Math.max(this.done.peakQueuedBytes, pair.forward.peakQueuedBytes, pair.backward.peakQueuedBytes)
      pair.forward.stop()
      pair.backward.stop()
    }
    // A reset or error on one side ends the other at once (a reset is not delayed: it has no bytes).
    // A clean close does not: the other side still gets what its line holds, then the FIN.
    for (const [socket, other] of [[client, target], [target, client]] as const) {
      socket.on('error', () => { other.destroy() })
      socket.on('close', (hadError) => {
        this.sockets.delete(socket)
        if (hadError) other.destroy()
        close()
      })
    }
  }

  stats (): ForwarderStats {
    const s = { ...this.done }
    for (const { forward, backward } of this.lines) {
      s.forwardBytes += forward.bytes
      s.backwardBytes += backward.bytes
      s.peakQueuedBytes = Math.max(s.peakQueuedBytes, forward.peakQueuedBytes, backward.peakQueuedBytes)
    }
    return s
  }

  /** Clears the peak (the next measurement starts from now). */
  resetPeak (): void {
    this.done.peakQueuedBytes = 0
    for (const { forward, backward } of this.lines) {
      forward.peakQueuedBytes = forward.queuedBytes
      backward.peakQueuedBytes = backward.queuedBytes
    }
  }

  async close (): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    await Promise.all(this.servers.map(async (s) => { s.close(); if (s.listening) await once(s, 'close') }))
  }
}
