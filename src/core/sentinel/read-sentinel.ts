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
  | {kind: 'file'; checksum: string; identity: FileIdentity}
  | {kind: 'missing'}
  | {kind: 'symlink'}
  | {kind: 'not-a-file'}
  | {kind: 'unreadable'; error: string}

// O_NONBLOCK: a FIFO swapped in for a sentinel must not hang the agent on open.
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY
const CHUNK = Buffer.allocUnsafe(256 * 1024)

/** Opens without following a symlink, checks the file type on the open descriptor, and hashes its content. */
export function readSentinel(path: string): SentinelReading {
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
    const hash = createHash('sha256')
    for (;;) {
      const count = readSync(fd, CHUNK, 0, CHUNK.length, null)
      if (count === 0) break
      hash.update(CHUNK.subarray(0, count))
    }
    return {
      kind: 'file',
      checksum: hash.digest('hex'),
      identity: {dev: stats.dev, ino: stats.ino, mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid, mtimeMs: stats.mtimeMs, size: stats.size},
    }
  } catch (error) {
    return {kind: 'unreadable', error: (error as Error).message}
  } finally {
    closeSync(fd)
  }
}
