import { fork, type ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'
import type { HostEvent, HostMessage, HostRequest, HostRequestMessage, HostedNode } from './host-protocol.ts'

/*
 * The driver's side of a node-host process: requests with replies, events passed on, and a hard
 * kill (SIGKILL, as a crash or a pulled plug) followed by a fresh start on the same data directories.
 */

export class HostProcessError extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.code = code
  }
}

export interface HostProcessInit {
  name: string
  nodes: HostedNode[]
  /** BEELDNET_* for every node of this process */
  env: Record<string, string>
  registryUrl: string
  pollIntervalSeconds: number
  workDir: string
}

export class HostProcess extends EventEmitter<{ event: [HostEvent], exit: [number | null, string | null] }> {
  readonly init: HostProcessInit
  private child: ChildProcess | undefined
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()

  constructor (init: HostProcessInit) {
    super()
    this.init = init
  }

  get pid (): number | undefined { return this.child?.pid }
  get uras (): string[] { return this.init.nodes.map((n) => n.ura) }

  /** Forks the process and starts its nodes. */
  async start (): Promise<void> {
    const child = fork(new URL('./node-host.ts', import.meta.url), [], {
      execArgv: [...process.execArgv, '--max-semi-space-size=1'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced'
    })
    this.child = child
    child.on('message', (m: HostMessage) => {
      if (m.type !== 'reply') { this.emit('event', m); return }
      const waiting = this.pending.get(m.id)
      if (waiting === undefined) return
      this.pending.delete(m.id)
      if (m.ok) waiting.resolve(m.value)
      else waiting.reject(new HostProcessError(m.code, `${this.init.name}: ${m.message}`))
    })
    child.on('exit', (code, signal) => {
      for (const w of this.pending.values()) w.reject(new HostProcessError('BEELDNET_ERR_SIMULATION_HOST_EXITED', `${this.init.name} exited (${signal ?? code})`))
      this.pending.clear()
      if (this.child === child) this.child = undefined
      this.emit('exit', code, signal)
    })
    await this.request({ type: 'start', nodes: this.init.nodes, env: this.init.env })
  }

  async request<T = unknown> (request: HostRequest): Promise<T> {
    const child = this.child
    if (child === undefined) throw new HostProcessError('BEELDNET_ERR_SIMULATION_HOST_DOWN', `${this.init.name} is not running`)
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      const message: HostRequestMessage = { ...request, id, registryUrl: this.init.registryUrl, pollIntervalSeconds: this.init.pollIntervalSeconds, workDir: this.init.workDir }
      child.send(message)
    })
  }

  /** SIGKILL: no stop, no flush; what the nodes had made durable is all that survives. */
  async kill (): Promise<void> {
    const child = this.child
    if (child === undefined) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }

  async stop (): Promise<void> {
    const child = this.child
    if (child === undefined) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    await this.request({ type: 'stop' }).catch(() => {})
    child.disconnect()
    await exited
  }
}
