import {readFileSync, readlinkSync, realpathSync} from 'node:fs'
import {resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

import {describeProcess, fanotifyAvailability, FanotifyGuard, type Decision, type FanotifyEvent} from '../detect/fanotify.js'
import type {Topology} from '../topology/topology.js'

const RUN_JS = fileURLToPath(new URL('../../../../bin/run.js', import.meta.url))

/**
 * fanotify on every sentinel's inode, for the agent: it keeps the marks in step with the topology (a replanted
 * sentinel is a new inode) and lets other comet commands (a cron verify beside the agent) read sentinels.
 */
export class SentinelReadGuard {
  private readonly marked = new Set<string>()

  private constructor(
    private readonly guard: FanotifyGuard,
    private readonly log: (message: string) => void,
  ) {}

  /** Undefined, with the reason, where fanotify cannot be used: not root, an old kernel, a restricted container, no addon. */
  static open(handler: (event: FanotifyEvent) => Decision | void, log: (message: string) => void, answerTimeoutMs = 200): SentinelReadGuard | string {
    const availability = fanotifyAvailability()
    if (!availability.available) return availability.reason
    const guard = FanotifyGuard.open({defaultDecision: 'deny', answerTimeoutMs, onError: (error) => log(`fanotify: ${error.message}`)}, (event) =>
      event.permission && isCometProcess(event.pid) ? 'allow' : handler(event),
    )
    return new SentinelReadGuard(guard, log)
  }

  /** Marks every sentinel there is (again: a mark follows the inode), and forgets the ones gone from the topology. */
  sync(topology: Topology): void {
    this.guard.setAllowExecutables(topology.allowReaders)
    const wanted = new Map(topology.sentinels.map((sentinel) => [sentinel.path, sentinel.onRead]))
    for (const path of this.marked)
      if (!wanted.has(path)) {
        this.guard.unmark(path)
        this.marked.delete(path)
      }
    for (const [path, onRead] of wanted) {
      try {
        this.guard.mark(path, {freeze: onRead === 'freeze'})
        this.marked.add(path)
      } catch (error) {
        this.log(`cannot put ${path} under fanotify (${(error as Error).message}); inotify still watches it`)
      }
    }
  }

  get size(): number {
    return this.marked.size
  }

  close(): void {
    this.guard.close()
  }
}

/** Another comet command of this installation (a cron verify, an init), run by this Node without preloaded code. */
function isCometProcess(pid: number): boolean {
  const info = describeProcess(pid)
  if (!info || info.exe !== process.execPath || info.cmdline[1] === undefined) return false
  try {
    // ./bin/run.js from a shell, or the absolute path from systemd: resolved against the process's own cwd.
    if (realpathSync(resolve(readlinkSync(`/proc/${pid}/cwd`), info.cmdline[1])) !== realpathSync(RUN_JS)) return false
    return !readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').some((entry) => entry.startsWith('NODE_OPTIONS='))
  } catch {
    return false
  }
}
