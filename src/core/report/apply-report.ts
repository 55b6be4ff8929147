import type {Incident, NodeState, NodeStatus, StatusReport} from './node-status.js'

const INCIDENTS_KEPT = 50

export function emptyStatus(node: string): NodeStatus {
  return {
    node,
    state: 'ok',
    sentinels: {total: 0, intact: 0, tampered: 0, unrecorded: 0, unverifiable: 0},
    warnings: [],
    fencedProcedures: [],
    runningProcedures: 0,
    incidentsTotal: 0,
    fencingStarted: {},
    incidents: [],
  }
}

/**
 * Folds one report into a node's status. Replaying a report changes nothing more, so a report delivered
 * twice (the spool retried after a timeout that had in fact succeeded) is harmless.
 */
export function applyReport(status: NodeStatus, report: StatusReport): NodeStatus {
  const next: NodeStatus = {...status, incidents: [...status.incidents], fencingStarted: {...status.fencingStarted}}
  switch (report.type) {
    case 'check': {
      next.heartbeatAt = later(next.heartbeatAt, report.at)
      next.lastCheckAt = later(next.lastCheckAt, report.at)
      next.sentinels = report.counts
      next.warnings = report.warnings
      next.detail = report.detail
      next.runningProcedures = report.running
      if (report.agent) next.agent = report.agent
      next.state = deriveState(next, report.error === true)
      break
    }
    case 'incident': {
      const index = next.incidents.findIndex((incident) => incident.id === report.incident.id)
      const previous = index >= 0 ? next.incidents[index] : undefined
      // Reports may arrive out of order (two processes, a clock step): an ended incident is never reopened.
      if (index >= 0) next.incidents[index] = previous?.endedAt && !report.incident.endedAt ? previous : report.incident
      else {
        next.incidents.push(report.incident)
        next.incidentsTotal += 1
        next.lastIncidentAt = later(next.lastIncidentAt, report.incident.startedAt)
      }
      for (const run of newlyStarted(previous, report.incident)) next.fencingStarted[run.name] = (next.fencingStarted[run.name] ?? 0) + 1
      next.incidents = next.incidents.slice(-INCIDENTS_KEPT)
      next.fencedProcedures = [...new Set([...next.fencedProcedures, ...report.fencedProcedures])].sort()
      next.runningProcedures = report.running
      next.state = deriveState(next, false)
      break
    }
    case 'reset': {
      next.fencedProcedures = []
      next.state = 'ok'
      next.detail = `reset at ${report.at}`
      break
    }
  }
  return next
}

function deriveState(status: NodeStatus, error: boolean): NodeState {
  if (status.runningProcedures > 0) return 'fencing'
  if (status.fencedProcedures.length > 0) return 'fenced'
  const trippedSinceLastCheck = status.lastIncidentAt !== undefined && (status.lastCheckAt === undefined || status.lastIncidentAt > status.lastCheckAt)
  if (status.sentinels.tampered > 0 || trippedSinceLastCheck) return 'tampered'
  return error ? 'error' : 'ok'
}

function newlyStarted(previous: Incident | undefined, incident: Incident) {
  const known = new Set(previous?.procedures.filter((run) => !run.skipped).map((run) => run.runId))
  return incident.procedures.filter((run) => !run.skipped && !run.error && !known.has(run.runId))
}

function later(a: string | undefined, b: string): string {
  return a !== undefined && a > b ? a : b
}
