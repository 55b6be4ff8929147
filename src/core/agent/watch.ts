import {unlinkSync} from 'node:fs'
import {basename, dirname, join} from 'node:path'
import {performance} from 'node:perf_hooks'

import type {AgentOptions} from '../config/agent-options.js'
import {CometError} from '../errors/index.js'
import {writeFileAtomic} from '../files/atomic-write.js'
import {openDirectoryWatcher, type DirectoryWatcher} from '../detect/directory-watcher.js'
import {describeProcess, type Decision, type FanotifyEvent, type ProcessInfo} from '../detect/fanotify.js'
import type {Fencing} from '../fence/fencer.js'
import {releaseMemory} from '../native/release-memory.js'
import type {SuspectProcess} from '../report/node-status.js'
import type {SentinelSpec, Topology} from '../topology/topology.js'
import {checkAllSentinels, refineRenames, toTripped} from './check-sentinels.js'
import {readReplantNotice, removeReplantNotice} from './replant-notice.js'
import {SentinelReadGuard} from './read-guard.js'
import {AgentSession} from './session.js'

export type LogLevel = 'info' | 'warn' | 'error'
export type Logger = (level: LogLevel, message: string) => void

/** What the agent tells its metrics, if any are attached (comet watch --metrics-listen). */
export interface WatchObserver {
  knownProcedures?(names: string[]): void
  onCheck?(counts: {intact: number; tampered: number; total: number}): void
  onDetection?(latencySeconds: number, procedure: string): void
  onReport?(delivered: boolean, spoolDepth: number): void
}

export interface WatchRequest {
  /** A full re-verify (and heartbeat) this often. */
  intervalMs: number
  /** false: inotify only, even where fanotify is available. */
  fanotify?: boolean
  log: Logger
  observer?: WatchObserver
}

const RETRY_MIN_MS = 1000
const RECENT_INCIDENTS_KEPT = 1000
const OVERFLOW_CHECK_GAP_MS = 5000
/** A writer fanotify names after the trip joins the incident if it comes this soon: later, it is another story. */
const WRITER_ATTRIBUTION_MS = 10_000
const RETRY_MAX_MS = 30_000
const DRAIN_ON_STOP_MS = 5000

/**
 * `comet watch`: a full verify first, then inotify on the sentinels' directories, a full re-verify every
 * interval, and the spool retried until the store has every report.
 */
export class WatchAgent {
  private topology!: Topology
  private topologyDigest = ''
  private byPath = new Map<string, SentinelSpec>()
  private byDirectory = new Map<string, SentinelSpec[]>()
  private readonly watcher: DirectoryWatcher
  private interval?: NodeJS.Timeout
  private retry?: NodeJS.Timeout
  private retryDelay = RETRY_MIN_MS
  private offlineDetail?: string
  private readGuard?: SentinelReadGuard
  /** Which detectors run, for the status and the log: fanotify and inotify, or inotify alone and why. */
  private detector: string
  /** One incident per process and sentinel: a reader denied once tends to try again. */
  private readonly readers = new Set<string>()
  private overflowCheckQueued = false
  private overflowTimer?: NodeJS.Timeout
  private lastOverflowCheck = 0
  /** Directories inotify refused, said once each until they can be watched again. */
  private unwatchable = new Set<string>()
  /** The latest incident of each sentinel, so that a writer named after the trip joins it. */
  private readonly recentIncidents = new Map<string, Fencing>()
  private stopped = false
  private stopping?: Promise<void>
  private resolveDone!: () => void
  readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve))

  private constructor(
    private readonly session: AgentSession,
    private readonly request: WatchRequest,
  ) {
    this.watcher = openDirectoryWatcher({
      onEntry: (directory, name) => this.onDirectoryEvent(directory, name),
      onLost: (directory, error) => {
        this.request.log('warn', `lost the watch on ${directory}${error ? ` (${error.message})` : ''}; checking its sentinels`)
        this.checkDirectory(directory)
      },
      onOverflow: () => {
        // Overflows come in bursts, and whoever can write in a watched directory can cause them at will: one full
        // check covers every event lost before it starts, and they run OVERFLOW_CHECK_GAP_MS apart at most, the
        // last overflow always followed by a check.
        if (this.overflowCheckQueued) return
        this.overflowCheckQueued = true
        const wait = Math.max(0, this.lastOverflowCheck + OVERFLOW_CHECK_GAP_MS - Date.now())
        this.request.log('warn', `the inotify queue overflowed and events were lost: checking every sentinel ${wait > 0 ? `in ${wait} ms` : 'now'}`)
        this.overflowTimer = setTimeout(() => {
          this.overflowCheckQueued = false
          this.lastOverflowCheck = Date.now()
          void this.fullCheck('inotify overflow')
        }, wait)
      },
    })
    this.detector = this.watcher.description
  }

  static async start(options: AgentOptions, request: WatchRequest): Promise<WatchAgent> {
    const session = await AgentSession.open(options, {resident: true})
    const agent = new WatchAgent(session, request)
    try {
      await agent.begin()
    } catch (error) {
      await agent.stop()
      throw error
    }
    return agent
  }

  get watchedDirectories(): string[] {
    return this.watcher.watched
  }

  get sentinelCount(): number {
    return this.byPath.size
  }

  private async begin(): Promise<void> {
    const loaded = await this.session.loadTopology()
    this.offlineDetail = loaded.detail
    if (loaded.detail) this.request.log('warn', loaded.detail)
    this.useTopology(loaded.topology, loaded.digest)
    writeFileAtomic(this.session.paths.pidFile, `${process.pid}\n`)
    // Opened now (so that the status names the detectors) but marked only after the first full read: every open
    // of a guarded sentinel, the agent's own included, is a permission event.
    this.openReadGuard()
    await this.fullCheck('initial')
    this.readGuard?.sync(this.topology)
    releaseMemory()
    this.interval = setInterval(() => void this.periodic(), this.request.intervalMs)
    this.request.log('info', `detectors: ${this.detector}`)
    this.request.log('info', `watching ${this.byPath.size} sentinel(s) in ${this.watcher.watched.length} director${this.watcher.watched.length === 1 ? 'y' : 'ies'} for node ${this.session.node} (${this.session.store.description}), re-verify every ${this.request.intervalMs / 1000} s`)
  }

  private useTopology(topology: Topology, digest: string): void {
    this.topology = topology
    this.topologyDigest = digest
    this.byPath = new Map(topology.sentinels.map((sentinel) => [sentinel.path, sentinel]))
    this.byDirectory = new Map()
    for (const sentinel of topology.sentinels) {
      const directory = dirname(sentinel.path)
      this.byDirectory.set(directory, [...(this.byDirectory.get(directory) ?? []), sentinel])
    }
    this.session.runner.prepare(topology.procedures)
    this.request.observer?.knownProcedures?.(Object.keys(topology.procedures))
    this.readGuard?.sync(topology)
    this.watcher.retain(new Set(this.byDirectory.keys()))
    this.watchDirectories()
  }

  /** Watches every sentinel directory not yet watched, and says which cannot be, once each. */
  private watchDirectories(): void {
    const failed = this.watcher.watch(this.byDirectory.keys())
    const now = new Set<string>()
    for (const {directory, error} of failed) {
      now.add(directory)
      if (!this.unwatchable.has(directory)) this.request.log('warn', `cannot watch ${directory}: ${error}; its sentinels are checked every interval`)
    }
    for (const directory of this.unwatchable) if (!now.has(directory) && this.byDirectory.has(directory)) this.request.log('info', `watching ${directory} again`)
    this.unwatchable = now
  }

  /**
   * The hot path, from an inotify event to a running procedure. Nothing before the procedure starts waits on
   * the store, the network or a log line.
   */
  private onDirectoryEvent(directory: string, name: string, writer?: number): void {
    const detectedAt = performance.now()
    // 1. detect: an event names a file in a watched directory.
    const sentinel = this.byPath.get(join(directory, name))
    if (!sentinel) {
      if (name === basename(directory)) this.checkDirectory(directory)
      return
    }
    // 2. sentinel: re-check that one file against its record: content, existence, identity.
    const finding = this.session.inspect(sentinel)
    if (finding.verdict !== 'tampered') return
    // comet reset --replant is planting this sentinel anew; the agent learns the new one on the SIGHUP that follows.
    if (readReplantNotice(this.session.paths.replanting).has(sentinel.path)) return
    if (this.session.latch.hasTripped(sentinel.path, finding.reason)) {
      // inotify saw the write first and the procedure has started; fanotify names the writer a moment later.
      if (writer !== undefined) setImmediate(() => this.attributeWriter(sentinel.path, writer))
      return
    }
    // 3 and 4. fence: the latch lets each procedure run once; the runner starts it from the local cache.
    const fencing = this.session.fencer.trip([toTripped(finding, sentinel.procedure)], 'watch', writer === undefined ? {} : {suspects: [writer]})
    // To the hand-over to the launcher: the latch's fsync that follows is not the procedure's delay.
    const latency = (fencing.launchedAt - detectedAt) / 1000
    // 5. Only then: log, record, report. The writer is described while it may still be there.
    const info = writer === undefined ? undefined : describeProcess(writer)
    setImmediate(() => {
      if (writer !== undefined) fencing.incident.suspects = [writerSuspect(writer, info)]
      this.afterTrip(fencing, latency)
    })
  }

  /** Adds a writer that fanotify named after the trip to the sentinel's incident, and reports it again. */
  private attributeWriter(path: string, writer: number): void {
    const fencing = this.recentIncidents.get(path)
    if (!fencing || Date.now() - Date.parse(fencing.incident.startedAt) > WRITER_ATTRIBUTION_MS || fencing.incident.suspects?.some((suspect) => suspect.pid === writer)) return
    fencing.incident.suspects = [...(fencing.incident.suspects ?? []), writerSuspect(writer, describeProcess(writer))]
    this.request.log('warn', `incident ${fencing.incident.id}: ${path} was written by pid ${writer} (${fencing.incident.suspects.at(-1)?.exe ?? 'unknown executable'})`)
    void this.report(this.session.incidentReport(fencing.incident))
  }

  /**
   * The hot path of a read, where fanotify runs: the opening process is still held by the kernel. Freeze it
   * first, start the procedure, then deny the open (the return value); nothing of the sentinel is read.
   */
  private onFanotifyEvent(event: FanotifyEvent): Decision | void {
    if (event.kinds.includes('overflow')) {
      setImmediate(() => void this.fullCheck('fanotify overflow'))
      return
    }
    const path = event.path.replace(/ \(deleted\)$/, '')
    const sentinel = this.byPath.get(path)
    if (!event.permission) {
      // A write by a process allowed to open the sentinel (on_read: allow, an allow-listed executable, a file
      // opened before the mark): the content check decides, as for inotify, and the writer is the suspect.
      if (sentinel) this.onDirectoryEvent(dirname(path), basename(path), event.pid > 0 ? event.pid : undefined)
      return
    }
    if (!sentinel) return 'deny'
    if (sentinel.onRead === 'allow') return 'allow'
    const detectedAt = performance.now()
    // The addon has already stopped the opener of a freeze sentinel; this is the fallback if it could not.
    let frozenAt = event.frozenAtNs
    if (sentinel.onRead === 'freeze' && !event.frozen && event.pid > 0) {
      try {
        process.kill(event.pid, 'SIGSTOP')
        frozenAt = process.hrtime.bigint().toString()
      } catch {}
    }
    const reader = `${event.pid}:${path}`
    if (this.readers.has(reader)) return 'deny'
    this.readers.add(reader)
    const tripped = {path, reason: 'read' as const, detail: `opened by pid ${event.pid} (${event.exe ?? 'unknown executable'})`, at: new Date().toISOString(), procedure: sentinel.procedure}
    const fencing = this.session.fencer.trip([tripped], 'watch', sentinel.onRead === 'deny' ? {noFence: true} : {suspects: [event.pid]})
    // To the hand-over to the launcher: the latch's fsync that follows is not the procedure's delay.
    const latency = (fencing.launchedAt - detectedAt) / 1000
    // Read while the kernel still holds the process (its procedure has started): once denied it may be gone.
    const info = describeProcess(event.pid)
    setImmediate(() => {
      fencing.incident.suspects = [
        {
          pid: event.pid,
          ppid: info?.ppid ?? null,
          uid: info?.uid ?? null,
          exe: info?.exe ?? event.exe,
          cmdline: info?.cmdline ?? [],
          action: frozenAt !== undefined ? 'frozen' : 'denied',
          frozenAtMonotonicNs: frozenAt,
        },
      ]
      this.afterTrip(fencing, latency)
    })
    return 'deny'
  }

  private openReadGuard(): void {
    if (this.request.fanotify === false) {
      this.detector = `${this.watcher.description} (fanotify turned off)`
      return
    }
    const guard = SentinelReadGuard.open((event) => this.onFanotifyEvent(event), (message) => this.request.log('warn', message))
    if (typeof guard === 'string') {
      this.detector = `${this.watcher.description} (fanotify unavailable: ${guard})`
      this.request.log('warn', `fanotify is unavailable (${guard}): reads of sentinels are not blocked; writes, deletes and renames are still detected with inotify`)
      return
    }
    this.readGuard = guard
    this.detector = `fanotify (reads blocked) and ${this.watcher.description}`
  }

  private afterTrip(fencing: Fencing, latencySeconds: number): void {
    const {incident} = fencing
    for (const sentinel of incident.sentinels) {
      this.recentIncidents.delete(sentinel.path)
      this.recentIncidents.set(sentinel.path, fencing)
    }
    for (const oldest of this.recentIncidents.keys()) {
      if (this.recentIncidents.size <= RECENT_INCIDENTS_KEPT) break
      this.recentIncidents.delete(oldest)
    }
    refineRenames(this.session, incident)
    for (const run of incident.procedures) {
      if (!run.skipped && !run.error) this.request.observer?.onDetection?.(latencySeconds, run.name)
      const what = run.skipped ? `not run (${run.skipped})` : run.error ? `could not start: ${run.error}` : run.pid ? `started (pid ${run.pid})` : 'started'
      this.request.log(run.error ? 'error' : 'warn', `incident ${incident.id}: ${incident.sentinels.map((s) => `${s.path} ${s.reason}`).join(', ')}; procedure ${run.name} ${what}`)
    }
    void this.report(this.session.incidentReport(incident))
    void fencing.finished.then((ended) => {
      for (const run of ended.procedures.filter((run) => !run.skipped))
        this.request.log(run.exitCode === 0 ? 'info' : 'error', `incident ${ended.id}: procedure ${run.name} ended${run.timedOut ? ' after its timeout' : ''} with exit code ${run.exitCode ?? '?'}`)
      return this.report(this.session.incidentReport(ended))
    })
  }

  private checkDirectory(directory: string): void {
    for (const sentinel of this.byDirectory.get(directory) ?? []) this.onDirectoryEvent(directory, basename(sentinel.path))
  }

  private async fullCheck(why: string): Promise<void> {
    const outcome = checkAllSentinels(this.session, this.topology, 'watch', {}, {shallow: why === 'periodic' && this.readGuard !== undefined, replanting: readReplantNotice(this.session.paths.replanting)})
    if (outcome.fencing) this.afterTrip(outcome.fencing, 0)
    this.request.observer?.onCheck?.(outcome.counts)
    if (why !== 'periodic' || outcome.counts.tampered > 0) this.request.log(outcome.counts.tampered > 0 ? 'warn' : 'info', `${why} check: ${outcome.counts.intact}/${outcome.counts.total} intact, ${outcome.counts.tampered} tampered`)
    await this.report(this.session.checkReport(outcome.findings, 'watch', this.offlineDetail, false, this.detector))
  }

  private async periodic(why: 'periodic' | 'reload' = 'periodic'): Promise<void> {
    try {
      const loaded = await this.session.loadTopology()
      if (loaded.detail !== this.offlineDetail) this.request.log(loaded.detail ? 'warn' : 'info', loaded.detail ?? 'store reachable again')
      this.offlineDetail = loaded.detail
      if (loaded.digest !== this.topologyDigest || why === 'reload') this.useTopology(loaded.topology, loaded.digest)
      else this.watchDirectories()
    } catch (error) {
      // Bad data in the store must not blind the agent: it keeps its last known-good topology.
      this.offlineDetail = `cannot refresh the topology (${error instanceof CometError ? error.message : String(error)}); watching the last known-good one`
      this.request.log('error', this.offlineDetail)
    }
    await this.fullCheck('periodic')
  }

  /** After `comet reset` (SIGHUP): the latch was cleared and the sentinels may have been planted anew. */
  async reload(): Promise<void> {
    this.session.latch.reload()
    // comet reset --replant planted new files and recorded their identities: the agent's own, older ones would
    // take the new files for replacements and fence again.
    this.session.reloadLocal()
    this.recentIncidents.clear()
    this.readers.clear()
    this.request.log('info', 'reloading after SIGHUP: latch and topology re-read')
    await this.periodic('reload')
    // The new sentinels are known now: a later change to them is tampering again.
    removeReplantNotice(this.session.paths.replanting)
    releaseMemory()
  }

  private async report(report: Parameters<AgentSession['reporter']['submit']>[0]): Promise<void> {
    // While the store is failing, reports only join the spool: the retry timer delivers them together,
    // instead of every new report waiting out its own timeout against a store that is down.
    if (this.stopped || this.retry) {
      this.session.spool.add(report)
      this.request.observer?.onReport?.(false, this.session.spool.depth)
      return
    }
    const result = await this.session.reporter.submit(report)
    this.request.observer?.onReport?.(result.error === undefined, result.pending)
    if (result.error !== undefined) this.scheduleRetry(result.error)
    else this.retryDelay = RETRY_MIN_MS
  }

  private scheduleRetry(error: string): void {
    if (this.retry || this.stopped) return
    this.request.log('warn', `report not delivered (${error}); ${this.session.spool.depth} report(s) spooled, retrying in ${this.retryDelay / 1000} s`)
    this.retry = setTimeout(async () => {
      this.retry = undefined
      this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS)
      const result = await this.session.reporter.flush()
      this.request.observer?.onReport?.(result.error === undefined, result.pending)
      if (result.error !== undefined) this.scheduleRetry(result.error)
      else {
        this.retryDelay = RETRY_MIN_MS
        this.request.log('info', `spool delivered: ${result.delivered} report(s)`)
      }
    }, this.retryDelay)
  }

  /** SIGTERM / SIGINT: stop watching, give running procedures a moment to report their end, flush, exit clean. */
  stop(): Promise<void> {
    this.stopping ??= this.shutDown()
    return this.stopping
  }

  private async shutDown(): Promise<void> {
    this.watcher.close()
    this.readGuard?.close()
    clearInterval(this.interval)
    clearTimeout(this.overflowTimer)
    clearTimeout(this.retry)
    await this.session.runner.drain(DRAIN_ON_STOP_MS)
    await this.session.reporter.flush()
    this.stopped = true
    try {
      unlinkSync(this.session.paths.pidFile)
    } catch {}
    await this.session.close()
    this.resolveDone()
  }
}

/** A process that wrote to a sentinel it was allowed to open (fanotify's modify event). */
function writerSuspect(pid: number, info: ProcessInfo | null | undefined): SuspectProcess {
  return {pid, ppid: info?.ppid ?? null, uid: info?.uid ?? null, exe: info?.exe ?? null, cmdline: info?.cmdline ?? [], action: 'allowed'}
}
