import {readFileSync} from 'node:fs'

/**
 * The pid of the `comet watch` that runs for a node, from its pid file, or undefined when none runs. A stale pid
 * file must not make us signal (SIGHUP's default: kill) or vouch for an unrelated process that reused the pid,
 * so the process's own command line must say `watch`.
 */
export function runningWatchPid(pidFile: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(pidFile, 'utf8'), 10)
    if (!Number.isInteger(pid) || pid <= 0) return undefined
    const commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    return commandLine.includes('watch') ? pid : undefined
  } catch {
    return undefined
  }
}
