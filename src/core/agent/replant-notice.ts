import {existsSync, rmSync} from 'node:fs'

import {writeFileAtomic} from '../files/atomic-write.js'
import {readPrivateJson} from '../files/private-json.js'

/** How long a running agent takes the replanted paths' changes for comet reset's own: until it has reloaded. */
export const REPLANT_NOTICE_MS = 30_000

interface ReplantNotice {
  paths: string[]
  until: string
}

/**
 * `comet reset --replant` removes tripped sentinels and plants new files at their paths while `comet watch` may
 * be running with the old checksums and inodes in memory: written before the files change, this notice tells
 * the agent that those changes are the reset's, until it has reloaded (SIGHUP) the new ones.
 */
export function writeReplantNotice(file: string, paths: string[], now = Date.now()): void {
  writeFileAtomic(file, JSON.stringify({paths, until: new Date(now + REPLANT_NOTICE_MS).toISOString()} satisfies ReplantNotice) + '\n')
}

/** The paths being replanted, or an empty set when there is no notice or it has expired. */
export function readReplantNotice(file: string, now = Date.now()): Set<string> {
  // On the hot path of every trip, and almost always absent: a failed open costs an exception, this does not.
  if (!existsSync(file)) return new Set()
  const notice = readPrivateJson<Partial<ReplantNotice>>(file)
  if (!notice || !Array.isArray(notice.paths) || typeof notice.until !== 'string' || Date.parse(notice.until) < now) return new Set()
  return new Set(notice.paths.filter((path): path is string => typeof path === 'string'))
}

export function removeReplantNotice(file: string): void {
  rmSync(file, {force: true})
}
