import { once } from 'node:events'
import { createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { AuditLog } from '../../../node/audit/audit-log.ts'
import { SyslogExporter } from '../../../node/audit/syslog-export.ts'
import { freePort } from '../../../simulations/bench/processes.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { until } from '../../helpers/patience.ts'

const tempDir = useTempDirs()

/** A TCP syslog collector (RFC 6587 octet counting): the messages it received, parsed out of the frames. */
class Collector {
  readonly messages: string[] = []

  private server: Server | undefined
  private readonly sockets = new Set<Socket>()

  async listen (port: number): Promise<void> {
    this.server = createServer((socket) => {
      this.sockets.add(socket)
      let buffer = Buffer.alloc(0)
      socket.on('data', (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk])
        for (;;) {
          const space = buffer.indexOf(0x20)
          if (space < 0) break
          const length = Number(buffer.subarray(0, space).toString('latin1'))
          if (buffer.length < space + 1 + length) break
          this.messages.push(buffer.subarray(space + 1, space + 1 + length).toString('utf8'))
          buffer = buffer.subarray(space + 1 + length)
        }
      })
      socket.on('close', () => this.sockets.delete(socket))
    })
    this.server.listen(port, '127.0.0.1')
    await once(this.server, 'listening')
  }

  /** Stops reading (what the node sends piles up in the kernel, then in its socket) or reads again. */
  pause (): void { for (const socket of this.sockets) socket.pause() }
  resume (): void { for (const socket of this.sockets) socket.resume() }
  /** While paused: takes what has arrived, one read's worth. */
  readSome (): void { for (const socket of this.sockets) socket.read() }

  /** Goes down hard: the listener and every connection. */
  async close (): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    const server = this.server!
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
  }

  async waitFor (count: number): Promise<void> {
    await until(() => this.messages.length >= count, `${count} syslog message(s) at the collector (${this.messages.length} so far)`)
  }
}

describe('audit export to a syslog collector', () => {
  it('sends each record as a DICOM audit message, buffers while the collector is down and delivers after', async () => {
    const dir = await tempDir('syslog')
    const port = await freePort()
    const collector = new Collector()
    await collector.listen(port)
    const log = new AuditLog(join(dir, 'trail.jsonl'))
    await log.start()
    const exporter = new SyslogExporter({ trailPath: log.path, cursorPath: join(dir, 'cursor'), host: '127.0.0.1', port, source: { id: 'node-1', nodeName: 'Isala' }, logger: pino({ level: 'silent' }), retryMs: 100 })
    log.onRecord(() => { exporter.poke() })
    await exporter.start()
    const clinician = { name: 'dr. B. de Boer', uzi: '987654321', role: '01.015' }
    try {
      await log.record({ event: 'query', outcome: '1 study', patient: { bsn: '111222333', name: 'Jansen^Piet' }, user: clinician, institution: { ura: '01000471', name: 'Amsterdam UMC' } })
      await log.record({ event: 'pull-request', outcome: 'refused', patient: { bsn: '111222333' }, user: clinician, studyInstanceUID: '1.2.3.4' })
      await collector.waitFor(2)
      expect(collector.messages).toHaveLength(2)
      const [query, pull] = collector.messages as [string, string]
      expect(query).toMatch(/^<85>1 \S+ \S+ beeldnet \d+ IHE\+RFC-3881 - \uFEFF<AuditMessage>/)
      expect(query).toContain('<EventID csd-code="110112" codeSystemName="DCM" originalText="Query"/>')
      expect(query).toContain('ParticipantObjectID="111222333^^^&amp;2.16.840.1.113883.2.4.6.3&amp;ISO"')
      expect(query).toContain('UserID="987654321" UserName="dr. B. de Boer"')
      expect(query).toContain('AuditSourceID="node-1"')
      expect(pull).toContain('EventOutcomeIndicator="4"')
      expect(pull).toContain('ParticipantObjectID="1.2.3.4"')

      await collector.close()
      await delay(300)
      await log.record({ event: 'view', outcome: '2 instances', patient: { bsn: '111222333' }, user: { system: 'DICOMweb caller at 127.0.0.1' } })
      await log.record({ event: 'audit-read', outcome: 'patient access report', patient: { bsn: '111222333' }, user: { system: 'API caller at 127.0.0.1' } })
      await delay(300)

      const back = new Collector()
      await back.listen(port)
      await back.waitFor(2)
      try {
        expect(back.messages.some((m) => m.includes('originalText="DICOM Instances Accessed"'))).toBe(true)
        expect(back.messages.some((m) => m.includes('originalText="Audit Log Used"'))).toBe(true)
      } finally {
        await exporter.stop()
        await back.close()
      }
    } finally {
      await exporter.stop()
      await log.stop()
    }
  })
  it('leaves no drain or close listener on its socket, however often a full socket makes it wait', async () => {
    const dir = await tempDir('syslog-backpressure')
    const port = await freePort()
    const collector = new Collector()
    await collector.listen(port)
    const log = new AuditLog(join(dir, 'trail.jsonl'))
    await log.start()
    const exporter = new SyslogExporter({ trailPath: log.path, cursorPath: join(dir, 'cursor'), host: '127.0.0.1', port, source: { id: 'node-1', nodeName: 'Isala' }, logger: pino({ level: 'silent' }), retryMs: 100 })
    log.onRecord(() => { exporter.poke() })
    const warnings: string[] = []
    const onWarning = (warning: Error): void => { warnings.push(warning.name) }
    process.on('warning', onWarning)
    await exporter.start()
    try {
      const system = { system: 'DIMSE caller PACS at 127.0.0.1' }
      await log.record({ event: 'query', outcome: '1 study', patient: { bsn: '111222333' }, user: system })
      await collector.waitFor(1)
      // The exporter's socket, once connected: what it has on it before any wait.
      const socket = (exporter as unknown as { socket: Socket }).socket
      let drains = 0
      socket.on('drain', () => { drains++ })
      const listeners = (): Record<string, number> => ({ drain: socket.listenerCount('drain'), close: socket.listenerCount('close'), error: socket.listenerCount('error') })
      const before = listeners()

      // Far more than the kernel's socket buffers hold, to a collector that reads a little at a time
      // until the socket drains: the exporter finds its socket full, and waits, at every step.
      collector.pause()
      const many = 800
      await log.recordAll(Array.from({ length: many }, (_, i) => ({ event: 'view', outcome: `${i} ${'x'.repeat(64 * 1024)}`, patient: { bsn: '111222333' }, user: system })))
      const steps = 12
      for (let step = 1; step <= steps; step++) {
        await until(() => socket.writableNeedDrain, `the exporter's socket full (step ${step})`)
        await until(() => { collector.readSome(); return drains >= step }, `a drain (step ${step})`)
      }
      collector.resume()
      await collector.waitFor(1 + many)
      expect((exporter as unknown as { socket: Socket }).socket).toBe(socket)
      expect(drains).toBeGreaterThanOrEqual(steps)
      expect(listeners()).toEqual(before)
      expect(warnings).not.toContain('MaxListenersExceededWarning')
    } finally {
      process.off('warning', onWarning)
      await exporter.stop()
      await collector.close()
      await log.stop()
    }
  })
})
