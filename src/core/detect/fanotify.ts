import {lstatSync, readFileSync, readlinkSync, realpathSync} from 'node:fs'
import {isAbsolute} from 'node:path'

import {CometError, errnoCode} from '../errors/index.js'
import {loadAddon} from '../native/load-addon.js'

/**
 * Trip on first touch: fanotify permission events on the sentinels themselves, so the first process that
 * opens or reads one is seen (and can be refused) before it gets a byte, which inotify cannot do.
 *
 * The work is done by a small N-API addon (native/fanotify, built by `npm run build` with node-gyp): a
 * fanotify group of class FAN_CLASS_CONTENT with an inode mark per sentinel (never a mount mark) for
 * FAN_OPEN_PERM | FAN_ACCESS_PERM and FAN_MODIFY | FAN_CLOSE_WRITE, and a reader thread. The reader answers
 * by itself, without asking JavaScript:
 * - this process's own opens and reads (the agent hashes its sentinels): allow;
 * - processes whose executable (/proc/PID/exe) is in `allowExecutables`: allow;
 * - every event the handler has not answered within `answerTimeoutMs`: `defaultDecision`.
 * So a busy, stuck or crashed agent holds a process on the host for at most `answerTimeoutMs` (at most 60 s).
 *
 * What the kernel does without us: when the guard is closed, or its process dies (SIGKILL included), the
 * kernel allows every event the group still holds; the marks go with the group. close() first answers what
 * the handler still has pending with `defaultDecision`.
 *
 * Limits: fanotify has no permission event for unlink or rename, so those still need the directory watcher;
 * a mark follows the inode, so a replanted (new) sentinel must be marked again; an allow-listed interpreter
 * (python3, sh) allows every script it runs; the executable path is the one in the process's own mount
 * namespace.
 */

export type FanotifyKind = 'open-perm' | 'access-perm' | 'modify' | 'close-write' | 'overflow'
export type Decision = 'allow' | 'deny'

export interface FanotifyEvent {
  /** The process (thread group) that opened, read or wrote; 0 when the kernel cannot name it (another pid namespace). */
  pid: number
  /** Its executable, read when the event was read (a permission event's process is still blocked then); null if gone. */
  exe: string | null
  /** The sentinel, as /proc/self/fd resolves it (" (deleted)" appended by the kernel if it was unlinked); '' for an overflow. */
  path: string
  /** One event can carry several (modify and close-write are merged by the kernel). 'overflow': events were lost, re-verify everything. */
  kinds: FanotifyKind[]
  /** The process is held until this event is answered: the handler's return value counts. */
  permission: boolean
  /** The reader thread stopped the process (SIGSTOP) before this event reached JavaScript: the file was marked with freeze. */
  frozen: boolean
  /** CLOCK_MONOTONIC, in nanoseconds, when it was stopped. */
  frozenAtNs?: string
}

export interface FanotifyGuardOptions {
  /** The answer when the handler returns nothing, throws, or has not answered within answerTimeoutMs. */
  defaultDecision: Decision
  /** The hard bound on how long a process is held, 1 to 60000 ms; 200 is a good value. */
  answerTimeoutMs: number
  /** Absolute paths of executables whose opens and reads are allowed natively and not reported (symlinks resolved). */
  allowExecutables?: string[]
  /** Errors of the reader thread and exceptions of the handler; default: a process warning. */
  onError?: (error: Error) => void
}

/**
 * What to answer for a permission event: 'allow', 'deny', a promise of one (answered when it settles, if
 * still in time), or nothing for `defaultDecision` right away. Ignored for notifications. The handler is
 * called for every event even when it comes too late to answer (the timeout answered first, counted in
 * stats.lateAnswers): the touch happened all the same, so a tripwire still trips on it. A process whose open
 * was allowed is asked again for each read (access-perm).
 */
export type FanotifyHandler = (event: FanotifyEvent) => Decision | void | Promise<Decision | void>

export interface FanotifyStats {
  pending: number
  answeredByHandler: number
  answeredByDefaultOnTimeout: number
  answeredOnClose: number
  allowedSelf: number
  allowedExecutables: number
  /** Handler answers that came after the timeout had already answered. */
  lateAnswers: number
  notifications: number
  overflows: number
  readErrors: number
}

export type FanotifyAvailability = {available: true} | {available: false; reason: string; code?: string}

/** The native module's surface (native/fanotify/fanotify.c). */
interface Addon {
  availability(path?: string): FanotifyAvailability
  open(
    options: {defaultAllow: boolean; timeoutMs: number; allowExecutables: string[]},
    callback: (message: NativeMessage) => void,
  ): NativeHandle
  mark(handle: NativeHandle, path: string, freeze?: boolean): void
  unmark(handle: NativeHandle, path: string): void
  respond(handle: NativeHandle, id: number, allow: boolean): boolean
  setAllowExecutables(handle: NativeHandle, paths: string[]): void
  stats(handle: NativeHandle): FanotifyStats
  close(handle: NativeHandle): void
  maxTimeoutMs: number
}
declare const nativeHandle: unique symbol
type NativeHandle = {readonly [nativeHandle]: true}
type NativeMessage =
  | {type: 'error'; message: string}
  | {type: 'event'; id: number; pid: number; mask: number; permission: boolean; frozen: boolean; frozenAtNs?: string; path: string | null; exe: string | null; kinds: FanotifyKind[]}

function load(): {addon: Addon} | {reason: string} {
  return loadAddon<Addon>('fanotify')
}

/**
 * Whether fanotify permission events can be used here, and if not why: the addon is not built, not root
 * (EPERM), a kernel without CONFIG_FANOTIFY_ACCESS_PERMISSIONS (EINVAL), a restricted container (EPERM).
 * With `path`, also whether that file's filesystem takes a permission mark. Never throws.
 */
export function fanotifyAvailability(path?: string): FanotifyAvailability {
  const state = load()
  if (!('addon' in state)) return {available: false, reason: state.reason}
  try {
    return state.addon.availability(path)
  } catch (error) {
    return {available: false, reason: (error as Error).message, code: errnoCode(error)}
  }
}

export class FanotifyGuard {
  private closedFlag = false

  private constructor(
    private readonly addon: Addon,
    private readonly handle: NativeHandle,
    private readonly options: FanotifyGuardOptions,
    private readonly onEvent: FanotifyHandler,
  ) {}

  /** Starts a guard with no marks. Throws (a CometError) when fanotify is unavailable; see fanotifyAvailability(). */
  static open(options: FanotifyGuardOptions, onEvent: FanotifyHandler): FanotifyGuard {
    if (options.defaultDecision !== 'allow' && options.defaultDecision !== 'deny') {
      throw new TypeError(`defaultDecision must be 'allow' or 'deny', not ${String(options.defaultDecision)}`)
    }
    if (!Number.isInteger(options.answerTimeoutMs) || options.answerTimeoutMs < 1 || options.answerTimeoutMs > 60000) {
      throw new RangeError(`answerTimeoutMs must be an integer from 1 to 60000, not ${options.answerTimeoutMs}`)
    }
    const state = load()
    if (!('addon' in state)) throw new CometError(`cannot use fanotify: ${state.reason}`)
    const allow = executables(options.allowExecutables ?? [])
    let guard: FanotifyGuard | undefined
    let handle: NativeHandle
    try {
      handle = state.addon.open({defaultAllow: options.defaultDecision === 'allow', timeoutMs: options.answerTimeoutMs, allowExecutables: allow}, (message) =>
        guard?.dispatch(message),
      )
    } catch (error) {
      throw new CometError(`cannot use fanotify: ${(error as Error).message}`, {cause: error})
    }
    guard = new FanotifyGuard(state.addon, handle, options, onEvent)
    return guard
  }

  /**
   * Guards one regular file (an inode mark: the file, not its name). Throws naming the path. With `freeze`, a
   * process that opens it (other than the agent and the allow-listed) is stopped natively, before the handler runs.
   */
  mark(path: string, {freeze = false}: {freeze?: boolean} = {}): void {
    this.assertOpen()
    let stats
    try {
      stats = lstatSync(path)
    } catch (error) {
      throw new CometError(`cannot guard ${path} with fanotify: ${(error as Error).message}`, {culprit: path, cause: error})
    }
    if (!stats.isFile()) {
      throw new CometError(`cannot guard ${path} with fanotify: ${stats.isSymbolicLink() ? 'it is a symbolic link' : 'not a regular file'}`, {culprit: path})
    }
    try {
      this.addon.mark(this.handle, path, freeze)
    } catch (error) {
      throw new CometError(`cannot guard ${path} with fanotify: ${(error as Error).message}`, {culprit: path, cause: error})
    }
  }

  /** Stops guarding the file now at `path`; a file that is gone or was never marked is not an error. */
  unmark(path: string): void {
    this.assertOpen()
    try {
      this.addon.unmark(this.handle, path)
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return
      throw new CometError(`cannot stop guarding ${path}: ${(error as Error).message}`, {culprit: path, cause: error})
    }
  }

  /** Replaces the allow-list (absolute paths; symlinks resolved). */
  setAllowExecutables(paths: string[]): void {
    this.assertOpen()
    this.addon.setAllowExecutables(this.handle, executables(paths))
  }

  get stats(): FanotifyStats {
    return this.addon.stats(this.handle)
  }

  get closed(): boolean {
    return this.closedFlag
  }

  /**
   * Stops the reader, answers the events still pending with defaultDecision and closes the group (the kernel
   * allows whatever it still held). No handler call comes after. Idempotent.
   */
  close(): void {
    if (this.closedFlag) return
    this.closedFlag = true
    this.addon.close(this.handle)
  }

  private assertOpen(): void {
    if (this.closedFlag) throw new CometError('the fanotify guard is closed')
  }

  private dispatch(message: NativeMessage): void {
    if (this.closedFlag) return
    if (message.type === 'error') {
      this.report(new Error(message.message))
      return
    }
    const event: FanotifyEvent = {pid: message.pid, exe: message.exe, path: message.path ?? '', kinds: message.kinds, permission: message.permission, frozen: message.frozen, frozenAtNs: message.frozenAtNs}
    let answer: ReturnType<FanotifyHandler>
    try {
      answer = this.onEvent(event)
    } catch (error) {
      this.report(error instanceof Error ? error : new Error(String(error)))
      answer = undefined
    }
    if (!message.permission) {
      if (isPromise(answer)) answer.catch((error: unknown) => this.report(error instanceof Error ? error : new Error(String(error))))
      return
    }
    if (isPromise(answer)) {
      answer.then(
        (decision) => this.respond(message.id, decision),
        (error: unknown) => {
          this.report(error instanceof Error ? error : new Error(String(error)))
          this.respond(message.id, undefined)
        },
      )
    } else this.respond(message.id, answer)
  }

  private respond(id: number, decision: Decision | void): void {
    if (this.closedFlag) return
    const allow = decision === 'allow' || decision === 'deny' ? decision === 'allow' : this.options.defaultDecision === 'allow'
    this.addon.respond(this.handle, id, allow)
  }

  private report(error: Error): void {
    if (this.options.onError) this.options.onError(error)
    else process.emitWarning(error.message, 'FanotifyWarning')
  }
}

export interface ProcessInfo {
  pid: number
  ppid: number | null
  /** Real uid. */
  uid: number | null
  exe: string | null
  cmdline: string[]
}

/** Who a process is, from /proc; null when it is gone. Fields it may not read (a kernel thread's exe) are null. */
export function describeProcess(pid: number): ProcessInfo | null {
  if (!Number.isInteger(pid) || pid <= 0) return null
  let status: string
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return null
  }
  const field = (name: string): number | null => {
    const match = new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(status)
    return match ? Number(match[1]) : null
  }
  let exe: string | null = null
  try {
    exe = readlinkSync(`/proc/${pid}/exe`)
  } catch {}
  let cmdline: string[] = []
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    if (cmdline.at(-1) === '') cmdline.pop()
  } catch {}
  return {pid, ppid: field('PPid'), uid: field('Uid'), exe, cmdline}
}

function executables(paths: string[]): string[] {
  const all = new Set<string>()
  for (const path of paths) {
    if (!isAbsolute(path)) throw new CometError(`allowed executable ${path}: must be an absolute path`, {culprit: path})
    all.add(path)
    try {
      all.add(realpathSync(path))
    } catch {}
  }
  return [...all]
}

function isPromise(value: unknown): value is Promise<Decision | void> {
  return typeof value === 'object' && value !== null && typeof (value as {then?: unknown}).then === 'function'
}
