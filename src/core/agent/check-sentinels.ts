import {ExitCode} from '../errors/index.js'
import type {FenceOptions, Fencing} from '../fence/fencer.js'
import type {Incident, SentinelCounts, TrippedSentinel} from '../report/node-status.js'
import type {Finding} from '../sentinel/inspect-sentinel.js'
import type {SentinelReading} from '../sentinel/read-sentinel.js'
import {locateRenamed} from '../sentinel/locate-renamed.js'
import type {Topology} from '../topology/topology.js'
import {countFindings, type AgentSession} from './session.js'

export interface SentinelResult {
  path: string
  procedure: string
  verdict: Finding['verdict']
  reason?: string
  detail?: string
  warnings: string[]
}

export interface CheckOutcome {
  findings: Finding[]
  counts: SentinelCounts
  fencing?: Fencing
}

/** A full pass: inspect every sentinel, and fence on the tampered ones (unless told not to). */
export interface CheckScope {
  /** The periodic check under fanotify: metadata first, content only where it differs (see inspectSentinelShallow). */
  shallow?: boolean
  /** Readings already taken (see AgentSession.prefetchReadings). */
  prefetched?: Map<string, SentinelReading>
  /** Paths comet reset --replant is planting anew: not tampering (see replant-notice.ts). */
  replanting?: Set<string>
}

export function checkAllSentinels(session: AgentSession, topology: Topology, source: Incident['source'], options: FenceOptions = {}, scope: CheckScope = {}): CheckOutcome {
  // findings[i] is the finding of topology.sentinels[i].
  const findings = session.inspectAll(topology.sentinels, scope.shallow, scope.prefetched)
  const tripped: TrippedSentinel[] = []
  findings.forEach((finding, index) => {
    if (finding.verdict === 'tampered' && !session.latch.hasTripped(finding.path, finding.reason) && !scope.replanting?.has(finding.path))
      tripped.push(toTripped(finding, topology.sentinels[index].procedure))
  })
  const fencing = tripped.length > 0 ? session.fencer.trip(tripped, source, options) : undefined
  session.recordMissingBaselines(findings)
  if (fencing) refineRenames(session, fencing.incident)
  return {findings, counts: countFindings(findings), fencing}
}

export function toTripped(finding: Extract<Finding, {verdict: 'tampered'}>, procedure: string): TrippedSentinel {
  return {path: finding.path, reason: finding.reason, detail: finding.detail, at: new Date().toISOString(), procedure}
}

/** Tells "renamed" from "deleted" once the procedures run: the procedure saw `deleted`, the record says where the file went. */
export function refineRenames(session: AgentSession, incident: Incident): void {
  for (const sentinel of incident.sentinels) {
    if (sentinel.reason !== 'deleted') continue
    const baseline = session.local.baselines.get(sentinel.path)
    const renamedTo = baseline && locateRenamed(sentinel.path, baseline)
    if (renamedTo) {
      sentinel.reason = 'renamed'
      sentinel.detail = `renamed to ${renamedTo}`
    }
  }
}

/** findings[i] is the finding of topology.sentinels[i], as checkAllSentinels() returns them. */
export function describeFindings(findings: Finding[], topology: Topology): SentinelResult[] {
  return findings.map((finding, index) => ({
    path: finding.path,
    procedure: topology.sentinels[index].procedure,
    verdict: finding.verdict,
    reason: finding.verdict === 'tampered' ? finding.reason : undefined,
    detail: 'detail' in finding ? finding.detail : undefined,
    warnings: finding.warnings,
  }))
}

export function exitCodeFor(counts: SentinelCounts) {
  if (counts.tampered > 0) return ExitCode.Tampered
  if (counts.unrecorded > 0 || counts.unverifiable > 0) return ExitCode.CannotCheck
  return ExitCode.Ok
}
