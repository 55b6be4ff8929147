import {Flags} from '@oclif/core'
import {Listr} from 'listr2'

import {planInit, type InitResult} from '../core/agent/init.js'
import {runSteps} from '../core/agent/step.js'
import {loadManifest} from '../core/manifest/parse-manifest.js'
import {CometCommand} from '../cli/comet-command.js'
import {table, verdictColour} from '../cli/render.js'

export default class Init extends CometCommand<typeof Init> {
  static override summary = 'Plant the sentinels, record their checksums and cache the fencing procedures locally.'
  static override description =
    'With --manifest, the node\'s sentinels and procedures are first loaded into the store. Idempotent: a second run changes nothing. A recorded sentinel that is gone or differs is reported as tampered (exit 1), never re-created.'
  static override examples = ['<%= config.bin %> init --manifest /etc/comet/manifest.yaml', '<%= config.bin %> init --store vault --node db01', '<%= config.bin %> init --manifest m.yaml --dry-run']
  static override flags = {
    manifest: Flags.file({char: 'm', description: 'a YAML manifest describing this node (see the README for its schema)', exists: false}),
    'dry-run': Flags.boolean({description: 'show what would be done; write nothing, create nothing'}),
  }

  async run(): Promise<InitResult> {
    // The manifest is validated completely before anything is opened or written.
    const manifest = this.flags.manifest ? loadManifest(this.flags.manifest) : undefined
    const plan = planInit(this.agentOptions({manifestNode: manifest?.node}), {manifest, dryRun: this.flags['dry-run']})
    try {
      if (this.jsonEnabled()) await runSteps(plan.steps)
      else
        await new Listr(
          plan.steps.map((step) => ({
            title: step.title,
            task: async (_: unknown, task: {title: string}) => {
              const note = await step.run()
              if (note) task.title = `${step.title}: ${note}`
            },
          })),
          {concurrent: false, exitOnError: true, rendererOptions: {collapseErrors: false}},
        ).run()
    } finally {
      await plan.close()
    }
    const result = plan.result()
    if (!this.jsonEnabled()) {
      this.log(table(['SENTINEL', 'MODE', 'ACTION', 'PROCEDURE', 'DETAIL'], result.sentinels.map((s) => [s.path, s.mode, verdictColour(s.action), s.procedure, s.detail ?? ''])))
      if (result.dryRun) this.log('dry run: nothing was written')
    }
    return this.finish(result)
  }
}
