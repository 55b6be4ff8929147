import {createServer, type Server} from 'node:http'

import {UsageError} from '../errors/index.js'

export interface Scrape {
  contentType: string
  body: string
}

export interface MetricsServer {
  address: string
  close(): Promise<void>
}

export function parseListen(listen: string): {host: string; port: number} {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen)
  const port = match ? Number(match[3]) : Number.NaN
  if (!match || port > 65_535) throw new UsageError(`invalid listen address ${JSON.stringify(listen)}: use HOST:PORT, e.g. 127.0.0.1:9737`, {culprit: listen})
  return {host: match[1] ?? match[2], port}
}

/** Serves /metrics; every request computes a fresh scrape. */
export async function serveMetrics(listen: string, scrape: () => Promise<Scrape>): Promise<MetricsServer> {
  const {host, port} = parseListen(listen)
  const server: Server = createServer(async (request, response) => {
    if (request.url !== '/metrics' && !request.url?.startsWith('/metrics?')) {
      response.writeHead(request.url === '/' ? 200 : 404, {'Content-Type': 'text/plain'})
      response.end(request.url === '/' ? 'comet: metrics at /metrics\n' : 'not found\n')
      return
    }
    try {
      const result = await scrape()
      response.writeHead(200, {'Content-Type': result.contentType})
      response.end(result.body)
    } catch (error) {
      response.writeHead(500, {'Content-Type': 'text/plain'})
      response.end(`scrape failed: ${(error as Error).message}\n`)
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new UsageError(`cannot listen on ${listen}: ${error.message}`, {culprit: listen})))
    server.listen(port, host, resolve)
  })
  const bound = server.address() as {address: string; port: number}
  return {
    address: `${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}
