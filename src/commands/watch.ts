import {Flags} from '@oclif/core'

import {WatchAgent} from '../core/agent/watch.js'
import {ExitCode} from '../core/errors/index.js'
import {redact} from '../core/errors/redact.js'
import {CometCommand} from '../cli/comet-command.js'

export default class Watch extends CometCommand<typeof Watch> {
  static override summary = 'The agent: verify, then fence the instant a sentinel changes.'
  static override description =
    'A full verify first, then inotify on the sentinels\' directories and a full re-verify every --interval. SIGHUP reloads the latch and the topology (comet reset sends it); SIGTERM and SIGINT exit 0.'
  static override examples = ['<%= config.bin %> watch', '<%= config.bin %> watch --interval 30']
  static override enableJsonFlag = false
  static override flags = {
    interval: Flags.integer({description: 'seconds between full re-verifies (and heartbeats)', default: 60, min: 1}),
  }

  async run(): Promise<{exitCode: ExitCode}> {
    const agent = await WatchAgent.start(this.agentOptions(), {
      intervalMs: this.flags.interval * 1000,
      log: (level, message) => process.stderr.write(`${new Date().toISOString()} ${level} ${redact(message)}\n`),
    })
    const stop = () => void agent.stop()
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
    process.on('SIGHUP', () => void agent.reload())
    await agent.done
    return this.finish({exitCode: ExitCode.Ok})
  }
}
