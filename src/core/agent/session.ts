import {join} from 'node:path'

import {readNodeCache, writeNodeCache, type NodeCache} from '../cache/node-cache.js'
import type {AgentOptions} from '../config/agent-options.js'
import {CometError, StoreUnavailableError} from '../errors/index.js'
import {checkPrivateDirectoryIfPresent, ensurePrivateDirectory} from '../files/private-path.js'
import {FenceLatch} from '../fence/fence-latch.js'
import {Fencer} from '../fence/fencer.js'
import {ProcedureRunner} from '../fence/procedure-runner.js'
import type {Incident, NodeStatus, SentinelCounts, StatusReport} from '../report/node-status.js'
import {ReportSpool} from '../report/report-spool.js'
import {StatusReporter} from '../report/status-reporter.js'
import {inspectSentinel, inspectSentinelShallow, type Finding} from '../sentinel/inspect-sentinel.js'
import {openStore} from '../store/open-store.js'
import {StorePaths, type KvStore} from '../store/store.js'
import {readTopology} from '../topology/read-topology.js'
import type {SentinelSpec, Topology} from '../topology/topology.js'
import {topologyDigest} from '../topology/topology-digest.js'

export const AGENT_VERSION = '0.1.0'

export interface NodePaths {
  root: string
  cache: string
  latch: string
  spool: string
  runs: string
  pidFile: string
}

export interface LoadedTopology {
  topology: Topology
  source: 'store' | 'cache'
  /** Why the cache was used, when it was. */
  detail?: string
}

export function nodePaths(stateDir: string, node: string): NodePaths {
  const root = join(stateDir, 'nodes', node)
  return {root, cache: join(root, 'cache.json'), latch: join(root, 'latch.json'), spool: join(root, 'spool'), runs: join(root, 'runs'), pidFile: join(root, 'watch.pid')}
}

/**
 * One node's agent on this machine: its store, its local state (cache, latch, spool) and the parts that fence.
 * Every use case (verify, watch, fence, reset) starts from here.
 */
export class AgentSession {
  readonly latch: FenceLatch
  readonly runner: ProcedureRunner
  readonly spool: ReportSpool
  readonly reporter: StatusReporter
  readonly fencer: Fencer
  cache?: NodeCache

  private constructor(
    readonly options: AgentOptions,
    readonly store: KvStore,
    readonly paths: NodePaths,
    readonly readOnly: boolean,
  ) {
    this.cache = readNodeCache(paths.cache, options.node)
    this.latch = new FenceLatch(paths.latch)
    this.runner = new ProcedureRunner({outputDirectory: paths.runs, timeoutMs: options.procedureTimeoutMs, baseEnvironment: {COMET_NODE: options.node}})
    this.spool = new ReportSpool(paths.spool)
    this.reporter = new StatusReporter(store, options.node, this.spool, options.reportTimeoutMs)
    this.fencer = new Fencer(options.node, this.cache?.topology.procedures ?? {}, this.latch, this.runner)
  }

  /** A read-only session (dry runs) creates nothing on disk, but still refuses unsafe state. */
  static async open(options: AgentOptions, {readOnly = false} = {}): Promise<AgentSession> {
    const paths = nodePaths(options.stateDir, options.node)
    if (readOnly) checkPrivateDirectoryIfPresent(options.stateDir) && checkPrivateDirectoryIfPresent(paths.root)
    else for (const directory of [options.stateDir, paths.root, paths.spool, paths.runs]) ensurePrivateDirectory(directory)
    const store = await openStore(options)
    return new AgentSession(options, store, paths, readOnly)
  }

  get node(): string {
    return this.options.node
  }

  /** The store is the source of truth; when it cannot be reached, the last known-good local cache stands in. */
  async loadTopology(): Promise<LoadedTopology> {
    try {
      const {topology} = await readTopology(this.store, this.node, this.options.readTimeoutMs)
      this.adoptTopology(topology)
      return {topology, source: 'store'}
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error
      if (!this.cache) throw new CometError(`${error.message}; and there is no local cache to work from (run comet init once while the store is reachable)`, {cause: error})
      const detail = `store unreachable (${error.message}); working from the local cache of ${this.cache.savedAt}`
      return {topology: this.cache.topology, source: 'cache', detail}
    }
  }

  /** Keeps the cache in step with the store, and the fencer with the cache. */
  adoptTopology(topology: Topology): void {
    const cache: NodeCache = this.cache ?? {node: this.node, store: this.store.description, savedAt: '', topology, baselines: {}, created: {}}
    const paths = new Set(topology.sentinels.map((sentinel) => sentinel.path))
    for (const path of Object.keys(cache.baselines)) if (!paths.has(path)) delete cache.baselines[path]
    const unchanged = this.cache !== undefined && topologyDigest(cache.topology) === topologyDigest(topology)
    cache.topology = topology
    cache.store = this.store.description
    this.cache = cache
    this.fencer.updateProcedures(topology.procedures)
    if (!unchanged) this.saveCache()
  }

  saveCache(): void {
    if (this.cache && !this.readOnly) writeNodeCache(this.paths.cache, this.cache)
  }

  inspect(sentinel: SentinelSpec, shallow = false): Finding {
    const baseline = this.cache?.baselines[sentinel.path]
    return shallow ? inspectSentinelShallow(sentinel, baseline) : inspectSentinel(sentinel, baseline)
  }

  /** Records the identity of intact sentinels that have none yet (first check after init or a lost cache). */
  recordMissingBaselines(findings: Finding[]): void {
    if (!this.cache) return
    let changed = false
    for (const finding of findings)
      if (finding.verdict === 'intact' && !this.cache.baselines[finding.path]) {
        this.cache.baselines[finding.path] = finding.identity
        changed = true
      }
    if (changed) this.saveCache()
  }

  checkReport(findings: Finding[], mode: string, detail?: string, error = false, detector?: string): StatusReport {
    return {
      type: 'check',
      at: new Date().toISOString(),
      counts: countFindings(findings),
      warnings: findings.flatMap((finding) => finding.warnings.map((warning) => `${finding.path}: ${warning}`)),
      running: this.runner.running,
      detail,
      error,
      agent: {version: AGENT_VERSION, pid: process.pid, mode, detector},
    }
  }

  incidentReport(incident: Incident): StatusReport {
    return {type: 'incident', incident, fencedProcedures: this.latch.procedures, running: this.runner.running}
  }

  async readStatus(): Promise<NodeStatus | undefined> {
    return (await this.store.read<NodeStatus>(StorePaths.status(this.node), {timeoutMs: this.options.readTimeoutMs}))?.data
  }

  async close(): Promise<void> {
    this.runner.close()
    await this.store.close()
  }
}

export function countFindings(findings: Finding[]): SentinelCounts {
  const counts: SentinelCounts = {total: findings.length, intact: 0, tampered: 0, unrecorded: 0, unverifiable: 0}
  for (const finding of findings) counts[finding.verdict] += 1
  return counts
}
