import {randomBytes} from 'node:crypto'
import {performance} from 'node:perf_hooks'

import type {Incident, TrippedSentinel} from '../report/node-status.js'
import type {FenceLatch} from './fence-latch.js'
import type {ProcedureRun} from './procedure-run.js'
import type {ProcedureRunner} from './procedure-runner.js'

export interface FenceOptions {
  /** Record the incident, run nothing (verify --no-fence). */
  noFence?: boolean
  dryRun?: boolean
  /** Run even if the latch is closed (an operator's comet fence). */
  force?: boolean
  /** Processes caught at the sentinel: COMET_SUSPECT_PIDS for the procedures. */
  suspects?: number[]
}

export interface Fencing {
  incident: Incident
  /** Resolves when every started procedure has ended (or was killed after its timeout). */
  finished: Promise<Incident>
  /** performance.now() once every procedure was handed to the launcher, before the latch is written to disk. */
  launchedAt: number
}

export function newIncidentId(): string {
  return `inc-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
}

/**
 * Turns tripped sentinels into running procedures: one run per procedure, at most once until reset. Nothing
 * here waits on the store, the network or a log line.
 */
export class Fencer {
  constructor(
    private readonly node: string,
    private procedures: Record<string, string>,
    private readonly latch: FenceLatch,
    private readonly runner: ProcedureRunner,
  ) {}

  updateProcedures(procedures: Record<string, string>): void {
    this.procedures = procedures
  }

  trip(tripped: TrippedSentinel[], source: Incident['source'], options: FenceOptions = {}): Fencing {
    const id = newIncidentId()
    const runs: ProcedureRun[] = []
    const finishing: Promise<ProcedureRun>[] = []
    const seen = new Set<string>()
    let latched = false
    for (const sentinel of tripped) if (!options.dryRun && !options.noFence && !options.force) latched = this.latch.noteTripped(sentinel.path, sentinel.reason) || latched
    for (const sentinel of tripped) {
      const name = sentinel.procedure
      if (seen.has(name)) continue
      seen.add(name)
      const skipped = options.dryRun ? 'dry-run' : options.noFence ? 'no-fence' : undefined
      if (skipped) {
        runs.push({name, runId: '', startedAt: new Date().toISOString(), skipped})
        continue
      }
      const text = this.procedures[name]
      if (text === undefined) {
        // Not latched: a procedure that never ran must still run once it is known.
        runs.push({name, runId: '', startedAt: new Date().toISOString(), error: `procedure ${name} is not in the local cache`})
        continue
      }
      if (options.force) this.latch.force(name, id)
      else if (!this.latch.tryAcquire(name, id)) {
        runs.push({name, runId: '', startedAt: new Date().toISOString(), skipped: 'already-ran'})
        continue
      }
      latched = true
      const started = this.runner.start(name, text, {
        COMET_NODE: this.node,
        COMET_SENTINEL: sentinel.path,
        COMET_REASON: sentinel.reason,
        COMET_INCIDENT: id,
        COMET_SUSPECT_PIDS: (options.suspects ?? []).join(' '),
      })
      runs.push(started.run)
      finishing.push(started.finished)
    }
    const launchedAt = performance.now()
    if (latched) this.latch.persist()
    const incident: Incident = {id, source, startedAt: runs[0]?.startedAt ?? new Date().toISOString(), sentinels: tripped, procedures: runs}
    if (finishing.length === 0) {
      incident.endedAt = incident.startedAt
      return {incident, finished: Promise.resolve(incident), launchedAt}
    }
    const finished = Promise.all(finishing).then(() => {
      incident.endedAt = new Date().toISOString()
      return incident
    })
    return {incident, finished, launchedAt}
  }
}
