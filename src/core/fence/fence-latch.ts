import {StoreDataError} from '../errors/index.js'
import {writeFileAtomic} from '../files/atomic-write.js'
import {readPrivateJson} from '../files/private-json.js'

export interface LatchEntry {
  incident: string
  at: string
}

interface SentinelEntry {
  reason: string
  at: string
}

interface LatchFile {
  /** Raised by every `comet reset`: a process holding an older generation must not write its entries back. */
  generation?: number
  /** When the last reset cleared the latch. */
  clearedAt?: string
  procedures: Record<string, LatchEntry>
  /** Sentinel -> the reason it tripped for; it is recorded again only if the reason changes. */
  sentinels: Record<string, SentinelEntry>
}

/**
 * Each procedure runs at most once until `comet reset`, even when many sentinels trip together or the agent
 * restarts: shutting a database down twice, or rebooting a fenced machine in a loop, helps nobody. It also
 * remembers which sentinels have tripped, so that a cron verify does not record the same incident every minute.
 * The checks are in memory (the hot path); the file is written after the procedure has started.
 *
 * `comet reset` runs beside the agent, which holds the latch in memory: a reset raises the file's generation, and
 * a process that finds a newer generation on disk keeps only what it recorded after that reset, so that neither
 * its next write nor its next check undoes the reset.
 */
export class FenceLatch {
  private procedureEntries = new Map<string, LatchEntry>()
  private sentinelEntries = new Map<string, SentinelEntry>()
  private generation = 0
  private clearedAt?: string

  constructor(private readonly file: string) {
    this.reload()
  }

  /** True when the caller may run the procedure now; the latch is then closed for it. */
  tryAcquire(procedure: string, incident: string): boolean {
    if (this.procedureEntries.has(procedure) && !(this.adoptNewerReset() && !this.procedureEntries.has(procedure))) return false
    this.procedureEntries.set(procedure, {incident, at: new Date().toISOString()})
    return true
  }

  /** A manual `comet fence` runs regardless, but still closes the latch. */
  force(procedure: string, incident: string): void {
    this.procedureEntries.set(procedure, {incident, at: new Date().toISOString()})
  }

  /** True the first time a sentinel trips for this reason since the last reset. */
  noteTripped(path: string, reason: string): boolean {
    if (this.sentinelEntries.get(path)?.reason === reason) return false
    this.sentinelEntries.set(path, {reason, at: new Date().toISOString()})
    return true
  }

  hasTripped(path: string, reason: string): boolean {
    return this.sentinelEntries.get(path)?.reason === reason
  }

  get procedures(): string[] {
    return [...this.procedureEntries.keys()].sort()
  }

  persist(): void {
    this.adoptNewerReset()
    this.write()
  }

  /** Re-reads the file (after `comet reset` in another process). */
  reload(): void {
    const content = this.readFile()
    this.generation = content.generation ?? 0
    this.clearedAt = content.clearedAt
    this.procedureEntries = new Map(Object.entries(content.procedures ?? {}))
    this.sentinelEntries = new Map(Object.entries(content.sentinels ?? {}))
  }

  clear(): void {
    this.generation = Math.max(this.generation, this.readFile().generation ?? 0) + 1
    this.clearedAt = new Date().toISOString()
    this.procedureEntries.clear()
    this.sentinelEntries.clear()
    this.write()
  }

  /**
   * Where another process reset the latch since this one read it: keeps what this process recorded after that
   * reset, adds what the file holds, and returns true. Only read on a refusal or a write, never on the hot path.
   */
  private adoptNewerReset(): boolean {
    const content = this.readFile()
    if ((content.generation ?? 0) <= this.generation) return false
    const since = content.clearedAt ?? ''
    const after = <T extends {at: string}>(entries: Map<string, T>, fromFile: Record<string, T> | undefined) =>
      new Map([...Object.entries(fromFile ?? {}), ...[...entries].filter(([, entry]) => entry.at > since)])
    this.procedureEntries = after(this.procedureEntries, content.procedures)
    this.sentinelEntries = after(this.sentinelEntries, content.sentinels)
    this.generation = content.generation ?? 0
    this.clearedAt = content.clearedAt
    return true
  }

  private write(): void {
    const content: LatchFile = {generation: this.generation, clearedAt: this.clearedAt, procedures: Object.fromEntries(this.procedureEntries), sentinels: Object.fromEntries(this.sentinelEntries)}
    writeFileAtomic(this.file, JSON.stringify(content, null, 2) + '\n')
  }

  private readFile(): Partial<LatchFile> {
    const content = readPrivateJson<Partial<LatchFile>>(this.file) ?? {}
    if (typeof content !== 'object' || content === null || Array.isArray(content))
      throw new StoreDataError(this.file, 'the fence latch is not a JSON object; remove the file, then run comet reset')
    for (const [path, entry] of Object.entries(content.sentinels ?? {}))
      if (typeof entry !== 'object' || entry === null || typeof entry.reason !== 'string' || typeof entry.at !== 'string')
        throw new StoreDataError(this.file, `the fence latch's entry for ${path} is not {reason, at}; remove the file, then run comet reset`)
    return content
  }
}
