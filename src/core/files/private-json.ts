import {closeSync, constants, openSync, readFileSync} from 'node:fs'

import {errnoCode, StoreDataError, UnsafePathError} from '../errors/index.js'
import {assertPrivateFd} from './private-path.js'

/**
 * Reads a JSON file the agent wrote for itself (cache, latch, spool entry) without following a symlink and only
 * if no other user could have written it. Absent files read as undefined.
 */
export function readPrivateJson<T>(file: string): T | undefined {
  let fd: number
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW)
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined
    if (errnoCode(error) === 'ELOOP') throw new UnsafePathError(file, 'is a symbolic link; the agent never follows one')
    throw error
  }
  let text: string
  try {
    assertPrivateFd(file, fd)
    text = readFileSync(fd, 'utf8')
  } finally {
    closeSync(fd)
  }
  try {
    return JSON.parse(text) as T
  } catch (error) {
    throw new StoreDataError(file, `is not valid JSON (${(error as Error).message})`)
  }
}
