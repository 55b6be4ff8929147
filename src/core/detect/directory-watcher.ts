import {watch, type FSWatcher} from 'node:fs'
import {readFileSync} from 'node:fs'

import {CometError, errnoCode} from '../errors/index.js'

export interface DirectoryEvents {
  /** Something happened to `name` inside `directory` (written, deleted, renamed, replaced, attributes). */
  onEntry(directory: string, name: string): void
  /** The watch on `directory` ended: it was removed or renamed, or the kernel dropped it. */
  onLost(directory: string, error?: Error): void
}

/**
 * inotify on the sentinels' directories, not on the files: a watch on a file follows its inode, so it would
 * miss a file renamed over the sentinel, while a directory watch sees every name in it change.
 */
export class DirectoryWatcher {
  private readonly watchers = new Map<string, FSWatcher>()

  constructor(private readonly events: DirectoryEvents) {}

  /** Watches each directory not yet watched; returns the ones that could not be watched, with why. */
  watch(directories: Iterable<string>): Array<{directory: string; error: string}> {
    const failed: Array<{directory: string; error: string}> = []
    for (const directory of directories) {
      if (this.watchers.has(directory)) continue
      try {
        const watcher = watch(directory, {persistent: true}, (_type, name) => {
          if (name !== null) this.events.onEntry(directory, name.toString())
        })
        watcher.on('error', (error) => {
          this.unwatch(directory)
          this.events.onLost(directory, error)
        })
        this.watchers.set(directory, watcher)
      } catch (error) {
        if (errnoCode(error) === 'ENOSPC') throw new CometError(watchLimitMessage(this.watchers.size), {culprit: '/proc/sys/fs/inotify/max_user_watches', cause: error})
        failed.push({directory, error: (error as Error).message})
      }
    }
    return failed
  }

  unwatch(directory: string): void {
    this.watchers.get(directory)?.close()
    this.watchers.delete(directory)
  }

  /** Drops watches on directories no longer needed. */
  retain(directories: Set<string>): void {
    for (const directory of [...this.watchers.keys()]) if (!directories.has(directory)) this.unwatch(directory)
  }

  get watched(): string[] {
    return [...this.watchers.keys()]
  }

  close(): void {
    for (const directory of [...this.watchers.keys()]) this.unwatch(directory)
  }
}

function watchLimitMessage(watching: number): string {
  let limit = 'the limit'
  try {
    limit = readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8').trim()
  } catch {}
  return `inotify refused another watch after ${watching} directories: fs.inotify.max_user_watches (${limit}) is exhausted for this user; raise it (sysctl -w fs.inotify.max_user_watches=N) or place sentinels in fewer directories`
}
