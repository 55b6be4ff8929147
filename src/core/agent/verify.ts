import type {AgentOptions} from '../config/agent-options.js'
import type {ExitCode} from '../errors/index.js'
import type {Incident, SentinelCounts} from '../report/node-status.js'
import type {DeliveryResult} from '../report/status-reporter.js'
import {checkAllSentinels, describeFindings, exitCodeFor, type SentinelResult} from './check-sentinels.js'
import {AgentSession} from './session.js'

export interface VerifyRequest {
  noFence?: boolean
}

export interface VerifyResult {
  node: string
  store: string
  /** Where the checksums came from: the store, or the local cache when the store was unreachable. */
  source: 'store' | 'cache'
  detail?: string
  exitCode: ExitCode
  counts: SentinelCounts
  sentinels: SentinelResult[]
  incident?: Incident
  report: DeliveryResult
}

/** The one-shot check for cron: 0 all intact, 1 tampering found (fencing started unless noFence), 2 could not check. */
export async function verifyNode(options: AgentOptions, request: VerifyRequest = {}): Promise<VerifyResult> {
  const session = await AgentSession.open(options)
  try {
    const prefetch = session.prefetchReadings()
    const loaded = await session.loadTopology()
    const outcome = checkAllSentinels(session, loaded.topology, 'verify', {noFence: request.noFence}, {prefetched: await prefetch})
    if (outcome.fencing) await session.reporter.submit(session.incidentReport(outcome.fencing.incident))
    const incident = outcome.fencing ? await outcome.fencing.finished : undefined
    if (incident) session.spool.add(session.incidentReport(incident))
    const report = await session.reporter.submit(session.checkReport(outcome.findings, 'verify', loaded.detail))
    return {
      node: options.node,
      store: session.store.description,
      source: loaded.source,
      detail: loaded.detail,
      exitCode: exitCodeFor(outcome.counts),
      counts: outcome.counts,
      sentinels: describeFindings(outcome.findings, loaded.topology),
      incident,
      report,
    }
  } finally {
    await session.close()
  }
}
