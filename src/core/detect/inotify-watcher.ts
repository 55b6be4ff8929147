import {CometError, errnoCode} from '../errors/index.js'
import type {DirectoryEvents, DirectoryWatcher} from './directory-watcher.js'
import {loadAddon} from '../native/load-addon.js'
import {watchLimitMessage} from './watch-limit.js'

/** The native module's surface (native/inotify/inotify.c). */
interface Addon {
  open(callback: (wd: number, mask: number, name: string | null) => void): NativeHandle
  add(handle: NativeHandle, directory: string): number
  remove(handle: NativeHandle, wd: number): void
  close(handle: NativeHandle): void
  IN_Q_OVERFLOW: number
  IN_IGNORED: number
  IN_DELETE_SELF: number
  IN_MOVE_SELF: number
  IN_UNMOUNT: number
}
declare const nativeHandle: unique symbol
type NativeHandle = {readonly [nativeHandle]: true}

/**
 * One inotify instance for every sentinel directory, read on the event loop (native/inotify), so that a queue
 * overflow (IN_Q_OVERFLOW), which fs.watch never reports, reaches the agent. The watch on a directory refuses
 * anything but a directory (IN_ONLYDIR); a directory reached through a symlink is watched, as fs.watch does.
 */
export class InotifyWatcher implements DirectoryWatcher {
  readonly description = 'inotify'
  private readonly byDirectory = new Map<string, number>()
  /** Two paths can name one directory (a bind mount): the kernel gives them one watch descriptor. */
  private readonly byWd = new Map<number, Set<string>>()
  private readonly lostMask: number
  private closed = false

  private constructor(
    private readonly addon: Addon,
    private readonly handle: NativeHandle,
    private readonly events: DirectoryEvents,
  ) {
    this.lostMask = addon.IN_DELETE_SELF | addon.IN_MOVE_SELF | addon.IN_UNMOUNT | addon.IN_IGNORED
  }

  /** The watcher, or why the addon cannot be used. */
  static open(events: DirectoryEvents): InotifyWatcher | string {
    const state = loadAddon<Addon>('inotify')
    if (!('addon' in state)) return state.reason
    let watcher: InotifyWatcher | undefined
    try {
      const handle = state.addon.open((wd, mask, name) => watcher?.dispatch(wd, mask, name))
      watcher = new InotifyWatcher(state.addon, handle, events)
      return watcher
    } catch (error) {
      return `inotify_init failed: ${(error as Error).message}`
    }
  }

  watch(directories: Iterable<string>): Array<{directory: string; error: string}> {
    const failed: Array<{directory: string; error: string}> = []
    for (const directory of directories) {
      if (this.byDirectory.has(directory)) continue
      let wd: number
      try {
        wd = this.addon.add(this.handle, directory)
      } catch (error) {
        if (errnoCode(error) === 'ENOSPC') throw new CometError(watchLimitMessage(this.byDirectory.size), {culprit: '/proc/sys/fs/inotify/max_user_watches', cause: error})
        failed.push({directory, error: (error as Error).message})
        continue
      }
      this.byDirectory.set(directory, wd)
      const names = this.byWd.get(wd)
      if (names) names.add(directory)
      else this.byWd.set(wd, new Set([directory]))
    }
    return failed
  }

  unwatch(directory: string): void {
    const wd = this.byDirectory.get(directory)
    if (wd === undefined) return
    this.byDirectory.delete(directory)
    const names = this.byWd.get(wd)
    names?.delete(directory)
    if (names && names.size > 0) return
    this.byWd.delete(wd)
    if (!this.closed) this.addon.remove(this.handle, wd)
  }

  retain(directories: Set<string>): void {
    for (const directory of [...this.byDirectory.keys()]) if (!directories.has(directory)) this.unwatch(directory)
  }

  get watched(): string[] {
    return [...this.byDirectory.keys()]
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.addon.close(this.handle)
    this.byDirectory.clear()
    this.byWd.clear()
  }

  private dispatch(wd: number, mask: number, name: string | null): void {
    if (mask & this.addon.IN_Q_OVERFLOW) {
      this.events.onOverflow()
      return
    }
    const directories = this.byWd.get(wd)
    if (!directories) return // a watch already dropped
    if (name !== null) for (const directory of directories) this.events.onEntry(directory, name)
    if (mask & this.lostMask) {
      // The directory was removed, renamed or unmounted: its watch no longer stands for the path. The next
      // periodic pass watches the path again if a directory is back there.
      for (const directory of [...directories]) {
        this.unwatch(directory)
        this.events.onLost(directory)
      }
    }
  }
}
