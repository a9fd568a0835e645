import { readFile } from 'node:fs/promises'
import { replaceFile } from '../directory/atomic-file.ts'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { hostname } from 'node:os'
import type { Logger } from 'pino'
import { writeOrWait } from '../net/socket-write.ts'
import { trailRecords } from './audit-log.ts'
import { syslogFrame } from './dicom-audit-message.ts'

/*
 * Ships the audit trail to the hospital's audit repository: every record as a DICOM audit message
 * over TCP syslog. The trail itself is the buffer: a cursor file says up to which record the
 * collector has been sent; while it is down the exporter retries, and on reconnecting sends what
 * came since. TCP syslog has no acknowledgements, so records sent in the last moments before a
 * lost connection are sent again: at least once, a collector may see a duplicate.
 */

export interface SyslogExportInit {
  trailPath: string
  /** where the last exported sequence number is kept */
  cursorPath: string
  host: string
  port: number
  source: { id: string, nodeName: string }
  logger: Logger
  /** pause between connection attempts (default 2 s) */
  retryMs?: number
}

/** Records written this shortly before a lost connection are sent again after it. */
const RESEND_WINDOW_MS = 2000

export class SyslogExporter {
  private readonly init: SyslogExportInit
  private cursor = 0
  private running = false
  private socket: Socket | undefined
  private connecting: Socket | undefined
  private wake: (() => void) | undefined
  private loop: Promise<void> = Promise.resolve()
  /** (when, seq) of recent writes, to step back after a lost connection */
  private recent: Array<{ at: number, seq: number }> = []

  constructor (init: SyslogExportInit) {
    this.init = init
  }

  async start (): Promise<void> {
    this.cursor = Number((await readFile(this.init.cursorPath, 'utf8').catch(() => '0')).trim()) || 0
    this.running = true
    this.loop = this.run()
  }

  async stop (): Promise<void> {
    this.running = false
    this.poke()
    // A connection still being made is given up too: else it would open after stop and stay open.
    this.connecting?.destroy()
    this.socket?.destroy()
    await this.loop
  }

  /** A record was appended: send it soon. */
  poke (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  private async sleep (ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms)
      this.wake = () => { clearTimeout(timer); resolve() }
    })
  }

  private async run (): Promise<void> {
    while (this.running) {
      try {
        const socket = this.socket ?? await this.connect()
        await this.sendPending(socket)
        if (this.running) await this.sleep(5000)
      } catch (err) {
        this.disconnected(err as Error)
        if (this.running) await this.sleep(this.init.retryMs ?? 2000)
      }
    }
  }

  private async connect (): Promise<Socket> {
    const socket = connect({ host: this.init.host, port: this.init.port })
    this.connecting = socket
    try {
      await Promise.race([
        once(socket, 'connect'),
        once(socket, 'error').then(([err]) => { throw err as Error }),
        once(socket, 'close').then(() => { throw new Error('the connection closed before it was made') })
      ])
    } finally {
      this.connecting = undefined
    }
    if (!this.running) {
      socket.destroy()
      throw new Error('the export is stopping')
    }
    socket.on('error', (err) => { this.disconnected(err) })
    socket.on('close', () => { this.disconnected(new Error('the collector closed the connection')) })
    this.socket = socket
    this.init.logger.info({ collector: `${this.init.host}:${this.init.port}`, from: this.cursor + 1 }, 'audit export connected')
    return socket
  }

  private disconnected (err: Error): void {
    if (this.socket === undefined) return
    this.socket.destroy()
    this.socket = undefined
    // What went out just before may never have arrived: send it again.
    const cutoff = Date.now() - RESEND_WINDOW_MS
    const firstUnsure = this.recent.find((r) => r.at >= cutoff)
    if (firstUnsure !== undefined) this.cursor = Math.min(this.cursor, firstUnsure.seq - 1)
    this.recent = []
    this.init.logger.warn({ err: err.message, collector: `${this.init.host}:${this.init.port}` }, 'audit export lost its collector; buffering in the trail')
    this.poke()
  }

  private async sendPending (socket: Socket): Promise<void> {
    for await (const record of trailRecords(this.init.trailPath)) {
      if (this.socket !== socket) break
      if (record.seq <= this.cursor) continue
      const frame = syslogFrame(record, { ...this.init.source, hostname: hostname() })
      await writeOrWait(socket, frame)
      if (this.socket !== socket) throw new Error('the collector went away')
      this.cursor = record.seq
      this.recent.push({ at: Date.now(), seq: record.seq })
      this.recent = this.recent.filter((r) => r.at >= Date.now() - RESEND_WINDOW_MS)
    }
    await replaceFile(this.init.cursorPath, String(this.cursor))
  }
}
