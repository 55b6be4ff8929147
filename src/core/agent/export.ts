import type {AgentOptions} from '../config/agent-options.js'
import {fleetRegistry, readFleet} from '../metrics/fleet-metrics.js'
import {serveMetrics, type MetricsServer} from '../metrics/metrics-server.js'
import {openStore} from '../store/open-store.js'

export interface ExportRequest {
  listen: string
  /** Nodes read in parallel at most. */
  concurrency: number
}

export interface Exporter {
  server: MetricsServer
  store: string
  close(): Promise<void>
}

/** `comet export`: the fleet's topology and status, read from the store at scrape time. */
export async function startExporter(options: AgentOptions, request: ExportRequest): Promise<Exporter> {
  const store = await openStore(options)
  const server = await serveMetrics(request.listen, async () => {
    const registry = fleetRegistry(await readFleet(store, request.concurrency, options.readTimeoutMs))
    return {contentType: registry.contentType, body: await registry.metrics()}
  })
  return {
    server,
    store: store.description,
    close: async () => {
      await server.close()
      await store.close()
    },
  }
}
