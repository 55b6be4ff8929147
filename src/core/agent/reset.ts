import {lstatSync, unlinkSync} from 'node:fs'

import type {AgentOptions} from '../config/agent-options.js'
import {errnoCode} from '../errors/index.js'
import type {DeliveryResult} from '../report/status-reporter.js'
import {createSentinel} from '../sentinel/create-sentinel.js'
import {readSentinel} from '../sentinel/read-sentinel.js'
import type {SentinelSpec} from '../topology/topology.js'
import {recordChecksums, type ChecksumUpdate} from './record-checksums.js'
import {writeReplantNotice} from './replant-notice.js'
import {AgentSession} from './session.js'
import {runningWatchPid} from './watch-pid.js'

export interface ResetRequest {
  /** Plant tripped sentinels anew (create) or accept their current content (already_present). */
  replant?: boolean
}

export interface ResetResult {
  node: string
  /** Procedures that may run again. */
  cleared: string[]
  replanted: Array<{path: string; action: 'created' | 'accepted' | 'failed'; detail?: string}>
  /** Sentinels whose mode, owner and mtime are accepted as they are now (their warnings end). */
  rebaselined: number
  /** A running `comet watch` was told to reload. */
  watchNotified: boolean
  report: DeliveryResult
}

/** `comet reset`: leaves the fenced state once an incident has been handled. */
export async function resetNode(options: AgentOptions, request: ResetRequest = {}): Promise<ResetResult> {
  const session = await AgentSession.open(options)
  try {
    let {topology} = await session.loadTopology()
    const replanted: ResetResult['replanted'] = []
    const before = request.replant ? session.inspectAll(topology.sentinels) : []
    const tripped = topology.sentinels.filter((_, index) => before[index]?.verdict === 'tampered')
    // Before any file changes: a running agent must take the new files for the reset's, not for tampering.
    if (tripped.length > 0) writeReplantNotice(session.paths.replanting, tripped.map((sentinel) => sentinel.path))
    const cleared = session.latch.procedures
    session.latch.clear()
    if (request.replant) {
      const updates: ChecksumUpdate[] = []
      for (const sentinel of tripped) {
        try {
          const checksum = replant(sentinel)
          updates.push({path: sentinel.path, mode: sentinel.mode, checksum, previous: sentinel.checksum})
          session.local.baselines.delete(sentinel.path)
          replanted.push({path: sentinel.path, action: sentinel.mode === 'create' ? 'created' : 'accepted'})
        } catch (error) {
          replanted.push({path: sentinel.path, action: 'failed', detail: (error as Error).message})
        }
      }
      if (updates.length > 0) topology = await recordChecksums(session, updates)
      session.adoptTopology(topology)
    }
    let rebaselined = 0
    // An intact sentinel's current identity becomes its baseline, so its metadata warnings end here.
    const findings = session.inspectAll(topology.sentinels).map((finding) => (finding.verdict === 'intact' ? {...finding, warnings: []} : finding))
    for (const finding of findings)
      if (finding.verdict === 'intact') {
        session.local.baselines.set(finding.path, finding.identity)
        rebaselined++
      }
    session.saveLocal()
    session.spool.add({type: 'reset', at: new Date().toISOString()})
    const report = await session.reporter.submit(session.checkReport(findings, 'reset'))
    return {node: options.node, cleared, replanted, rebaselined, watchNotified: notifyWatch(session.paths.pidFile), report}
  } finally {
    await session.close()
  }
}

function replant(sentinel: SentinelSpec): string {
  if (sentinel.mode === 'already_present') {
    const reading = readSentinel(sentinel.path)
    if (reading.kind !== 'file') throw new Error(`${sentinel.path} is ${reading.kind === 'missing' ? 'gone' : 'not a regular file'}: restore it first, then reset again`)
    return reading.checksum
  }
  try {
    const stats = lstatSync(sentinel.path)
    if (stats.isDirectory()) throw new Error(`${sentinel.path} is now a directory; remove it by hand`)
    // unlink removes a symlink itself, never its target.
    unlinkSync(sentinel.path)
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error
  }
  return createSentinel(sentinel.path).checksum
}

/** `comet watch` keeps the latch in memory; SIGHUP makes it re-read the latch and the topology. */
function notifyWatch(pidFile: string): boolean {
  const pid = runningWatchPid(pidFile)
  if (pid === undefined) return false
  try {
    process.kill(pid, 'SIGHUP')
    return true
  } catch {
    return false
  }
}
