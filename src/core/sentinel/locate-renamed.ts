import {lstatSync, readdirSync} from 'node:fs'
import {dirname, join} from 'node:path'

import type {FileIdentity} from './read-sentinel.js'

const SCAN_LIMIT = 20_000

/**
 * After a sentinel vanished, looks for its inode beside it: found means it was renamed, not deleted.
 * Runs after the procedure has started, never before; gives up on very large directories.
 */
export function locateRenamed(path: string, baseline: FileIdentity): string | undefined {
  const directory = dirname(path)
  let names: string[]
  try {
    names = readdirSync(directory)
  } catch {
    return undefined
  }
  if (names.length > SCAN_LIMIT) return undefined
  for (const name of names) {
    const candidate = join(directory, name)
    try {
      const stats = lstatSync(candidate)
      if (stats.ino === baseline.ino && stats.dev === baseline.dev) return candidate
    } catch {}
  }
  return undefined
}
