import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {IdentityTable} from '../cache/identity-table.js'
import {CreatedJournal, readLocalRecord, readTopologyCache, writeLocalRecord, writeTopologyCache, type LocalRecord, type TopologyCache} from '../cache/node-cache.js'
import type {AgentOptions} from '../config/agent-options.js'
import {CometError, StoreUnavailableError} from '../errors/index.js'
import {checkPrivateDirectoryIfPresent, ensurePrivateDirectory} from '../files/private-path.js'
import {FenceLatch} from '../fence/fence-latch.js'
import {Fencer} from '../fence/fencer.js'
import {ProcedureRunner} from '../fence/procedure-runner.js'
import type {Incident, NodeStatus, SentinelCounts, StatusReport} from '../report/node-status.js'
import {ReportSpool} from '../report/report-spool.js'
import {StatusReporter} from '../report/status-reporter.js'
import {inspectSentinel, inspectSentinels, inspectSentinelShallow, type Finding} from '../sentinel/inspect-sentinel.js'
import type {SentinelReading} from '../sentinel/read-sentinel.js'
import {readSentinelsAsync} from '../sentinel/read-sentinels.js'
import {openStore} from '../store/open-store.js'
import {StorePaths, type KvStore} from '../store/store.js'
import {readTopology} from '../topology/read-topology.js'
import type {SentinelSpec, Topology} from '../topology/topology.js'
import {topologyDigest} from '../topology/topology-digest.js'

export const AGENT_VERSION = '0.1.0'

export interface NodePaths {
  root: string
  /** The last known-good topology and procedures, read only when the store cannot be. */
  cache: string
  /** What only this machine knows: the sentinels' identities, the files it created. */
  identities: string
  latch: string
  spool: string
  runs: string
  pidFile: string
  /** Paths comet reset --replant is planting anew (see replant-notice.ts). */
  replanting: string
  /** Files comet init created and has not folded into identities.json yet. */
  createdJournal: string
}

export interface LoadedTopology {
  topology: Topology
  /** topologyDigest(topology), computed once, so that a caller can tell whether it changed. */
  digest: string
  source: 'store' | 'cache'
  /** Why the cache was used, when it was. */
  detail?: string
}

export function nodePaths(stateDir: string, node: string): NodePaths {
  const root = join(stateDir, 'nodes', node)
  return {root, cache: join(root, 'cache.json'), identities: join(root, 'identities.json'), latch: join(root, 'latch.json'), spool: join(root, 'spool'), runs: join(root, 'runs'), pidFile: join(root, 'watch.pid'), replanting: join(root, 'replanting.json'), createdJournal: join(root, 'created.journal')}
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
  local: LocalRecord
  readonly createdJournal: CreatedJournal
  private topologyCache?: TopologyCache | null

  private constructor(
    readonly options: AgentOptions,
    readonly store: KvStore,
    readonly paths: NodePaths,
    readonly readOnly: boolean,
    /** A resident agent (comet watch): keeps every sentinel for its life, so its topology is held compactly. */
    readonly resident: boolean,
  ) {
    this.createdJournal = new CreatedJournal(paths.createdJournal)
    this.local = this.readLocal()
    this.latch = new FenceLatch(paths.latch)
    this.runner = new ProcedureRunner({outputDirectory: paths.runs, timeoutMs: options.procedureTimeoutMs, baseEnvironment: {COMET_NODE: options.node}})
    this.spool = new ReportSpool(paths.spool)
    this.reporter = new StatusReporter(store, options.node, this.spool, options.reportTimeoutMs)
    // Its procedures come with the topology (loadTopology), from the store or else from the local cache.
    this.fencer = new Fencer(options.node, {}, this.latch, this.runner)
  }

  /** A read-only session (dry runs) creates nothing on disk, but still refuses unsafe state. */
  static async open(options: AgentOptions, {readOnly = false, resident = false} = {}): Promise<AgentSession> {
    const paths = nodePaths(options.stateDir, options.node)
    if (readOnly) checkPrivateDirectoryIfPresent(options.stateDir) && checkPrivateDirectoryIfPresent(paths.root)
    else for (const directory of [options.stateDir, paths.root, paths.spool, paths.runs]) ensurePrivateDirectory(directory)
    const store = await openStore(options)
    return new AgentSession(options, store, paths, readOnly, resident)
  }

  get node(): string {
    return this.options.node
  }

  /** The store is the source of truth; when it cannot be reached, the last known-good local cache stands in. */
  async loadTopology(): Promise<LoadedTopology> {
    try {
      const {topology} = await readTopology(this.store, this.node, this.options.readTimeoutMs, {ownPaths: this.resident})
      return {topology, digest: this.adoptTopology(topology), source: 'store'}
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error
      const cache = this.cachedTopology()
      if (!cache) throw new CometError(`${error.message}; and there is no local cache to work from (run comet init once while the store is reachable)`, {cause: error})
      this.fencer.updateProcedures(cache.topology.procedures)
      const detail = `store unreachable (${error.message}); working from the local cache of ${cache.savedAt}`
      // The cache's digest was checked against its topology when it was read.
      return {topology: cache.topology, digest: cache.digest, source: 'cache', detail}
    }
  }

  /** The topology last cached on this machine, read on first use. */
  cachedTopology(): TopologyCache | undefined {
    if (this.topologyCache === undefined) this.topologyCache = readTopologyCache(this.paths.cache, this.node) ?? null
    return this.topologyCache ?? undefined
  }

  /** Keeps the cache in step with the store, and the fencer with the cache; returns the topology's digest. */
  adoptTopology(topology: Topology): string {
    this.fencer.updateProcedures(topology.procedures)
    const digest = topologyDigest(topology)
    // Identities are only ever recorded for the topology's paths: with the same topology, there is nothing to
    // prune. The resident agent re-keys them all the same, so that it holds one copy of each path.
    const pruned = (digest !== this.local.topologyDigest || this.resident) && this.local.baselines.retain(topology.sentinels.map((sentinel) => sentinel.path))
    if (digest !== this.local.topologyDigest || !existsSync(this.paths.cache)) {
      this.topologyCache = {node: this.node, store: this.store.description, savedAt: new Date().toISOString(), digest, topology}
      if (!this.readOnly) writeTopologyCache(this.paths.cache, this.topologyCache)
      // Written after cache.json: a crash in between leaves an old digest, and the next start writes the cache again.
      this.local.topologyDigest = digest
      this.saveLocal()
    } else if (pruned) this.saveLocal()
    return digest
  }

  /** Reads identities.json again: another comet process (comet reset --replant) may have recorded new identities. */
  reloadLocal(): void {
    this.local = this.readLocal()
  }

  /** identities.json, with what an unfinished comet init journaled since. */
  private readLocal(): LocalRecord {
    const local = readLocalRecord(this.paths.identities, this.node) ?? {node: this.node, baselines: new IdentityTable(), created: {}}
    Object.assign(local.created, CreatedJournal.read(this.paths.createdJournal))
    return local
  }

  /** Remembers a file comet init created, before the store hears of it (see CreatedJournal). */
  noteCreated(path: string, checksum: string): void {
    this.local.created[path] = checksum
    if (!this.readOnly) this.createdJournal.append(path, checksum)
  }

  saveLocal(): void {
    if (this.readOnly) return
    writeLocalRecord(this.paths.identities, this.local)
    // Every journaled file is in identities.json now.
    this.createdJournal.remove()
  }

  inspect(sentinel: SentinelSpec, shallow = false): Finding {
    const baseline = this.local.baselines.get(sentinel.path)
    return shallow ? inspectSentinelShallow(sentinel, baseline) : inspectSentinel(sentinel, baseline)
  }

  /** Every sentinel of a full check, read in bulk; `prefetched`: readings already taken (see prefetchReadings). */
  inspectAll(sentinels: SentinelSpec[], shallow = false, prefetched?: Map<string, SentinelReading>): Finding[] {
    const baselines = this.local.baselines
    return inspectSentinels(sentinels, (path) => baselines.get(path), shallow, prefetched)
  }

  /**
   * Starts reading, off the JavaScript thread, the sentinels this machine recorded last time, so that a one-shot
   * check reads them while it reads and parses the store (at 100 000 sentinels, both take a few hundred
   * milliseconds). A sentinel new to the topology is read when it is checked. Never rejects.
   */
  prefetchReadings(): Promise<Map<string, SentinelReading> | undefined> {
    const paths = [...this.local.baselines.paths()]
    if (paths.length === 0) return Promise.resolve(undefined)
    return readSentinelsAsync(paths, paths.map((path) => this.local.baselines.get(path)?.size)).then(
      (readings) => new Map(paths.map((path, index) => [path, readings[index]])),
      () => undefined,
    )
  }

  /** Records the identity of intact sentinels that have none yet (first check after init or a lost record). */
  recordMissingBaselines(findings: Finding[]): void {
    let changed = false
    for (const finding of findings)
      if (finding.verdict === 'intact' && !this.local.baselines.has(finding.path)) {
        this.local.baselines.set(finding.path, finding.identity)
        changed = true
      }
    if (changed) this.saveLocal()
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
    this.createdJournal.close()
    this.runner.close()
    await this.store.close()
  }
}

export function countFindings(findings: Finding[]): SentinelCounts {
  const counts: SentinelCounts = {total: findings.length, intact: 0, tampered: 0, unrecorded: 0, unverifiable: 0}
  for (const finding of findings) counts[finding.verdict] += 1
  return counts
}
