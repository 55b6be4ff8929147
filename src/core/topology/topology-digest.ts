import {createHash} from 'node:crypto'

import type {Topology} from './topology.js'

/** A fingerprint to tell whether a topology changed, without building one large string of it (100 000 sentinels). */
export function topologyDigest(topology: Topology): string {
  const hash = createHash('sha256').update(topology.node)
  for (const sentinel of topology.sentinels) hash.update(`\0${sentinel.path}\0${sentinel.mode}\0${sentinel.checksum}\0${sentinel.procedure}`)
  for (const name of Object.keys(topology.procedures).sort()) hash.update(`\u0001${name}\0${topology.procedures[name]}`)
  return hash.digest('hex')
}
