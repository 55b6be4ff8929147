import type {AgentOptions} from '../config/agent-options.js'
import {openFleetSource} from '../metrics/fleet-snapshot.js'
import {serveMetrics, type MetricsServer} from '../metrics/metrics-server.js'
import {openStore} from '../store/open-store.js'

export interface ExportRequest {
  listen: string
  /** Nodes read in parallel at most. */
  concurrency: number
  /** 0: read the fleet at every scrape; else serve a snapshot read in the background this often. */
  refreshSeconds: number
}

export interface Exporter {
  server: MetricsServer
  store: string
  close(): Promise<void>
}

/** `comet export`: the fleet's topology and status, read from the store at scrape time or in the background. */
export async function startExporter(options: AgentOptions, request: ExportRequest): Promise<Exporter> {
  const store = await openStore(options)
  const fleet = openFleetSource(store, {concurrency: request.concurrency, timeoutMs: options.readTimeoutMs, refreshSeconds: request.refreshSeconds})
  let server: MetricsServer
  try {
    server = await serveMetrics(request.listen, () => fleet.scrape())
  } catch (error) {
    fleet.close()
    await store.close()
    throw error
  }
  return {
    server,
    store: store.description,
    close: async () => {
      await server.close()
      fleet.close()
      await store.close()
    },
  }
}
