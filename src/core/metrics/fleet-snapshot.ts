import type {Scrape} from './metrics-server.js'
import {fleetRegistry, readFleet, type FleetSnapshot} from './fleet-metrics.js'
import type {KvStore} from '../store/store.js'

export interface FleetSource {
  /** The body of one scrape of /metrics. */
  scrape(): Promise<Scrape>
  close(): void
}

export interface FleetSourceOptions {
  concurrency: number
  timeoutMs: number
  /** 0: read the fleet at every scrape. Else: read it in the background, this long after the previous read ended. */
  refreshSeconds: number
}

/** Where the exporter's metrics come from: the store at scrape time, or a snapshot refreshed in the background. */
export function openFleetSource(store: KvStore, options: FleetSourceOptions): FleetSource {
  const read = () => readFleet(store, options.concurrency, options.timeoutMs)
  if (options.refreshSeconds <= 0) return {scrape: async () => render(await read()), close: () => {}}
  return new RefreshedFleet(read, options.refreshSeconds)
}

async function render(snapshot: FleetSnapshot, refreshSeconds?: number): Promise<Scrape> {
  const registry = fleetRegistry(snapshot, refreshSeconds === undefined ? undefined : {refreshSeconds, readAt: snapshot.readAt})
  return {contentType: registry.contentType, body: await registry.metrics()}
}

/**
 * A fleet too large to read within a scrape (10 000 nodes on Vault): every scrape answers at once with the last
 * snapshot, rendered once per refresh. Reads never overlap; the first scrape waits for the first read.
 */
class RefreshedFleet implements FleetSource {
  private latest: Promise<Scrape>
  private timer?: NodeJS.Timeout
  private closed = false

  constructor(
    private readonly read: () => Promise<FleetSnapshot>,
    private readonly refreshSeconds: number,
  ) {
    this.latest = this.refresh()
    // A first read that fails is reported to the scrapes that wait for it, never as an unhandled rejection.
    this.latest.catch(() => {})
  }

  scrape(): Promise<Scrape> {
    return this.latest
  }

  close(): void {
    this.closed = true
    clearTimeout(this.timer)
  }

  private async refresh(): Promise<Scrape> {
    try {
      return await render(await this.read(), this.refreshSeconds)
    } finally {
      if (!this.closed)
        this.timer = setTimeout(() => {
          const next = this.refresh()
          // The previous snapshot is served until the next one is rendered.
          next.then(() => (this.latest = next), () => {})
        }, this.refreshSeconds * 1000)
    }
  }
}
