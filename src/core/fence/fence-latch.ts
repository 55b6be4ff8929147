import {StoreDataError} from '../errors/index.js'
import {writeFileAtomic} from '../files/atomic-write.js'
import {readPrivateJson} from '../files/private-json.js'

export interface LatchEntry {
  incident: string
  at: string
}

interface LatchFile {
  procedures: Record<string, LatchEntry>
  /** Sentinel -> the reason it tripped for; it is recorded again only if the reason changes. */
  sentinels: Record<string, string>
}

/**
 * Each procedure runs at most once until `comet reset`, even when many sentinels trip together or the agent
 * restarts: shutting a database down twice, or rebooting a fenced machine in a loop, helps nobody. It also
 * remembers which sentinels have tripped, so that a cron verify does not record the same incident every minute.
 * The checks are in memory (the hot path); the file is written after the procedure has started.
 */
export class FenceLatch {
  private procedureEntries = new Map<string, LatchEntry>()
  private sentinelEntries = new Map<string, string>()

  constructor(private readonly file: string) {
    this.reload()
  }

  /** True when the caller may run the procedure now; the latch is then closed for it. */
  tryAcquire(procedure: string, incident: string): boolean {
    if (this.procedureEntries.has(procedure)) return false
    this.procedureEntries.set(procedure, {incident, at: new Date().toISOString()})
    return true
  }

  /** A manual `comet fence` runs regardless, but still closes the latch. */
  force(procedure: string, incident: string): void {
    this.procedureEntries.set(procedure, {incident, at: new Date().toISOString()})
  }

  /** True the first time a sentinel trips for this reason since the last reset. */
  noteTripped(path: string, reason: string): boolean {
    if (this.sentinelEntries.get(path) === reason) return false
    this.sentinelEntries.set(path, reason)
    return true
  }

  hasTripped(path: string, reason: string): boolean {
    return this.sentinelEntries.get(path) === reason
  }

  get procedures(): string[] {
    return [...this.procedureEntries.keys()].sort()
  }

  persist(): void {
    const content: LatchFile = {procedures: Object.fromEntries(this.procedureEntries), sentinels: Object.fromEntries(this.sentinelEntries)}
    writeFileAtomic(this.file, JSON.stringify(content, null, 2) + '\n')
  }

  /** Re-reads the file (after `comet reset` in another process). */
  reload(): void {
    const content = readPrivateJson<Partial<LatchFile>>(this.file) ?? {}
    if (typeof content !== 'object' || content === null || Array.isArray(content))
      throw new StoreDataError(this.file, 'the fence latch is not a JSON object; remove the file, then run comet reset')
    this.procedureEntries = new Map(Object.entries(content.procedures ?? {}))
    this.sentinelEntries = new Map(Object.entries(content.sentinels ?? {}))
  }

  clear(): void {
    this.procedureEntries.clear()
    this.sentinelEntries.clear()
    this.persist()
  }
}
