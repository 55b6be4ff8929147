import {Command, Flags, Interfaces} from '@oclif/core'
import chalk from 'chalk'

import {resolveOptions, type AgentOptions} from '../core/config/agent-options.js'
import {CometError, ExitCode} from '../core/errors/index.js'
import {redact} from '../core/errors/redact.js'

export type CometFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof CometCommand)['baseFlags'] & T['flags']>

/**
 * The flags every command shares, and the one place where errors become messages and exit codes:
 * 0 ok, 1 tampering found, 2 could not check.
 */
export abstract class CometCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true

  static override baseFlags = {
    store: Flags.string({
      description: 'where the topology lives: file:DIR (embedded store) or vault [env: COMET_STORE; default: file:/var/lib/comet as root, else file:$XDG_STATE_HOME/comet]',
      helpGroup: 'GLOBAL',
    }),
    node: Flags.string({description: 'this machine\'s node name [env: COMET_NODE; default: the hostname]', helpGroup: 'GLOBAL'}),
    'state-dir': Flags.string({
      description: 'the agent\'s local cache, latch and spool [env: COMET_STATE_DIR; default: /var/lib/comet/agent as root]',
      helpGroup: 'GLOBAL',
    }),
  }

  protected flags!: CometFlags<T>

  public override async init(): Promise<void> {
    await super.init()
    const {flags} = await this.parse({flags: this.ctor.flags, baseFlags: (this.ctor as typeof CometCommand).baseFlags, enableJsonFlag: true, args: this.ctor.args, strict: this.ctor.strict})
    this.flags = flags as CometFlags<T>
  }

  protected agentOptions(extra: {manifestNode?: string} = {}): AgentOptions {
    return resolveOptions({store: this.flags.store, node: this.flags.node, stateDir: this.flags['state-dir'], manifestNode: extra.manifestNode})
  }

  /**
   * Colour only for a person at a terminal. oclif colourises every --json document, which costs more than the
   * check itself on 100 000 sentinels; scripts and cron read plain JSON.
   */
  public override logJson(json: unknown): void {
    if (process.stdout.isTTY) super.logJson(json)
    else process.stdout.write(`${JSON.stringify(json, null, 2)}\n`)
  }

  /** Sets the exit code without throwing, so that --json still prints the result. */
  protected finish<R extends {exitCode: ExitCode}>(result: R): R {
    process.exitCode = result.exitCode
    return result
  }

  protected override async catch(error: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    // oclif's own errors (a bad flag, this.exit()) carry their exit code already; a bad flag exits 2.
    if (error.oclif !== undefined) return super.catch(error)
    const exitCode = error instanceof CometError ? error.exitCode : ExitCode.CannotCheck
    const message = redact(error instanceof CometError ? error.message : `unexpected error: ${error.message}`)
    if (this.jsonEnabled()) this.logJson({error: {name: error.name, message, culprit: error instanceof CometError ? error.culprit : undefined, exitCode}})
    else this.logToStderr(`${chalk.red('error')}: ${message}`)
    if (process.env.DEBUG && error.stack) this.logToStderr(error.stack)
    process.exitCode = exitCode
    return undefined
  }
}
