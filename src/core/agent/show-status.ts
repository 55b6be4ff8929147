import type {AgentOptions} from '../config/agent-options.js'
import {CometError, ExitCode} from '../errors/index.js'
import type {NodeState, NodeStatus} from '../report/node-status.js'
import {StorePaths} from '../store/store.js'
import {AgentSession} from './session.js'
import {runningWatchPid} from './watch-pid.js'

export interface StatusRequest {
  /** The last heartbeat may be at most this old; older means the agent has gone silent (exit 2). */
  maxAgeSeconds?: number
  /** A `comet watch` must be running for this node on this machine (exit 2 if not). */
  requireWatch?: boolean
  now?: Date
}

export interface StatusResult {
  node: string
  store: string
  /** `comet-status/<node>` as the store holds it; absent until an agent has reported. */
  status?: NodeStatus
  /** Why the store could not be read. */
  storeError?: string
  /** Seconds since the last heartbeat (a check by watch, verify, init or reset). */
  heartbeatAgeSeconds?: number
  /** The `comet watch` of this node on this machine, found through its pid file. */
  watch: {running: boolean; pid?: number}
  /** Reports that wait on this machine until the store takes them. */
  spooledReports: number
  /** Procedures this machine's latch holds closed: they ran since the last `comet reset`. */
  latchedProcedures: string[]
  /** Everything that makes the exit code non-zero, for a person. */
  problems: string[]
  exitCode: ExitCode
}

const TAMPERED_STATES: ReadonlySet<NodeState> = new Set(['tampered', 'fencing', 'fenced'])

/**
 * `comet status`: what an operator checks first, from the store and from this machine, without checking a
 * sentinel or running anything: the node's state, how fresh its heartbeat is, whether the agent runs, and
 * what waits in the spool. Exit 1 while the node is tampered, fencing or fenced; 2 when the state cannot be
 * vouched for (store unreadable, no status yet, state error, a stale heartbeat, no agent where one is required).
 */
export async function showStatus(options: AgentOptions, request: StatusRequest = {}): Promise<StatusResult> {
  const session = await AgentSession.open(options, {readOnly: true})
  try {
    const problems: string[] = []
    let status: NodeStatus | undefined
    let storeError: string | undefined
    try {
      status = await session.readStatus()
      if (!status) problems.push(`no agent has reported for node ${options.node} yet (${StorePaths.status(options.node)} is absent): run comet init, then comet watch or comet verify`)
    } catch (error) {
      if (!(error instanceof CometError)) throw error
      storeError = error.message
      problems.push(`cannot read the node's status: ${error.message}`)
    }
    const now = (request.now ?? new Date()).getTime()
    const heartbeatAgeSeconds = status?.heartbeatAt ? Math.max(0, Math.round((now - Date.parse(status.heartbeatAt)) / 1000)) : undefined
    if (status?.state === 'error') problems.push(`the agent reports an error${status.detail ? `: ${status.detail}` : ''}`)
    if (status && request.maxAgeSeconds !== undefined && (heartbeatAgeSeconds === undefined || heartbeatAgeSeconds > request.maxAgeSeconds))
      problems.push(heartbeatAgeSeconds === undefined ? 'the agent has never sent a heartbeat' : `the last heartbeat is ${heartbeatAgeSeconds} s old (more than --max-age ${request.maxAgeSeconds} s): the agent is silent`)
    const pid = runningWatchPid(session.paths.pidFile)
    if (request.requireWatch && pid === undefined) problems.push(`no comet watch is running for node ${options.node} on this machine`)
    const spooledReports = session.spool.depth
    const tampered = status !== undefined && TAMPERED_STATES.has(status.state)
    return {
      node: options.node,
      store: session.store.description,
      status,
      storeError,
      heartbeatAgeSeconds,
      watch: pid === undefined ? {running: false} : {running: true, pid},
      spooledReports,
      latchedProcedures: session.latch.procedures,
      problems,
      exitCode: tampered ? ExitCode.Tampered : problems.length > 0 ? ExitCode.CannotCheck : ExitCode.Ok,
    }
  } finally {
    await session.close()
  }
}
