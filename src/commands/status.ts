import {Flags} from '@oclif/core'
import chalk from 'chalk'

import {showStatus, type StatusResult} from '../core/agent/show-status.js'
import type {ProcedureRun} from '../core/fence/procedure-run.js'
import type {NodeState} from '../core/report/node-status.js'
import {CometCommand} from '../cli/comet-command.js'
import {fields, table} from '../cli/render.js'

export default class Status extends CometCommand<typeof Status> {
  static override summary = 'Show the node\'s state, heartbeat, recent incidents and local spool, without checking anything.'
  static override description =
    'Reads comet-status/<node> from the store and this machine\'s agent state (the running comet watch, the spool, the latch). Exit 0 when the node is ok, 1 while it is tampered, fencing or fenced, 2 when its state cannot be vouched for: the store cannot be read, no agent has reported, the agent reports an error, the heartbeat is older than --max-age, or --require-watch finds no agent.'
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --max-age 180 --require-watch', '<%= config.bin %> status --json']
  static override flags = {
    'max-age': Flags.integer({description: 'the last heartbeat may be at most this many seconds old (e.g. three --interval periods)', min: 1}),
    'require-watch': Flags.boolean({description: 'fail unless a comet watch runs for this node on this machine'}),
    incidents: Flags.integer({description: 'how many recent incidents to list', default: 5, min: 0}),
  }

  async run(): Promise<StatusResult> {
    const result = await showStatus(this.agentOptions(), {maxAgeSeconds: this.flags['max-age'], requireWatch: this.flags['require-watch']})
    if (!this.jsonEnabled()) this.render(result)
    return this.finish(result)
  }

  private render(result: StatusResult): void {
    const {status} = result
    const rows: Array<[string, string]> = [
      ['node', result.node],
      ['store', result.store],
      ['state', status ? stateColour(status.state) : chalk.yellow('unknown')],
    ]
    if (status) {
      rows.push(['heartbeat', status.heartbeatAt ? `${status.heartbeatAt} (${result.heartbeatAgeSeconds} s ago)` : 'never'])
      rows.push(['sentinels', `${status.sentinels.intact}/${status.sentinels.total} intact, ${status.sentinels.tampered} tampered`])
      if (status.agent) rows.push(['agent', `${status.agent.mode} ${status.agent.version}, pid ${status.agent.pid}${status.agent.detector ? `, ${status.agent.detector}` : ''}`])
      rows.push(['incidents', `${status.incidentsTotal}${status.lastIncidentAt ? `, last at ${status.lastIncidentAt}` : ''}`])
      if (status.fencedProcedures.length > 0) rows.push(['fenced', status.fencedProcedures.join(', ')])
      if (status.detail) rows.push(['detail', status.detail])
    }
    rows.push(['comet watch', result.watch.running ? `running (pid ${result.watch.pid})` : 'not running on this machine'])
    rows.push(['spool', `${result.spooledReports} report(s) waiting`])
    if (result.latchedProcedures.length > 0) rows.push(['latch', `closed for ${result.latchedProcedures.join(', ')} (comet reset reopens)`])
    this.log(fields(rows))
    for (const warning of status?.warnings ?? []) this.log(`${chalk.yellow('warning')}: ${warning}`)
    const incidents = (status?.incidents ?? []).slice(-this.flags.incidents)
    if (this.flags.incidents > 0 && incidents.length > 0) {
      this.log('')
      this.log(
        table(
          ['INCIDENT', 'STARTED', 'SENTINELS', 'PROCEDURES'],
          incidents.map((incident) => [
            incident.id,
            incident.startedAt,
            incident.sentinels.map((sentinel) => `${sentinel.path} ${sentinel.reason}`).join(', '),
            incident.procedures.map((run) => `${run.name}: ${describeRun(run)}`).join(', '),
          ]),
        ),
      )
    }
    for (const problem of result.problems) this.logToStderr(`${chalk.red('problem')}: ${problem}`)
  }
}

function describeRun(run: ProcedureRun): string {
  if (run.skipped) return `not run (${run.skipped})`
  if (run.error) return 'could not start'
  if (run.signal) return `killed by ${run.signal}${run.timedOut ? ' after its timeout' : ''}`
  return run.exitCode === undefined ? 'running' : `exit ${run.exitCode}`
}

function stateColour(state: NodeState): string {
  return state === 'ok' ? chalk.green(state) : state === 'error' ? chalk.yellow(state) : chalk.red(state)
}
