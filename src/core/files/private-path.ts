import {fstatSync, lstatSync, mkdirSync, type Stats} from 'node:fs'
import {dirname} from 'node:path'

import {errnoCode, UnsafePathError} from '../errors/index.js'

const WRITABLE_BY_OTHERS = 0o022
const STICKY = 0o1000

/**
 * The embedded store, caches and spools hold fencing procedures that the agent runs as root: whoever
 * can write them owns the machine. This refuses any of them (or a directory above them) that another
 * user could write or swap.
 */
export function assertPrivate(path: string, stats: Stats, kind: 'directory' | 'file'): void {
  if (stats.isSymbolicLink()) throw new UnsafePathError(path, `is a symbolic link; the agent never follows one here`)
  if (kind === 'directory' ? !stats.isDirectory() : !stats.isFile()) throw new UnsafePathError(path, `is not a ${kind}`)
  const uid = currentUid()
  if (stats.uid !== uid && stats.uid !== 0)
    throw new UnsafePathError(path, `is owned by uid ${stats.uid}, not by the agent's user (uid ${uid}): chown it or remove it`)
  if ((stats.mode & WRITABLE_BY_OTHERS) !== 0)
    throw new UnsafePathError(
      path,
      `is writable by other users (mode ${(stats.mode & 0o7777).toString(8)}); whoever can write it can run commands as this agent: chmod go-w ${path}`,
    )
}

/** Checks an already open file by its descriptor, so that the file checked is the file read. */
export function assertPrivateFd(path: string, fd: number): void {
  assertPrivate(path, fstatSync(fd), 'file')
}

/** Every directory above `path` must be safe from renames by other users: owned by root or us, and not writable by others unless sticky. */
export function assertSafeAncestors(path: string): void {
  const uid = currentUid()
  for (let directory = dirname(path); ; directory = dirname(directory)) {
    const stats = lstatSync(directory)
    if (stats.isSymbolicLink()) {
      // A symlink owned by root in a root-owned directory (like /var/run -> /run) is not an attacker's lever.
      if (stats.uid !== 0) throw new UnsafePathError(directory, 'is a symbolic link owned by another user')
    } else {
      if (stats.uid !== uid && stats.uid !== 0) throw new UnsafePathError(directory, `is owned by uid ${stats.uid}, who could replace what lies below it`)
      if ((stats.mode & WRITABLE_BY_OTHERS) !== 0 && (stats.mode & STICKY) === 0)
        throw new UnsafePathError(directory, 'is writable by other users without the sticky bit, who could replace what lies below it')
    }
    if (directory === dirname(directory)) return
  }
}

/** Creates the directory (and missing parents) owner-only, then checks that it, and every directory above it, is private. */
export function ensurePrivateDirectory(path: string): void {
  try {
    mkdirSync(path, {recursive: true, mode: 0o700})
  } catch (error) {
    if (errnoCode(error) !== 'EEXIST') throw error
  }
  assertPrivate(path, lstatSync(path), 'directory')
  assertSafeAncestors(path)
}

/** Checks a directory that may not exist yet; returns false when it is absent. */
export function checkPrivateDirectoryIfPresent(path: string): boolean {
  let stats: Stats
  try {
    stats = lstatSync(path)
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false
    throw error
  }
  assertPrivate(path, stats, 'directory')
  assertSafeAncestors(path)
  return true
}

function currentUid(): number {
  return process.getuid?.() ?? 0
}
