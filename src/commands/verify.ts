import {Flags} from '@oclif/core'

import {verifyNode, type VerifyResult} from '../core/agent/verify.js'
import {CometCommand} from '../cli/comet-command.js'
import {table, verdictColour} from '../cli/render.js'

export default class Verify extends CometCommand<typeof Verify> {
  static override summary = 'Check every sentinel once (for cron): exit 0 all intact, 1 tampering found, 2 could not check.'
  static override description = 'Tampering starts the fencing procedures at once (each at most once until comet reset), unless --no-fence. When the store is unreachable, the check runs from the local cache and says so.'
  static override examples = ['<%= config.bin %> verify', '<%= config.bin %> verify --no-fence --json']
  static override flags = {
    'no-fence': Flags.boolean({description: 'report tampering, run no procedure'}),
  }

  async run(): Promise<VerifyResult> {
    const result = await verifyNode(this.agentOptions(), {noFence: this.flags['no-fence']})
    if (!this.jsonEnabled()) {
      if (result.detail) this.warn(result.detail)
      this.log(table(['SENTINEL', 'STATE', 'PROCEDURE', 'DETAIL'], result.sentinels.map((s) => [s.path, verdictColour(s.verdict), s.procedure, [s.reason, s.detail, ...s.warnings].filter(Boolean).join('; ')])))
      for (const run of result.incident?.procedures ?? [])
        this.log(`procedure ${run.name}: ${run.skipped ? `not run (${run.skipped})` : run.error ? `could not start: ${run.error}` : `exit ${run.exitCode}${run.timedOut ? ' (killed after its timeout)' : ''}`}`)
      this.log(`${result.counts.intact}/${result.counts.total} intact, ${result.counts.tampered} tampered${result.report.pending ? `; ${result.report.pending} report(s) spooled (${result.report.error})` : ''}`)
    }
    return this.finish(result)
  }
}
