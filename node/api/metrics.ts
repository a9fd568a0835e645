import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import type { DiskRefusal } from '../store/disk-space.ts'
import type { TransferProgress } from '../transfers/events.ts'

/*
 * Prometheus metrics at /metrics. Gauges read their value when scraped (collect), from whatever
 * part owns the figure; counters are bumped by the transfer code as bytes and instances move.
 */

export interface MetricsSources {
  /** the held directory's version and age */
  directory?: () => { version: number | null, ageSeconds: number | null }
  /** peers with an open connection */
  peersConnected?: () => number
  /** connections refused by gating, by direction and reason (totals since start) */
  gatingRefusals?: () => Array<{ direction: string, reason: string, count: number }>
  /** transfers by direction and state */
  transfersByState?: () => Promise<Array<{ direction: string, state: string, count: number }>>
  /** exports to the PACS by state (queued, sending, complete, failed, cancelled) */
  exportsByState?: () => Promise<Array<{ state: string, count: number }>>
}

export interface NodeMetrics {
  readonly registry: Registry
  /** instance bytes moved, by direction (sent, received) */
  readonly bytesMoved: Counter<'direction'>
  /** instances moved and verified, by direction */
  readonly instancesMoved: Counter<'direction'>
  /** what the store refused for want of space, by code and route (transfer, pull, stow, c-store, import, write) */
  readonly refusals: Counter<'code' | 'route'>
  /** current rate of a running transfer, bytes/s, by direction and peer URA */
  readonly transferRate: Gauge<'direction' | 'ura'>
  metrics (): Promise<string>
  readonly contentType: string
}

export function createMetrics (sources: MetricsSources = {}): NodeMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'beeldnet_process_' })
  const registers = [registry]
  new Gauge({
    name: 'beeldnet_directory_version', help: 'version of the verified directory this node holds (0: none)', registers,
    collect () { this.set(sources.directory?.().version ?? 0) }
  })
  new Gauge({
    name: 'beeldnet_directory_age_seconds', help: 'seconds since the held directory was issued', registers,
    collect () {
      const age = sources.directory?.().ageSeconds
      if (age !== null && age !== undefined) this.set(age)
    }
  })
  new Gauge({
    name: 'beeldnet_peers_connected', help: 'peers with an open libp2p connection', registers,
    collect () { this.set(sources.peersConnected?.() ?? 0) }
  })
  new Gauge({
    name: 'beeldnet_gating_refusals', help: 'connections refused by directory gating since start', labelNames: ['direction', 'reason'], registers,
    collect () {
      this.reset()
      for (const r of sources.gatingRefusals?.() ?? []) this.set({ direction: r.direction, reason: r.reason }, r.count)
    }
  })
  new Gauge({
    name: 'beeldnet_transfers', help: 'transfers by direction and state', labelNames: ['direction', 'state'], registers,
    async collect () {
      this.reset()
      for (const t of await sources.transfersByState?.() ?? []) this.set({ direction: t.direction, state: t.state }, t.count)
    }
  })
  new Gauge({
    name: 'beeldnet_pacs_exports', help: 'exports to the PACS by state', labelNames: ['state'], registers,
    async collect () {
      this.reset()
      for (const e of await sources.exportsByState?.() ?? []) this.set({ state: e.state }, e.count)
    }
  })
  return {
    registry,
    bytesMoved: new Counter({ name: 'beeldnet_transfer_bytes_total', help: 'instance bytes moved and verified', labelNames: ['direction'], registers }),
    instancesMoved: new Counter({ name: 'beeldnet_transfer_instances_total', help: 'instances moved and verified', labelNames: ['direction'], registers }),
    refusals: new Counter({ name: 'beeldnet_store_refusals_total', help: 'what the store refused for want of space (store.minFreeBytes, store.maxBytes, ENOSPC)', labelNames: ['code', 'route'], registers }),
    transferRate: new Gauge({ name: 'beeldnet_transfer_rate_bytes_per_second', help: 'rate of running transfers', labelNames: ['direction', 'ura'], registers }),
    metrics: async () => registry.metrics(),
    contentType: registry.contentType
  }
}

/** Feeds the transfer counters from the exchange's progress events (snapshots, so deltas are taken here). */
export function countTransfers (metrics: NodeMetrics, events: { on: (name: 'progress', listener: (p: TransferProgress) => void) => unknown }): void {
  const seen = new Map<string, { bytes: number, instances: number }>()
  events.on('progress', (p) => {
    const key = `${p.direction}:${p.peerId}:${p.transferId}`
    const last = seen.get(key) ?? { bytes: 0, instances: 0 }
    if (p.bytesDone > last.bytes) metrics.bytesMoved.inc({ direction: p.direction }, p.bytesDone - last.bytes)
    if (p.instancesDone > last.instances) metrics.instancesMoved.inc({ direction: p.direction }, p.instancesDone - last.instances)
    const done = p.instancesDone >= p.instancesTotal
    if (done) seen.delete(key)
    else seen.set(key, { bytes: Math.max(p.bytesDone, last.bytes), instances: Math.max(p.instancesDone, last.instances) })
  })
}

/** Counts the store's refusals for want of space (DiskSpace's 'refused' events). */
export function countRefusals (metrics: NodeMetrics, space: { on: (name: 'refused', listener: (r: DiskRefusal) => void) => unknown }): void {
  space.on('refused', (r) => { metrics.refusals.inc({ code: r.code, route: r.route }) })
}
