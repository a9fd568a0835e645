import { setInterval as every } from 'node:timers'

/*
 * How hard the nodes lean on the registry during the day: its GET /metrics request counter read
 * once a wall second. A restart starts the counter from zero, so counts are summed per run of the
 * registry; while it is down nothing is read.
 */

const COUNTER = 'beeldnet_registry_http_requests_total'

export function requestsIn (text: string): number {
  let total = 0
  for (const line of text.split('\n')) {
    // the scrapes themselves are not the nodes' load
    if (line.startsWith(`${COUNTER}{`) && !line.includes('route="/metrics"')) total += Number(line.split(' ').at(-1))
  }
  return total
}

export class RegistryLoad {
  private readonly url: string
  private timer: NodeJS.Timeout | undefined
  private paused = false
  private base = 0
  private last = 0
  private peakPerSecond = 0
  private upSeconds = 0

  constructor (url: string) { this.url = url }

  start (): void {
    this.timer = every(() => { void this.read() }, 1000)
    this.timer.unref()
  }

  private async read (): Promise<void> {
    if (this.paused) return
    try {
      const now = requestsIn(await (await fetch(`${this.url}/metrics`)).text())
      if (this.paused) return
      this.peakPerSecond = Math.max(this.peakPerSecond, now - this.last)
      this.last = now
      this.upSeconds++
    } catch { /* down or restarting: the next read tells */ }
  }

  pause (): void {
    this.paused = true
    this.base += this.last
    this.last = 0
  }

  resume (): void { this.paused = false }

  stop (): void { clearInterval(this.timer) }

  /** requests (wall) and what they mean per node and simulated hour */
  summary (compression: number, nodes: number): { requests: number, perSecond: number, peakPerSecond: number, perNodePerSimHour: number } {
    const requests = this.base + this.last
    const perSecond = this.upSeconds === 0 ? 0 : requests / this.upSeconds
    return { requests, perSecond, peakPerSecond: this.peakPerSecond, perNodePerSimHour: perSecond / nodes / compression * 3600 }
  }
}
