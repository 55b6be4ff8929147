import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {StoreUnavailableError} from '../../../src/core/errors/index.js'
import {applyReport, emptyStatus} from '../../../src/core/report/apply-report.js'
import {fleetRegistry, readFleet} from '../../../src/core/metrics/fleet-metrics.js'
import {mapLimit} from '../../../src/core/metrics/map-limit.js'
import {EmbeddedStore} from '../../../src/core/store/embedded.js'
import type {KvStore} from '../../../src/core/store/store.js'
import {tempDir} from '../../support/temp-dir.js'

/** A store that is down: every call fails as a real unreachable store does. */
class DownStore implements KvStore {
  readonly description = 'down'
  async read(): Promise<never> {
    throw new StoreUnavailableError('connection refused')
  }
  async write(): Promise<never> {
    throw new StoreUnavailableError('connection refused')
  }
  async list(): Promise<never> {
    throw new StoreUnavailableError('connection refused')
  }
  async close(): Promise<void> {}
}

async function fleetStore(): Promise<EmbeddedStore> {
  const store = new EmbeddedStore(tempDir())
  await store.write('comets/web01', {'web01:create:/a': '', 'web01:fencing_procedure:/a': 'p', 'web01:already_present:/b': '', 'web01:fencing_procedure:/b': 'p'})
  await store.write('comets/db01', {'db01:create:/c': '', 'db01:fencing_procedure:/c': 'p'})
  let status = applyReport(emptyStatus('web01'), {type: 'check', at: '2026-12-03T10:00:00.000Z', counts: {total: 2, intact: 2, tampered: 0, unrecorded: 0, unverifiable: 0}, warnings: [], running: 0})
  status = applyReport(status, {
    type: 'incident',
    running: 0,
    fencedProcedures: ['p'],
    incident: {id: 'i1', source: 'watch', startedAt: '2026-12-03T10:01:00.000Z', endedAt: '2026-12-03T10:01:01.000Z', sentinels: [], procedures: [{name: 'p', runId: 'r1', startedAt: '2026-12-03T10:01:00.000Z', exitCode: 0}]},
  })
  await store.write('comet-status/web01', status as unknown as Record<string, unknown>)
  return store
}

describe('the fleet exporter', () => {
  it('exposes every node, with a 0/1 series for every state, counters and timestamps', async () => {
    const text = await fleetRegistry(await readFleet(await fleetStore(), 4, 1000)).metrics()
    assert.match(text, /^comet_store_up 1$/m)
    assert.match(text, /^comet_nodes 2$/m)
    assert.match(text, /^comet_sentinels\{node="web01"\} 2$/m)
    assert.match(text, /^comet_sentinels\{node="db01"\} 1$/m)
    assert.match(text, /^comet_node_state\{node="web01",state="fenced"\} 1$/m)
    assert.match(text, /^comet_node_state\{node="web01",state="ok"\} 0$/m)
    // A node whose agent never reported still has every state series.
    for (const state of ['ok', 'tampered', 'fencing', 'fenced', 'error']) assert.match(text, new RegExp(`^comet_node_state\\{node="db01",state="${state}"\\} 0$`, 'm'))
    assert.match(text, /^comet_incidents_total\{node="web01"\} 1$/m)
    assert.match(text, /^comet_fencing_started_total\{node="web01",procedure="p"\} 1$/m)
    assert.match(text, /^comet_last_heartbeat_timestamp_seconds\{node="web01"\} 1796292000$/m)
    assert.match(text, /^comet_last_incident_timestamp_seconds\{node="web01"\} 1796292060$/m)
  })

  it('serves comet_store_up 0 when the store is down, not an error', async () => {
    const snapshot = await readFleet(new DownStore(), 4, 1000)
    const text = await fleetRegistry(snapshot).metrics()
    assert.match(text, /^comet_store_up 0$/m)
    assert.match(text, /^comet_nodes 0$/m)
    assert.match(snapshot.error ?? '', /connection refused/)
  })

  it('reads nodes with bounded parallelism, keeping their order', async () => {
    let inFlight = 0
    let peak = 0
    const results = await mapLimit([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 3, async (value) => {
      inFlight++
      peak = Math.max(peak, inFlight)
      await new Promise((resolve) => setTimeout(resolve, 5))
      inFlight--
      return value * 2
    })
    assert.deepEqual(results, [2, 4, 6, 8, 10, 12, 14, 16, 18, 20])
    assert.equal(peak, 3)
  })
})
