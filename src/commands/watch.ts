import {Flags} from '@oclif/core'

import {SystemdNotifier} from '../core/agent/systemd-notify.js'
import {WatchAgent} from '../core/agent/watch.js'
import {ExitCode} from '../core/errors/index.js'
import {redact} from '../core/errors/redact.js'
import {AgentMetrics} from '../core/metrics/agent-metrics.js'
import {serveMetrics} from '../core/metrics/metrics-server.js'
import {CometCommand} from '../cli/comet-command.js'

export default class Watch extends CometCommand<typeof Watch> {
  static override summary = 'The agent: verify, then fence the instant a sentinel changes.'
  static override description =
    'A full verify first, then inotify on the sentinels\' directories (a full re-verify at once after a queue overflow) and a full re-verify every --interval. SIGHUP reloads the latch, the topology and the recorded identities (comet reset sends it); SIGTERM and SIGINT exit 0. Under systemd (Type=notify) it sends READY=1 and watchdog pings.'
  static override examples = ['<%= config.bin %> watch', '<%= config.bin %> watch --interval 30']
  static override enableJsonFlag = false
  static override flags = {
    interval: Flags.integer({description: 'seconds between full re-verifies (and heartbeats)', default: 60, min: 1}),
    fanotify: Flags.boolean({description: 'block and attribute reads of sentinels with fanotify where available (root); --no-fanotify: inotify only', default: true, allowNo: true}),
    'metrics-listen': Flags.string({description: 'HOST:PORT to serve the agent\'s own Prometheus metrics on (off by default)'}),
  }

  async run(): Promise<{exitCode: ExitCode}> {
    const options = this.agentOptions()
    const log = (level: string, message: string) => process.stderr.write(`${new Date().toISOString()} ${level} ${redact(message)}\n`)
    const metrics = this.flags['metrics-listen'] ? new AgentMetrics(options.node) : undefined
    const server = metrics && (await serveMetrics(this.flags['metrics-listen'] as string, async () => ({contentType: metrics.registry.contentType, body: await metrics.registry.metrics()})))
    if (server) log('info', `serving agent metrics on http://${server.address}/metrics`)
    const systemd = SystemdNotifier.fromEnvironment(process.env, (message) => log('warn', message))
    // Procedures inherit the environment: they are not the service, and must not speak for it.
    for (const name of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']) delete process.env[name]
    const agent = await WatchAgent.start(options, {intervalMs: this.flags.interval * 1000, log, observer: metrics, fanotify: this.flags.fanotify})
    systemd?.ready(`watching ${agent.sentinelCount} sentinel(s) in ${agent.watchedDirectories.length} director(ies)`)
    const stop = () => {
      systemd?.stopping()
      void agent.stop()
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
    process.on('SIGHUP', () => void agent.reload())
    await agent.done
    await server?.close()
    return this.finish({exitCode: ExitCode.Ok})
  }
}
