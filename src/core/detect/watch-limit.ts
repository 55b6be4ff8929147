import {readFileSync} from 'node:fs'

/** What to say when inotify refuses a watch with ENOSPC: the per-user watch limit, and how to raise it. */
export function watchLimitMessage(watching: number): string {
  let limit = 'the limit'
  try {
    limit = readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8').trim()
  } catch {}
  return `inotify refused another watch after ${watching} directories: fs.inotify.max_user_watches (${limit}) is exhausted for this user; raise it (sysctl -w fs.inotify.max_user_watches=N) or place sentinels in fewer directories`
}
