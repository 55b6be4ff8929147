import type {AgentOptions} from '../config/agent-options.js'
import {UsageError} from '../errors/index.js'
import type {Incident} from '../report/node-status.js'
import type {DeliveryResult} from '../report/status-reporter.js'
import {AgentSession} from './session.js'

export interface FenceRequest {
  procedure?: string
  sentinel?: string
  dryRun?: boolean
}

export interface FenceResult {
  node: string
  dryRun: boolean
  incident: Incident
  report: DeliveryResult
}

/**
 * `comet fence`: the operator's trigger. With --sentinel, that sentinel's procedure; with --procedure, that
 * one; with neither, every procedure of the node. Runs even after an earlier incident, and is recorded like one.
 */
export async function fenceManually(options: AgentOptions, request: FenceRequest = {}): Promise<FenceResult> {
  const session = await AgentSession.open(options, {readOnly: request.dryRun})
  try {
    const {topology} = await session.loadTopology()
    const known = topology.sentinels.find((sentinel) => sentinel.path === request.sentinel)
    if (request.sentinel !== undefined && !known) throw new UsageError(`${request.sentinel} is not a sentinel of node ${options.node}`, {culprit: request.sentinel})
    if (request.procedure !== undefined && !(request.procedure in topology.procedures))
      throw new UsageError(`no fencing procedure named ${request.procedure} for node ${options.node} (known: ${Object.keys(topology.procedures).join(', ')})`, {culprit: request.procedure})
    const names = request.procedure ? [request.procedure] : known ? [known.procedure] : Object.keys(topology.procedures).sort()
    const at = new Date().toISOString()
    const tripped = names.map((procedure) => ({path: request.sentinel ?? '', reason: 'manual' as const, detail: 'triggered by an operator with comet fence', at, procedure}))
    const fencing = session.fencer.trip(tripped, 'manual', {dryRun: request.dryRun, force: true})
    const incident = await fencing.finished
    const report = request.dryRun ? {delivered: 0, pending: 0} : await session.reporter.submit(session.incidentReport(incident))
    return {node: options.node, dryRun: request.dryRun === true, incident, report}
  } finally {
    await session.close()
  }
}
