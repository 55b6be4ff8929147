import {Flags} from '@oclif/core'

import {resetNode, type ResetResult} from '../core/agent/reset.js'
import {ExitCode} from '../core/errors/index.js'
import {CometCommand} from '../cli/comet-command.js'

export default class Reset extends CometCommand<typeof Reset> {
  static override summary = 'Leave the fenced state once an incident has been handled.'
  static override description =
    'Lets every procedure run again, accepts the current mode, owner and mtime of intact sentinels (ending their warnings), and tells a running comet watch to reload. With --replant, tripped sentinels are planted anew (create) or their current content accepted (already_present).'
  static override examples = ['<%= config.bin %> reset', '<%= config.bin %> reset --replant']
  static override flags = {
    replant: Flags.boolean({description: 'plant tripped sentinels anew, or accept the content of tripped existing files'}),
  }

  async run(): Promise<ResetResult & {exitCode: ExitCode}> {
    const result = await resetNode(this.agentOptions(), {replant: this.flags.replant})
    if (!this.jsonEnabled()) {
      this.log(result.cleared.length > 0 ? `latch cleared for: ${result.cleared.join(', ')}` : 'no procedure had run')
      for (const entry of result.replanted) this.log(`${entry.path}: ${entry.action}${entry.detail ? ` (${entry.detail})` : ''}`)
      this.log(`${result.rebaselined} sentinel(s) re-baselined${result.watchNotified ? '; comet watch told to reload' : ''}`)
    }
    return this.finish({...result, exitCode: result.replanted.some((entry) => entry.action === 'failed') ? ExitCode.CannotCheck : ExitCode.Ok})
  }
}
