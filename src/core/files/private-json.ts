import {closeSync, constants, openSync, readFileSync} from 'node:fs'

import {errnoCode, StoreDataError, UnsafePathError} from '../errors/index.js'
import {assertPrivateFd} from './private-path.js'

/**
 * Reads a JSON file the agent wrote for itself (cache, latch, spool entry) without following a symlink and only
 * if no other user could have written it. Absent files read as undefined.
 */
export function readPrivateJson<T>(file: string): T | undefined {
  const text = readPrivateText(file)
  if (text === undefined) return undefined
  try {
    return JSON.parse(text) as T
  } catch (error) {
    throw new StoreDataError(file, `is not valid JSON (${(error as Error).message})`)
  }
}

/** The text of a file the agent wrote for itself, on the same terms as readPrivateJson; undefined when absent. */
export function readPrivateText(file: string): string | undefined {
  let fd: number
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW)
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined
    if (errnoCode(error) === 'ELOOP') throw new UnsafePathError(file, 'is a symbolic link; the agent never follows one')
    throw error
  }
  try {
    assertPrivateFd(file, fd)
    return readFileSync(fd, 'utf8')
  } finally {
    closeSync(fd)
  }
}
