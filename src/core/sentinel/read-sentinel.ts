import {createHash} from 'node:crypto'
import {closeSync, constants, fstatSync, openSync, readSync} from 'node:fs'

import {errnoCode} from '../errors/index.js'

/** What makes a file this file: replacing it (rename-over, delete and re-create) changes dev/ino. */
export interface FileIdentity {
  dev: number
  ino: number
  mode: number
  uid: number
  gid: number
  mtimeMs: number
  size: number
}

export type SentinelReading =
  /** checksum: '' when the file was not read because its size already differs from the recorded one. */
  | {kind: 'file'; checksum: string; identity: FileIdentity}
  | {kind: 'missing'}
  | {kind: 'symlink'}
  | {kind: 'not-a-file'}
  | {kind: 'unreadable'; error: string}

// O_NONBLOCK: a FIFO swapped in for a sentinel must not hang the agent on open.
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY
const CHUNK = Buffer.allocUnsafe(256 * 1024)

/**
 * Opens without following a symlink, checks the file type on the open descriptor, and hashes its content.
 * `expectedSize`, the size the file had when recorded: a file of another size has changed and is not read at all
 * (its checksum is ''), and one of that size is read no further than a byte past it, so that a sentinel grown to
 * a terabyte costs the agent nothing.
 */
export function readSentinel(path: string, expectedSize?: number): SentinelReading {
  let fd: number
  try {
    fd = openSync(path, READ_FLAGS)
  } catch (error) {
    const code = errnoCode(error)
    if (code === 'ENOENT' || code === 'ENOTDIR') return {kind: 'missing'}
    if (code === 'ELOOP') return {kind: 'symlink'}
    if (code === 'ENXIO') return {kind: 'not-a-file'}
    return {kind: 'unreadable', error: (error as Error).message}
  }
  try {
    const stats = fstatSync(fd)
    if (!stats.isFile()) return {kind: 'not-a-file'}
    const identity = {dev: stats.dev, ino: stats.ino, mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid, mtimeMs: stats.mtimeMs, size: stats.size}
    if (expectedSize !== undefined && stats.size !== expectedSize) return {kind: 'file', checksum: '', identity}
    const limit = expectedSize === undefined ? Number.POSITIVE_INFINITY : expectedSize + 1
    const hash = createHash('sha256')
    for (let total = 0; total < limit; ) {
      const count = readSync(fd, CHUNK, 0, Math.min(CHUNK.length, limit - total), null)
      if (count === 0) break
      hash.update(CHUNK.subarray(0, count))
      total += count
    }
    return {kind: 'file', checksum: hash.digest('hex'), identity}
  } catch (error) {
    return {kind: 'unreadable', error: (error as Error).message}
  } finally {
    closeSync(fd)
  }
}
