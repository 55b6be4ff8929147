import {CasConflictError} from '../errors/index.js'
import {StorePaths} from '../store/store.js'
import {parseCometsDocument, sentinelKey} from '../topology/comets-document.js'
import {readTopology} from '../topology/read-topology.js'
import type {SentinelMode, Topology} from '../topology/topology.js'
import type {AgentSession} from './session.js'

export interface ChecksumUpdate {
  path: string
  mode: SentinelMode
  checksum: string
  /** The value the agent expects to replace (empty for a first record); any other value is someone else's edit, left alone. */
  previous: string
}

/**
 * Writes only the agent's own keys, with check-and-set, re-reading and merging on a conflict so that a
 * concurrent edit by Ansible or an operator survives. Returns the topology as the store now has it.
 */
export async function recordChecksums(session: AgentSession, updates: ChecksumUpdate[]): Promise<Topology> {
  const key = StorePaths.comets(session.node)
  for (let attempt = 1; ; attempt++) {
    const current = await session.store.read(key, {timeoutMs: session.options.readTimeoutMs})
    if (!current) throw new CasConflictError(key)
    const data = {...(current.data as Record<string, string>)}
    for (const update of updates) {
      const field = sentinelKey(session.node, update.mode, update.path)
      if (data[field] === update.previous) data[field] = update.checksum
    }
    parseCometsDocument(session.node, key, data)
    try {
      await session.store.write(key, data, {cas: current.version, timeoutMs: session.options.readTimeoutMs})
      return (await readTopology(session.store, session.node, session.options.readTimeoutMs)).topology
    } catch (error) {
      if (!(error instanceof CasConflictError) || attempt >= 5) throw error
    }
  }
}
