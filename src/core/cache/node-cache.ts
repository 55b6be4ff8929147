import {StoreDataError} from '../errors/index.js'
import {writeFileAtomic} from '../files/atomic-write.js'
import {readPrivateJson} from '../files/private-json.js'
import type {FileIdentity} from '../sentinel/read-sentinel.js'
import type {Topology} from '../topology/topology.js'

/**
 * The last known-good copy of a node's topology and procedures, plus what only this machine can know: each
 * sentinel's identity (dev/ino, mode, owner, mtime) when it was recorded. The hot path reads nothing else.
 */
export interface NodeCache {
  node: string
  store: string
  savedAt: string
  topology: Topology
  baselines: Record<string, FileIdentity>
  /** Files this agent created whose checksum may not have reached the store (it crashed, or the store was down). */
  created: Record<string, string>
}

export function readNodeCache(file: string, node: string): NodeCache | undefined {
  const cache = readPrivateJson<NodeCache>(file)
  if (cache === undefined) return undefined
  if (cache.node !== node || typeof cache.topology !== 'object' || !Array.isArray(cache.topology?.sentinels))
    throw new StoreDataError(file, `the local cache is not a cache for node ${node}; remove it and run comet init`)
  cache.baselines ??= {}
  cache.created ??= {}
  return cache
}

export function writeNodeCache(file: string, cache: NodeCache): void {
  writeFileAtomic(file, JSON.stringify({...cache, savedAt: new Date().toISOString()}) + '\n')
}
