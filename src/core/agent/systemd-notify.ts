import {spawnSync} from 'node:child_process'

import {loadAddon} from '../native/load-addon.js'

interface Addon {
  notify(socketPath: string, message: string): void
}

/** Sends one message to systemd; throws with why it could not. */
type Send = (message: string) => void

/**
 * The agent's side of systemd's notify protocol (Type=notify, WatchdogSec=): READY=1 once it watches, WATCHDOG=1
 * from its event loop while that loop runs, STOPPING=1 on the way out. Under systemd, a hung agent (a loop that
 * no longer turns: no inotify event would be handled either) is then killed and restarted instead of looking
 * alive. Outside systemd (no NOTIFY_SOCKET) it does nothing.
 */
export class SystemdNotifier {
  private watchdog?: NodeJS.Timeout

  private constructor(
    private readonly sendMessage: Send,
    private readonly socket: string,
    /** Half the watchdog interval systemd asked for, or undefined without a watchdog. */
    readonly watchdogIntervalMs: number | undefined,
    private readonly log: (message: string) => void,
  ) {}

  /** A notifier when systemd expects one (NOTIFY_SOCKET), else undefined; says why when it cannot notify. */
  static fromEnvironment(env: NodeJS.ProcessEnv, log: (message: string) => void): SystemdNotifier | undefined {
    const socket = env.NOTIFY_SOCKET
    if (!socket) return undefined
    const state = loadAddon<Addon>('systemd')
    let send: Send
    if ('addon' in state) {
      const addon = state.addon
      send = (message) => addon.notify(socket, message)
    } else {
      // Without the addon, systemd-notify speaks for this process: as root, --pid sends the datagram with this
      // process's pid in its credentials, which NotifyAccess=main accepts. A process is started for each message.
      log(`${state.reason}: notifying systemd through systemd-notify --pid=${process.pid}`)
      send = (message) => {
        const result = spawnSync('systemd-notify', [`--pid=${process.pid}`, ...message.split('\n')], {env: {...process.env, NOTIFY_SOCKET: socket}, encoding: 'utf8', timeout: 5000})
        if (result.error || result.status !== 0) throw new Error(`systemd-notify failed: ${result.error?.message ?? (result.stderr.trim() || `exit ${result.status}`)}`)
      }
    }
    // WATCHDOG_PID names the process systemd expects the pings from; another (a child) must not send them.
    const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid
    const usec = Number(env.WATCHDOG_USEC)
    const interval = forUs && Number.isFinite(usec) && usec > 0 ? Math.max(1, Math.floor(usec / 2000)) : undefined
    return new SystemdNotifier(send, socket, interval, log)
  }

  /** READY=1, and from now on WATCHDOG=1 every half watchdog interval while the event loop turns. */
  ready(status: string): void {
    this.send(`READY=1\nSTATUS=${status}`)
    if (this.watchdogIntervalMs !== undefined && !this.watchdog) this.watchdog = setInterval(() => this.send('WATCHDOG=1'), this.watchdogIntervalMs)
  }

  stopping(): void {
    clearInterval(this.watchdog)
    this.watchdog = undefined
    this.send('STOPPING=1')
  }

  private send(message: string): void {
    try {
      this.sendMessage(message)
    } catch (error) {
      this.log(`cannot notify systemd at ${this.socket}: ${(error as Error).message}`)
    }
  }
}
