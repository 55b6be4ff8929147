import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {openFleetSource} from '../../../src/core/metrics/fleet-snapshot.js'
import {EmbeddedStore} from '../../../src/core/store/embedded.js'
import type {StoreCallOptions} from '../../../src/core/store/store.js'
import {tempDir} from '../../support/temp-dir.js'
import {waitFor} from '../../support/fixture.js'

/** The embedded store, slowed a little, counting listings (one per read of the fleet) and the most reads in flight at once. */
class CountingStore extends EmbeddedStore {
  listings = 0
  inFlight = 0
  mostInFlight = 0

  override async list(folder: string, options?: StoreCallOptions): Promise<string[]> {
    this.listings++
    void options
    return super.list(folder)
  }

  override async read<T = Record<string, unknown>>(path: string, options?: StoreCallOptions) {
    this.inFlight++
    this.mostInFlight = Math.max(this.mostInFlight, this.inFlight)
    try {
      await new Promise((resolve) => setTimeout(resolve, 5))
      void options
      return await super.read<T>(path)
    } finally {
      this.inFlight--
    }
  }
}

async function fleet(nodes: number): Promise<CountingStore> {
  const store = new CountingStore(tempDir())
  for (let index = 0; index < nodes; index++) await store.write(`comets/node${index}`, {[`node${index}:create:/a`]: '', [`node${index}:fencing_procedure:/a`]: 'p'})
  return store
}

const nodesIn = (body: string) => Number(/^comet_nodes (\d+)$/m.exec(body)?.[1])

describe('the exporter\'s fleet source', () => {
  it('without --refresh, every scrape reads the store, and a node added in between shows at once', async () => {
    const store = await fleet(3)
    const source = openFleetSource(store, {concurrency: 4, timeoutMs: 1000, refreshSeconds: 0})
    assert.equal(nodesIn((await source.scrape()).body), 3)
    await store.write('comets/late', {'late:create:/a': '', 'late:fencing_procedure:/a': 'p'})
    const body = (await source.scrape()).body
    assert.equal(nodesIn(body), 4)
    assert.equal(store.listings, 2)
    assert.doesNotMatch(body, /Cached|comet_snapshot_timestamp_seconds/)
    source.close()
  })

  it('with --refresh, scrapes answer from the snapshot without reading the store, which the next refresh brings up to date', async () => {
    const store = await fleet(3)
    const source = openFleetSource(store, {concurrency: 2, timeoutMs: 1000, refreshSeconds: 0.3})
    try {
      const first = (await source.scrape()).body
      assert.equal(nodesIn(first), 3)
      await store.write('comets/late', {'late:create:/a': '', 'late:fencing_procedure:/a': 'p'})
      for (let i = 0; i < 5; i++) assert.equal(nodesIn((await source.scrape()).body), 3)
      assert.equal(store.listings, 1, 'the scrapes themselves must not read the store')
      // Every HELP text says the figures are cached, and when they were read.
      assert.match(first, /# HELP comet_sentinels .*Cached: read from the store in the background every 0\.3 s/)
      const readAt = Number(/^comet_snapshot_timestamp_seconds (\S+)$/m.exec(first)?.[1])
      assert.ok(Math.abs(readAt - Date.now() / 1000) < 5, `comet_snapshot_timestamp_seconds ${readAt}`)
      await waitFor('the next refresh', () => store.listings >= 2)
      const deadline = Date.now() + 5000
      while (nodesIn((await source.scrape()).body) !== 4) {
        assert.ok(Date.now() < deadline, 'the refreshed snapshot never showed the new node')
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      // Two documents a node, two nodes at a time: refreshes never overlap.
      assert.ok(store.mostInFlight <= 4, `at most --concurrency nodes are read at once, saw ${store.mostInFlight} reads`)
    } finally {
      source.close()
    }
  })
})
