import {Flags} from '@oclif/core'

import {fenceManually, type FenceResult} from '../core/agent/fence.js'
import {ExitCode} from '../core/errors/index.js'
import {CometCommand} from '../cli/comet-command.js'

export default class Fence extends CometCommand<typeof Fence> {
  static override summary = 'Run fencing procedures now, by hand; recorded like any incident.'
  static override description = 'With --sentinel, that sentinel\'s procedure; with --procedure, that one; with neither, every procedure of the node. Exits 0 when every procedure exited 0, else 2.'
  static override examples = ['<%= config.bin %> fence --procedure stop_db', '<%= config.bin %> fence --sentinel /srv/data/.~lock.ledger.ods#', '<%= config.bin %> fence --dry-run']
  static override flags = {
    procedure: Flags.string({char: 'p', description: 'the procedure to run'}),
    sentinel: Flags.string({char: 's', description: 'run the procedure of this sentinel'}),
    'dry-run': Flags.boolean({description: 'show which procedures would run; run nothing'}),
  }

  async run(): Promise<FenceResult & {exitCode: ExitCode}> {
    const result = await fenceManually(this.agentOptions(), {procedure: this.flags.procedure, sentinel: this.flags.sentinel, dryRun: this.flags['dry-run']})
    const failed = result.incident.procedures.some((run) => run.error !== undefined || (run.exitCode !== undefined && run.exitCode !== 0))
    if (!this.jsonEnabled())
      for (const run of result.incident.procedures)
        this.log(`${run.name}: ${run.skipped ? `would run (${run.skipped})` : run.error ? `could not start: ${run.error}` : `exit ${run.exitCode}${run.timedOut ? ' (killed after its timeout)' : ''}`}${run.output ? `\n${run.output.trimEnd()}` : ''}`)
    return this.finish({...result, exitCode: failed ? ExitCode.CannotCheck : ExitCode.Ok})
  }
}
