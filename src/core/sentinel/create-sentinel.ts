import {createHash} from 'node:crypto'
import {closeSync, constants, fstatSync, fsyncSync, lstatSync, openSync, realpathSync, unlinkSync, writeSync} from 'node:fs'
import {dirname} from 'node:path'

import {errnoCode, SentinelError} from '../errors/index.js'
import {fsyncDirectory} from '../files/atomic-write.js'
import type {FileIdentity} from './read-sentinel.js'
import {sentinelContent} from './sentinel-content.js'

// O_EXCL with O_CREAT refuses an existing file and any symlink, dangling or not; O_NOFOLLOW says so twice.
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | constants.O_NOCTTY

export interface CreatedSentinel {
  checksum: string
  identity: FileIdentity
}

/**
 * Plants a new sentinel with random content (under the header of its file type), owner-only. Its directory must already exist and must not be
 * reached through a symbolic link; an existing file or link at the path is never touched.
 */
export function createSentinel(path: string, content: Uint8Array = sentinelContent(path)): CreatedSentinel {
  const parent = dirname(path)
  let parentStats
  try {
    parentStats = lstatSync(parent)
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') throw new SentinelError(path, `its directory ${parent} does not exist; the agent does not create directories`)
    throw new SentinelError(path, `cannot inspect its directory: ${(error as Error).message}`)
  }
  if (!parentStats.isDirectory()) throw new SentinelError(path, `${parent} is not a directory`)
  if (realpathSync(parent) !== parent) throw new SentinelError(path, `${parent} is reached through a symbolic link (it resolves to ${realpathSync(parent)}); name the real path`)

  let fd: number
  try {
    fd = openSync(path, CREATE_FLAGS, 0o600)
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') throw new SentinelError(path, 'already exists (a file or a symbolic link); the agent never overwrites one')
    throw new SentinelError(path, `cannot create it: ${(error as Error).message}`)
  }
  try {
    let written = 0
    while (written < content.length) written += writeSync(fd, content, written, content.length - written)
    fsyncSync(fd)
    const stats = fstatSync(fd)
    closeSync(fd)
    fsyncDirectory(parent)
    return {
      checksum: createHash('sha256').update(content).digest('hex'),
      identity: {dev: stats.dev, ino: stats.ino, mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid, mtimeMs: stats.mtimeMs, size: stats.size},
    }
  } catch (error) {
    closeSync(fd)
    unlinkSync(path)
    throw new SentinelError(path, `cannot write it: ${(error as Error).message}`)
  }
}
