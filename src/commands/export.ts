import {Flags} from '@oclif/core'

import {startExporter} from '../core/agent/export.js'
import {ExitCode} from '../core/errors/index.js'
import {CometCommand} from '../cli/comet-command.js'

export default class Export extends CometCommand<typeof Export> {
  static override summary = 'The Prometheus exporter of the OORT panel: every node\'s topology and status, read from the store at scrape time.'
  static override description = 'Serves /metrics until SIGTERM or SIGINT. When the store fails, the scrape still answers, with comet_store_up 0.'
  static override examples = ['<%= config.bin %> export --store vault --listen 127.0.0.1:9737', '<%= config.bin %> export --store vault --refresh 30   # a large fleet: scrapes answer at once from a snapshot read every 30 s']
  static override enableJsonFlag = false
  static override flags = {
    listen: Flags.string({description: 'HOST:PORT to serve /metrics on', default: '127.0.0.1:9737'}),
    concurrency: Flags.integer({description: 'nodes read from the store in parallel', default: 32, min: 1, max: 512}),
    refresh: Flags.integer({description: 'read the fleet in the background every SECONDS and answer scrapes from that snapshot (0: read at every scrape)', default: 0, min: 0, max: 3600, env: 'COMET_EXPORT_REFRESH'}),
  }

  async run(): Promise<{exitCode: ExitCode}> {
    const exporter = await startExporter(this.agentOptions(), {listen: this.flags.listen, concurrency: this.flags.concurrency, refreshSeconds: this.flags.refresh})
    const when = this.flags.refresh > 0 ? `read in the background every ${this.flags.refresh} s` : 'read at every scrape'
    process.stderr.write(`${new Date().toISOString()} info serving fleet metrics from ${exporter.store} (${when}) on http://${exporter.server.address}/metrics\n`)
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve)
      process.once('SIGINT', resolve)
    })
    await exporter.close()
    return this.finish({exitCode: ExitCode.Ok})
  }
}
