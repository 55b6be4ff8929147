import {CometError, StoreDataError} from '../errors/index.js'
import {mapLimit} from '../metrics/map-limit.js'
import {StorePaths, type KvStore} from '../store/store.js'
import {parseComets, type ParseOptions} from './comets-document.js'
import {decodeProcedure} from './fencing-document.js'
import {BUILTIN_PROCEDURES, type Topology} from './topology.js'

const READ_CONCURRENCY = 8

export interface TopologyRead {
  topology: Topology
  /** The version of `comets/<node>`, for check-and-set when checksums are recorded. */
  version: number
}

/** Reads `comets/<node>` and every `fencing/<name>` it names. */
export async function readTopology(store: KvStore, node: string, timeoutMs?: number, parse: ParseOptions = {}): Promise<TopologyRead> {
  const key = StorePaths.comets(node)
  const document = await store.read(key, {timeoutMs})
  if (!document)
    throw new CometError(`no sentinels are defined for node ${JSON.stringify(node)} in ${store.description} (${key} is absent): run comet init --manifest FILE, or check --node`, {culprit: key})
  const {sentinels, allowReaders} = parseComets(node, key, document.data, parse)
  const names = [...new Set(sentinels.map((sentinel) => sentinel.procedure))]
  const procedures: Record<string, string> = {}
  // A bounded number at a time: a node may name hundreds of procedures, and the store is shared by the fleet.
  await mapLimit(names, READ_CONCURRENCY, async (name) => {
      const procedureKey = StorePaths.fencing(name)
      const procedure = await store.read(procedureKey, {timeoutMs})
      if (!procedure && name in BUILTIN_PROCEDURES) {
        procedures[name] = BUILTIN_PROCEDURES[name]
        return
      }
      if (!procedure) throw new StoreDataError(procedureKey, `is absent, but ${key} names it as a fencing procedure`)
      procedures[name] = decodeProcedure(procedureKey, procedure.data)
  })
  return {topology: {node, sentinels, procedures, allowReaders}, version: document.version}
}
