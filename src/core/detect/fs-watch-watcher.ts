import {watch, type FSWatcher} from 'node:fs'

import {CometError, errnoCode} from '../errors/index.js'
import type {DirectoryEvents, DirectoryWatcher} from './directory-watcher.js'
import {watchLimitMessage} from './watch-limit.js'

/** The fallback where the inotify addon is not built: Node's fs.watch, one FSWatcher per directory. */
export class FsWatchWatcher implements DirectoryWatcher {
  private readonly watchers = new Map<string, FSWatcher>()

  constructor(
    private readonly events: DirectoryEvents,
    readonly description: string,
  ) {}

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
