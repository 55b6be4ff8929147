import {CasConflictError} from '../errors/index.js'
import {StorePaths, type KvStore} from '../store/store.js'
import {parseComets, toCometsDocument} from '../topology/comets-document.js'
import {decodeProcedure, encodeProcedure} from '../topology/fencing-document.js'
import type {SentinelSpec} from '../topology/topology.js'
import type {Manifest} from './manifest.js'

export interface ManifestChanges {
  sentinels: SentinelSpec[]
  allowReaders: string[]
  /** Procedures whose fencing/<name> document is new or different. */
  procedures: string[]
  cometsChanged: boolean
}

/** What the manifest would make of `comets/<node>`: its sentinels, keeping the checksums already recorded for the same path and mode. */
export async function planManifest(store: KvStore, node: string, manifest: Manifest, timeoutMs?: number): Promise<ManifestChanges & {version: number}> {
  const key = StorePaths.comets(node)
  const current = await store.read(key, {timeoutMs})
  const {sentinels: known, allowReaders: knownReaders} = current ? parseComets(node, key, current.data) : {sentinels: [], allowReaders: []}
  const recorded = new Map(known.map((sentinel) => [`${sentinel.mode}:${sentinel.path}`, sentinel.checksum]))
  const sentinels: SentinelSpec[] = manifest.sentinels.map((sentinel) => {
    const mode = sentinel.create ? 'create' : 'already_present'
    return {path: sentinel.path, mode, checksum: recorded.get(`${mode}:${sentinel.path}`) ?? '', procedure: sentinel.procedure, onRead: sentinel.onRead}
  })
  const allowReaders = [...manifest.allowReaders].sort()
  const procedures: string[] = []
  // Built-in procedures (freeze, kill) have no fencing/<name> to write.
  for (const [name, command] of Object.entries(manifest.fencing)) {
    const stored = await store.read(StorePaths.fencing(name), {timeoutMs})
    let same = false
    try {
      same = stored !== null && decodeProcedure(StorePaths.fencing(name), stored.data) === command
    } catch {}
    if (!same) procedures.push(name)
  }
  const cometsChanged = !current || JSON.stringify(toCometsDocument(node, sentinels, allowReaders)) !== JSON.stringify(toCometsDocument(node, known, knownReaders))
  return {sentinels, allowReaders, procedures, cometsChanged, version: current?.version ?? 0}
}

/** Procedures first, so that `comets/<node>` never names one that is not there yet. */
export async function applyManifest(store: KvStore, node: string, manifest: Manifest, timeoutMs?: number): Promise<ManifestChanges> {
  for (let attempt = 1; ; attempt++) {
    const plan = await planManifest(store, node, manifest, timeoutMs)
    for (const name of plan.procedures) await store.write(StorePaths.fencing(name), {...encodeProcedure(manifest.fencing[name])}, {timeoutMs})
    if (!plan.cometsChanged) return plan
    try {
      await store.write(StorePaths.comets(node), toCometsDocument(node, plan.sentinels, plan.allowReaders), {cas: plan.version, timeoutMs})
      return plan
    } catch (error) {
      if (!(error instanceof CasConflictError) || attempt >= 3) throw error
    }
  }
}
