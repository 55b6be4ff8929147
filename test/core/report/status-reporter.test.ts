import {mkdirSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import assert from 'node:assert/strict'

import {StoreUnavailableError} from '../../../src/core/errors/index.js'
import type {Incident, NodeStatus, StatusReport} from '../../../src/core/report/node-status.js'
import {ReportSpool} from '../../../src/core/report/report-spool.js'
import {StatusReporter} from '../../../src/core/report/status-reporter.js'
import {EmbeddedStore} from '../../../src/core/store/embedded.js'
import type {KvStore, StoreCallOptions, StoredDocument, WriteOptions} from '../../../src/core/store/store.js'
import {tempDir} from '../../support/temp-dir.js'

const base = tempDir('comet-reporter-')
let counter = 0
const KEY = 'comet-status/web01'

function setup(): {store: EmbeddedStore; spool: ReportSpool} {
  const directory = join(base, `case-${counter++}`)
  mkdirSync(directory, {mode: 0o700})
  return {store: new EmbeddedStore(join(directory, 'store')), spool: new ReportSpool(join(directory, 'spool'))}
}

/** A store that is down while `down` is set (every call fails as an unreachable Vault would), else the embedded store. */
class SwitchableStore implements KvStore {
  readonly description = 'switchable test store'
  down = true
  writes = 0

  constructor(private readonly inner: KvStore) {}

  async read<T = Record<string, unknown>>(path: string, options?: StoreCallOptions): Promise<StoredDocument<T> | null> {
    if (this.down) throw new StoreUnavailableError('the store is down (connection refused)')
    return this.inner.read<T>(path, options)
  }

  async write(path: string, data: Record<string, unknown>, options?: WriteOptions): Promise<number> {
    if (this.down) throw new StoreUnavailableError('the store is down (connection refused)')
    this.writes++
    return this.inner.write(path, data, options)
  }

  async list(folder: string, options?: StoreCallOptions): Promise<string[]> {
    if (this.down) throw new StoreUnavailableError('the store is down (connection refused)')
    return this.inner.list(folder, options)
  }

  async close(): Promise<void> {}
}

const T = (second: number) => `2030-01-01T00:00:${String(second).padStart(2, '0')}.000Z`

function check(second: number, tampered = 0): StatusReport {
  return {type: 'check', at: T(second), counts: {total: 3, intact: 3 - tampered, tampered, unrecorded: 0, unverifiable: 0}, warnings: [], running: 0}
}

function incident(id: string, second: number): StatusReport {
  const inc: Incident = {
    id,
    source: 'watch',
    startedAt: T(second),
    endedAt: T(second),
    sentinels: [{path: '/srv/a', reason: 'deleted', detail: 'the file is gone', procedure: 'isolate', at: T(second)}],
    procedures: [{name: 'isolate', runId: `run-${id}`, startedAt: T(second), exitCode: 0}],
  }
  return {type: 'incident', incident: inc, fencedProcedures: ['isolate'], running: 0}
}

const reset = (second: number): StatusReport => ({type: 'reset', at: T(second)})

describe('StatusReporter with a working store', () => {
  it('delivers every spooled report in one write and empties the spool', async () => {
    const {store, spool} = setup()
    spool.add(check(1))
    spool.add(incident('inc-1', 2))
    spool.add(check(3, 1))
    const reporter = new StatusReporter(store, 'web01', spool, 1000)
    assert.deepEqual(await reporter.flush(), {delivered: 3, pending: 0})
    assert.equal(spool.depth, 0)
    const stored = await store.read<NodeStatus>(KEY)
    assert.equal(stored?.version, 1, 'one write for three reports')
    assert.equal(stored?.data.incidentsTotal, 1)
    assert.equal(stored?.data.heartbeatAt, T(3))
    assert.equal(stored?.data.sentinels.tampered, 1)
    assert.equal(stored?.data.state, 'fenced')
  })

  it('submit spools the report and delivers it', async () => {
    const {store, spool} = setup()
    const reporter = new StatusReporter(store, 'web01', spool, 1000)
    assert.deepEqual(await reporter.submit(check(1)), {delivered: 1, pending: 0})
    assert.equal((await store.read<NodeStatus>(KEY))?.data.heartbeatAt, T(1))
    assert.equal(spool.depth, 0)
  })

  it('adds to the status already in the store', async () => {
    const {store, spool} = setup()
    const reporter = new StatusReporter(store, 'web01', spool, 1000)
    await reporter.submit(incident('inc-1', 1))
    await reporter.submit(incident('inc-2', 2))
    const stored = await store.read<NodeStatus>(KEY)
    assert.equal(stored?.version, 2)
    assert.equal(stored?.data.incidentsTotal, 2)
    assert.deepEqual(
      stored?.data.incidents.map((i) => i.id),
      ['inc-1', 'inc-2'],
    )
  })

  it('has nothing to do with an empty spool, and writes nothing', async () => {
    const {store, spool} = setup()
    const reporter = new StatusReporter(store, 'web01', spool, 1000)
    assert.deepEqual(await reporter.flush(), {delivered: 0, pending: 0})
    assert.equal(await store.read(KEY), null)
  })
})

describe('StatusReporter with a store that is down', () => {
  it('keeps each submitted report in the spool and says how many wait', async () => {
    const {store, spool} = setup()
    const reporter = new StatusReporter(new SwitchableStore(store), 'web01', spool, 1000)
    const first = await reporter.submit(check(1))
    assert.equal(first.delivered, 0)
    assert.equal(first.pending, 1)
    assert.match(first.error ?? '', /store is down/)
    const second = await reporter.submit(incident('inc-1', 2))
    assert.equal(second.pending, 2)
    assert.match(second.error ?? '', /store is down/)
    assert.equal(spool.depth, 2)
    assert.match(reporter.lastError ?? '', /store is down/)
  })

  it('delivers everything, in order, once the store is back', async () => {
    const {store, spool} = setup()
    const flaky = new SwitchableStore(store)
    const reporter = new StatusReporter(flaky, 'web01', spool, 1000)
    await reporter.submit(check(1))
    await reporter.submit(incident('inc-1', 2))
    await reporter.submit(reset(3))
    assert.equal(spool.depth, 3)
    flaky.down = false
    assert.deepEqual(await reporter.flush(), {delivered: 3, pending: 0})
    assert.equal(flaky.writes, 1)
    assert.equal(reporter.lastError, undefined)
    const status = (await store.read<NodeStatus>(KEY))?.data
    // In order: the reset came after the incident, so nothing is fenced any more.
    assert.deepEqual(status?.fencedProcedures, [])
    assert.equal(status?.state, 'ok')
    assert.equal(status?.incidentsTotal, 1)
    assert.equal(status?.heartbeatAt, T(1))
    assert.equal(spool.depth, 0)
  })

  it('delivers reports spooled by an earlier process', async () => {
    const {store, spool} = setup()
    const before = new StatusReporter(new SwitchableStore(store), 'web01', spool, 1000)
    await before.submit(incident('inc-1', 1))
    const after = new StatusReporter(store, 'web01', new ReportSpool(spool.directory), 1000)
    assert.deepEqual(await after.submit(check(2)), {delivered: 2, pending: 0})
    const status = (await store.read<NodeStatus>(KEY))?.data
    assert.equal(status?.incidentsTotal, 1)
    assert.equal(status?.heartbeatAt, T(2))
  })
})
