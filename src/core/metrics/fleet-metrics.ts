import {Counter, Gauge, Registry} from 'prom-client'

import {NODE_STATES, type NodeStatus} from '../report/node-status.js'
import {StorePaths, type KvStore} from '../store/store.js'
import {mapLimit} from './map-limit.js'

export interface FleetSnapshot {
  nodes: Array<{node: string; sentinels: number; procedures: string[]; status?: NodeStatus; error?: string}>
  storeUp: boolean
  error?: string
  durationSeconds: number
  /** When the read started (Unix ms). */
  readAt: number
}

/** Reads the topology and status of every node, a bounded number at a time. */
export async function readFleet(store: KvStore, concurrency: number, timeoutMs: number): Promise<FleetSnapshot> {
  const readAt = Date.now()
  const started = process.hrtime.bigint()
  const seconds = () => Number(process.hrtime.bigint() - started) / 1e9
  let names: string[]
  try {
    names = await store.list('comets', {timeoutMs})
  } catch (error) {
    return {nodes: [], storeUp: false, error: (error as Error).message, durationSeconds: seconds(), readAt}
  }
  const nodes = await mapLimit(names, concurrency, async (node) => {
    try {
      const [comets, status] = await Promise.all([store.read(StorePaths.comets(node), {timeoutMs}), store.read<NodeStatus>(StorePaths.status(node), {timeoutMs})])
      // Counted from the keys, not parsed: one node's bad data must not blank the whole fleet.
      const entries = Object.entries(comets?.data ?? {})
      const sentinels = entries.filter(([key]) => /^[^:]+:(create|already_present):/.test(key)).length
      const procedures = [...new Set(entries.filter(([key, value]) => /^[^:]+:fencing_procedure:/.test(key) && typeof value === 'string').map(([, value]) => value as string))]
      return {node, sentinels, procedures, status: status?.data}
    } catch (error) {
      return {node, sentinels: 0, procedures: [], error: (error as Error).message}
    }
  })
  const storeUp = nodes.length === 0 || nodes.some((node) => node.error === undefined)
  return {nodes, storeUp, durationSeconds: seconds(), readAt}
}

/** Set when the metrics come from a snapshot refreshed in the background (comet export --refresh), not from this scrape. */
export interface SnapshotInfo {
  refreshSeconds: number
  readAt: number
}

/**
 * The OORT panel's view of the fleet, computed into a fresh registry: every node has a 0/1 series for every
 * state, so no series vanishes when a node changes state. From a cached snapshot, every HELP text says so.
 */
export function fleetRegistry(snapshot: FleetSnapshot, cached?: SnapshotInfo): Registry {
  const registry = new Registry()
  const note = cached ? ` Cached: read from the store in the background every ${cached.refreshSeconds} s (comet_snapshot_timestamp_seconds), not at this scrape.` : ''
  const registers = [registry]
  const storeUp = new Gauge({name: 'comet_store_up', help: (cached ? '1 when the store answered the last background read, else 0.' : '1 when the store answered the last scrape, else 0.') + note, registers})
  const scrape = new Gauge({name: 'comet_scrape_duration_seconds', help: (cached ? 'Time the last background read of the fleet from the store took.' : 'Time to read the fleet from the store for this scrape.') + note, registers})
  if (cached) new Gauge({name: 'comet_snapshot_timestamp_seconds', help: `When the fleet served here was read from the store (Unix time); refreshed every ${cached.refreshSeconds} s.`, registers}).set(cached.readAt / 1000)
  const nodes = new Gauge({name: 'comet_nodes', help: 'Nodes defined in the store (comets/<node>).' + note, registers})
  const sentinels = new Gauge({name: 'comet_sentinels', help: 'Sentinels defined for the node.' + note, labelNames: ['node'], registers})
  const state = new Gauge({name: 'comet_node_state', help: 'The node\'s state as its agent last reported it: 1 for the current state, 0 for the others.' + note, labelNames: ['node', 'state'], registers})
  const heartbeat = new Gauge({name: 'comet_last_heartbeat_timestamp_seconds', help: 'When the node\'s agent last reported (Unix time).' + note, labelNames: ['node'], registers})
  const lastCheck = new Gauge({name: 'comet_last_check_timestamp_seconds', help: 'When the node\'s agent last verified every sentinel (Unix time).' + note, labelNames: ['node'], registers})
  const lastIncident = new Gauge({name: 'comet_last_incident_timestamp_seconds', help: 'When the node\'s last incident started (Unix time; 0: never).' + note, labelNames: ['node'], registers})
  const intact = new Gauge({name: 'comet_sentinels_intact', help: 'Sentinels found intact at the node\'s last check.' + note, labelNames: ['node'], registers})
  const tampered = new Gauge({name: 'comet_sentinels_tampered', help: 'Sentinels found tampered at the node\'s last check.' + note, labelNames: ['node'], registers})
  const incidents = new Counter({name: 'comet_incidents_total', help: 'Incidents the node has recorded.' + note, labelNames: ['node'], registers})
  const fencing = new Counter({name: 'comet_fencing_started_total', help: 'Fencing procedures the node has started, by procedure.' + note, labelNames: ['node', 'procedure'], registers})
  const readable = new Gauge({name: 'comet_node_readable', help: '1 when the node\'s entries could be read at this scrape, else 0.' + note, labelNames: ['node'], registers})

  storeUp.set(snapshot.storeUp ? 1 : 0)
  scrape.set(snapshot.durationSeconds)
  nodes.set(snapshot.nodes.length)
  for (const entry of snapshot.nodes) {
    const node = entry.node
    readable.set({node}, entry.error === undefined ? 1 : 0)
    sentinels.set({node}, entry.sentinels)
    const status = entry.status
    for (const name of NODE_STATES) state.set({node, state: name}, status?.state === name ? 1 : 0)
    heartbeat.set({node}, seconds(status?.heartbeatAt))
    lastCheck.set({node}, seconds(status?.lastCheckAt))
    lastIncident.set({node}, seconds(status?.lastIncidentAt))
    intact.set({node}, status?.sentinels?.intact ?? 0)
    tampered.set({node}, status?.sentinels?.tampered ?? 0)
    incidents.inc({node}, status?.incidentsTotal ?? 0)
    // Every procedure the node names has a series from the start, so that increase() sees the first fencing.
    const started = {...Object.fromEntries(entry.procedures.map((procedure) => [procedure, 0])), ...status?.fencingStarted}
    for (const [procedure, count] of Object.entries(started)) fencing.inc({node, procedure}, count)
  }
  return registry
}

function seconds(iso: string | undefined): number {
  const time = iso ? Date.parse(iso) : Number.NaN
  return Number.isFinite(time) ? time / 1000 : 0
}
