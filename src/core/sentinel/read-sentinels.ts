import {getSystemErrorMap} from 'node:util'

import {loadAddon} from '../native/load-addon.js'
import {readSentinel, type FileIdentity, type SentinelReading} from './read-sentinel.js'

/** The native module's surface (native/checksum/checksum.c). */
interface Addon {
  /** errors: -errno of each unreadable file, as libuv numbers them. */
  readFiles(paths: string[], shallow: boolean, sizes?: Float64Array): NativeReadings
  readFilesAsync(paths: string[], shallow: boolean, sizes: Float64Array | undefined, callback: (error: Error | null, result: NativeReadings | null) => void): void
}
interface NativeReadings {
  kinds: Uint8Array
  /** 0 where the content was not read (another size than expected). */
  hashed: Uint8Array
  digests: Buffer
  stats: Float64Array
  errors: Array<number | undefined>
}

const KINDS = ['file', 'missing', 'symlink', 'not-a-file', 'unreadable'] as const
const STATS_PER_FILE = 7

/**
 * Many sentinels at once, for a full check: the same reading as readSentinel() (no symlink followed, the type
 * checked on the open descriptor, SHA-256 of the content), done by the checksum addon on several threads. Where
 * the addon is not built, one file at a time in JavaScript.
 */
export function readSentinels(paths: string[], expectedSizes?: Array<number | undefined>): SentinelReading[] {
  const state = loadAddon<Addon>('checksum')
  if (!('addon' in state)) return paths.map((path, index) => readSentinel(path, expectedSizes?.[index]))
  return toReadings(paths, state.addon.readFiles(paths, false, sizesArray(expectedSizes)))
}

/** readSentinels() off the JavaScript thread, so that it can do other work meanwhile (parse the store). */
export function readSentinelsAsync(paths: string[], expectedSizes?: Array<number | undefined>): Promise<SentinelReading[]> {
  const state = loadAddon<Addon>('checksum')
  if (!('addon' in state)) return Promise.resolve(paths.map((path, index) => readSentinel(path, expectedSizes?.[index])))
  const addon = state.addon
  return new Promise((resolve, reject) =>
    addon.readFilesAsync(paths, false, sizesArray(expectedSizes), (error, result) => (error || !result ? reject(error ?? new Error('checksum addon: no result')) : resolve(toReadings(paths, result)))),
  )
}

/** The sizes as the addon takes them: -1 for unknown. */
function sizesArray(sizes: Array<number | undefined> | undefined): Float64Array | undefined {
  return sizes && Float64Array.from(sizes, (size) => size ?? -1)
}

function toReadings(paths: string[], {kinds, hashed, digests, stats, errors}: NativeReadings): SentinelReading[] {
  return paths.map((path, index): SentinelReading => {
    const kind = KINDS[kinds[index]]
    if (kind === 'file') return {kind, checksum: hashed[index] ? digests.toString('hex', index * 32, index * 32 + 32) : '', identity: identityAt(stats, index)}
    if (kind === 'unreadable') return {kind, error: errorMessage(errors[index], path)}
    return {kind}
  })
}

export type SentinelStat = {kind: 'file'; identity: FileIdentity} | {kind: 'missing' | 'symlink' | 'not-a-file' | 'unreadable'}

/** lstat of many paths at once (no open, so no fanotify permission event): for the periodic check under fanotify. */
export function statSentinels(paths: string[]): SentinelStat[] | undefined {
  const state = loadAddon<Addon>('checksum')
  if (!('addon' in state)) return undefined
  const {kinds, stats} = state.addon.readFiles(paths, true)
  return paths.map((_, index): SentinelStat => {
    const kind = KINDS[kinds[index]]
    return kind === 'file' ? {kind, identity: identityAt(stats, index)} : {kind}
  })
}

/** The message Node gives for the same failure ("EACCES: permission denied, open '/path'"). */
function errorMessage(errno: number | undefined, path: string): string {
  const [name, text] = (errno !== undefined && getSystemErrorMap().get(errno)) || ['EIO', 'i/o error']
  return `${name}: ${text}, open '${path}'`
}

function identityAt(stats: Float64Array, index: number): FileIdentity {
  const at = index * STATS_PER_FILE
  return {dev: stats[at], ino: stats[at + 1], mode: stats[at + 2], uid: stats[at + 3], gid: stats[at + 4], mtimeMs: stats[at + 5], size: stats[at + 6]}
}
