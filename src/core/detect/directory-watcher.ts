import {InotifyWatcher} from './inotify-watcher.js'
import {FsWatchWatcher} from './fs-watch-watcher.js'

export interface DirectoryEvents {
  /** Something happened to `name` inside `directory` (written, deleted, renamed, replaced, attributes). */
  onEntry(directory: string, name: string): void
  /** The watch on `directory` ended: it was removed or renamed, or the kernel dropped it. */
  onLost(directory: string, error?: Error): void
  /** The kernel's event queue overflowed: events were lost, so every sentinel must be checked again. */
  onOverflow(): void
}

/**
 * inotify on the sentinels' directories, not on the files: a watch on a file follows its inode, so it would
 * miss a file renamed over the sentinel, while a directory watch sees every name in it change.
 */
export interface DirectoryWatcher {
  /** Which implementation runs, for the log and the status. */
  readonly description: string
  /** Watches each directory not yet watched; returns the ones that could not be watched, with why. Throws when the watch limit is reached. */
  watch(directories: Iterable<string>): Array<{directory: string; error: string}>
  unwatch(directory: string): void
  /** Drops watches on directories no longer needed. */
  retain(directories: Set<string>): void
  readonly watched: string[]
  close(): void
}

/**
 * The native inotify watcher (native/inotify), which reports a queue overflow; fs.watch where the addon is not
 * built, which cannot (libuv drops IN_Q_OVERFLOW), so then only the periodic re-verify covers an overflow.
 */
export function openDirectoryWatcher(events: DirectoryEvents, options: {native?: boolean} = {}): DirectoryWatcher {
  if (options.native !== false) {
    const opened = InotifyWatcher.open(events)
    if (opened instanceof InotifyWatcher) return opened
    return new FsWatchWatcher(events, `inotify through fs.watch (${opened}: a queue overflow is caught only by the periodic re-verify)`)
  }
  return new FsWatchWatcher(events, 'inotify through fs.watch')
}
