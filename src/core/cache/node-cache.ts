import {closeSync, constants, openSync, rmSync, writeSync} from 'node:fs'

import {StoreDataError} from '../errors/index.js'
import {writeFileAtomic} from '../files/atomic-write.js'
import {readPrivateJson, readPrivateText} from '../files/private-json.js'
import {assertPrivateFd} from '../files/private-path.js'
import type {Topology} from '../topology/topology.js'
import {topologyDigest} from '../topology/topology-digest.js'
import {IdentityTable} from './identity-table.js'

/**
 * The last known-good copy of a node's topology and procedures (cache.json). It is read only when the store
 * cannot be: at 100 000 sentinels it is tens of megabytes, and the store's own copy is read anyway.
 */
export interface TopologyCache {
  node: string
  store: string
  savedAt: string
  /** topologyDigest() of `topology`. */
  digest: string
  topology: Topology
}

/**
 * What only this machine can know (identities.json), read at every start: each sentinel's identity (dev/ino,
 * mode, owner, mtime, size) when it was recorded, the files this agent created whose checksum may not have
 * reached the store yet, and the digest of the topology in cache.json, so that an unchanged topology is not
 * written again and cache.json need not be read to tell.
 */
export interface LocalRecord {
  node: string
  topologyDigest?: string
  baselines: IdentityTable
  /** Files this agent created whose checksum may not have reached the store (it crashed, or the store was down). */
  created: Record<string, string>
}

/**
 * On disk, two arrays rather than an object keyed by path: the paths, and their identities as 7 numbers each
 * (dev, ino, mode, uid, gid, mtimeMs, size). JSON.parse reads arrays far faster than an object of 100 000 keys.
 */
interface StoredLocalRecord {
  node: string
  topologyDigest?: string
  paths: string[]
  identities: number[]
  created: Record<string, string>
}

export function readTopologyCache(file: string, node: string): TopologyCache | undefined {
  const cache = readPrivateJson<TopologyCache>(file)
  if (cache === undefined) return undefined
  if (cache.node !== node || typeof cache.topology !== 'object' || !Array.isArray(cache.topology?.sentinels))
    throw new StoreDataError(file, `the local cache is not a cache for node ${node}; remove it and run comet init`)
  // Read only when the store is down, and then trusted to fence: it must be the topology it says it is.
  if (cache.digest !== topologyDigest(cache.topology))
    throw new StoreDataError(file, 'the local cache does not match its own digest (damaged or edited); remove it and run comet verify while the store is reachable')
  return cache
}

export function writeTopologyCache(file: string, cache: Omit<TopologyCache, 'savedAt'>): void {
  writeFileAtomic(file, JSON.stringify({...cache, savedAt: new Date().toISOString()}) + '\n')
}

export function readLocalRecord(file: string, node: string): LocalRecord | undefined {
  const stored = readPrivateJson<StoredLocalRecord>(file)
  if (stored === undefined) return undefined
  const again = 'remove it and run comet verify to record the sentinels again'
  if (stored.node !== node) throw new StoreDataError(file, `is not the local record of node ${node}; ${again}`)
  const {paths, identities} = stored
  if (!Array.isArray(paths) || !Array.isArray(identities) || identities.length !== paths.length * 7)
    throw new StoreDataError(file, `does not hold 7 numbers for each of its paths; ${again}`)
  const baselines = new IdentityTable(paths.length)
  for (let index = 0; index < paths.length; index++) {
    const at = index * 7
    for (let field = at; field < at + 7; field++)
      if (typeof identities[field] !== 'number') throw new StoreDataError(file, `the identity of ${String(paths[index])} is not 7 numbers; ${again}`)
    if (typeof paths[index] !== 'string') throw new StoreDataError(file, `entry ${index} is not a path; ${again}`)
    baselines.setValues(paths[index], identities[at], identities[at + 1], identities[at + 2], identities[at + 3], identities[at + 4], identities[at + 5], identities[at + 6])
  }
  return {node, topologyDigest: stored.topologyDigest, baselines, created: stored.created ?? {}}
}

export function writeLocalRecord(file: string, record: LocalRecord): void {
  const paths: string[] = []
  const identities: number[] = []
  for (const [path, identity] of record.baselines.entries()) {
    paths.push(path)
    identities.push(identity.dev, identity.ino, identity.mode, identity.uid, identity.gid, identity.mtimeMs, identity.size)
  }
  const stored: StoredLocalRecord = {node: record.node, topologyDigest: record.topologyDigest, paths, identities, created: record.created}
  writeFileAtomic(file, JSON.stringify(stored) + '\n')
}

/**
 * The files `comet init` creates, one line each (`<sha256> <path>`), appended as each is created: remembered
 * before the store hears of them, so that a crash does not leave a file comet cannot tell it made, and cheap at
 * 100 000 files where rewriting identities.json for each would not be. Folded into identities.json, then removed.
 */
export class CreatedJournal {
  private fd?: number

  constructor(readonly file: string) {}

  /** The entries of a journal left by an init that did not finish. */
  static read(file: string): Record<string, string> {
    const created: Record<string, string> = {}
    for (const line of (readPrivateText(file) ?? '').split('\n')) {
      const space = line.indexOf(' ')
      // A line cut short by a crash has no path, or a checksum of the wrong length: ignored.
      if (space === 64 && /^[0-9a-f]{64}$/.test(line.slice(0, 64))) created[line.slice(65)] = line.slice(0, 64)
    }
    return created
  }

  append(path: string, checksum: string): void {
    if (this.fd === undefined) {
      this.fd = openSync(this.file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600)
      assertPrivateFd(this.file, this.fd)
    }
    writeSync(this.fd, `${checksum} ${path}\n`)
  }

  /** Once identities.json holds every entry. */
  remove(): void {
    this.close()
    rmSync(this.file, {force: true})
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = undefined
  }
}
