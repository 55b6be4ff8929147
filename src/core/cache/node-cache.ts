import {StoreDataError} from '../errors/index.js'
import {writeFileAtomic} from '../files/atomic-write.js'
import {readPrivateJson} from '../files/private-json.js'
import type {Topology} from '../topology/topology.js'
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

/** On disk, an identity is an array, which halves the file at 100 000 sentinels. */
type StoredIdentity = [dev: number, ino: number, mode: number, uid: number, gid: number, mtimeMs: number, size: number]

interface StoredLocalRecord {
  node: string
  topologyDigest?: string
  baselines: Record<string, StoredIdentity>
  created: Record<string, string>
}

export function readTopologyCache(file: string, node: string): TopologyCache | undefined {
  const cache = readPrivateJson<TopologyCache>(file)
  if (cache === undefined) return undefined
  if (cache.node !== node || typeof cache.topology !== 'object' || !Array.isArray(cache.topology?.sentinels))
    throw new StoreDataError(file, `the local cache is not a cache for node ${node}; remove it and run comet init`)
  return cache
}

export function writeTopologyCache(file: string, cache: Omit<TopologyCache, 'savedAt'>): void {
  writeFileAtomic(file, JSON.stringify({...cache, savedAt: new Date().toISOString()}) + '\n')
}

export function readLocalRecord(file: string, node: string): LocalRecord | undefined {
  const stored = readPrivateJson<StoredLocalRecord>(file)
  if (stored === undefined) return undefined
  if (stored.node !== node || typeof stored.baselines !== 'object' || stored.baselines === null)
    throw new StoreDataError(file, `is not the local record of node ${node}; remove it and run comet verify to record the sentinels again`)
  const paths = Object.keys(stored.baselines)
  const baselines = new IdentityTable(paths.length)
  for (const path of paths) {
    const entry = stored.baselines[path]
    if (!Array.isArray(entry) || entry.length !== 7 || entry.some((value) => typeof value !== 'number'))
      throw new StoreDataError(file, `the identity of ${path} is not 7 numbers; remove the file and run comet verify to record the sentinels again`)
    baselines.setValues(path, entry[0], entry[1], entry[2], entry[3], entry[4], entry[5], entry[6])
  }
  return {node, topologyDigest: stored.topologyDigest, baselines, created: stored.created ?? {}}
}

export function writeLocalRecord(file: string, record: LocalRecord): void {
  const baselines: Record<string, StoredIdentity> = {}
  for (const [path, identity] of record.baselines.entries()) baselines[path] = [identity.dev, identity.ino, identity.mode, identity.uid, identity.gid, identity.mtimeMs, identity.size]
  const stored: StoredLocalRecord = {node: record.node, topologyDigest: record.topologyDigest, baselines, created: record.created}
  writeFileAtomic(file, JSON.stringify(stored) + '\n')
}
