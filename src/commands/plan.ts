import {Flags} from '@oclif/core'
import {writeFileSync} from 'node:fs'

import {planSentinels, type PlanResult} from '../core/plan/plan-sentinels.js'
import {ExitCode} from '../core/errors/index.js'
import {CometCommand} from '../cli/comet-command.js'

export default class Plan extends CometCommand<typeof Plan> {
  static override summary = 'Propose sentinel paths for a tree, so that an encryptor meets a sentinel early; prints a manifest to review.'
  static override description =
    'Walks --root without following links and proposes, per directory, enough sentinels for its size (8 % of its files by default, at least one), named and typed like the files ransomware goes after in that directory, and placed where an encryptor walking in readdir order meets them first: it creates candidate names as empty files, reads the order, keeps the earliest and removes them all (--no-probe: names at random places, nothing written). comet init gives each the header and typical size of its type.'
  static override examples = [
    '<%= config.bin %> plan --root /srv/data > manifest.yaml',
    '<%= config.bin %> plan --root /srv/data --per-dir 3 --hidden --output manifest.yaml',
    '<%= config.bin %> plan --root /srv/data --no-probe   # writes nothing, not even the empty probe files',
  ]
  static override flags = {
    root: Flags.directory({description: 'the tree to protect', required: true, exists: true}),
    'per-dir': Flags.integer({description: 'sentinels per directory (instead of 8 % of its files)', min: 1}),
    hidden: Flags.boolean({description: 'dot-prefixed names'}),
    'fencing-command': Flags.string({description: 'the procedure the sentinels trigger', default: 'logger -p auth.crit "comet: $COMET_SENTINEL $COMET_REASON on $COMET_NODE"'}),
    output: Flags.file({char: 'o', description: 'write the manifest here (mode 0600) instead of stdout'}),
    probe: Flags.boolean({description: 'probe each directory\'s readdir order (empty files, removed at once) to choose names an encryptor meets first', default: true, allowNo: true}),
  }

  async run(): Promise<Omit<PlanResult, 'manifest'> & {manifest?: string; exitCode: ExitCode}> {
    // A signal must not cut a probe short and leave its empty files behind: the walk stops at the next directory.
    const stop = new AbortController()
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const
    const onSignal = (signal: string) => stop.abort(signal)
    for (const signal of signals) process.on(signal, onSignal)
    let result: PlanResult
    try {
      result = await planSentinels({root: this.flags.root, perDirectory: this.flags['per-dir'], hidden: this.flags.hidden, node: this.flags.node, fencingCommand: this.flags['fencing-command'], probeOrder: this.flags.probe, signal: stop.signal})
    } finally {
      for (const signal of signals) process.off(signal, onSignal)
    }
    if (this.flags.output) writeFileSync(this.flags.output, result.manifest, {mode: 0o600, flag: 'w'})
    else if (!this.jsonEnabled()) this.log(result.manifest.trimEnd())
    if (this.flags.output && !this.jsonEnabled()) this.log(`${result.sentinels.length} sentinel(s) for ${result.files} file(s) in ${result.directories} director(ies) written to ${this.flags.output}`)
    for (const leftover of result.leftovers) this.warn(`could not remove the empty probe file ${leftover}: remove it by hand`)
    return this.finish({...result, exitCode: ExitCode.Ok})
  }
}
