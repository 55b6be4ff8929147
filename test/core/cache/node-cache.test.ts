import assert from 'node:assert/strict'
import {appendFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {IdentityTable} from '../../../src/core/cache/identity-table.js'
import {CreatedJournal, readLocalRecord, readTopologyCache, writeLocalRecord, writeTopologyCache, type LocalRecord} from '../../../src/core/cache/node-cache.js'
import {StoreDataError} from '../../../src/core/errors/index.js'
import {topologyDigest} from '../../../src/core/topology/topology-digest.js'
import type {Topology} from '../../../src/core/topology/topology.js'
import {tempDir} from '../../support/temp-dir.js'

describe('the local cache and record', () => {
  it('keeps identities exactly, fractional mtimes and large inodes included, across a write and a read', () => {
    const file = join(tempDir(), 'identities.json')
    const identity = {dev: 66306, ino: 2 ** 40 + 3, mode: 0o600, uid: 0, gid: 0, mtimeMs: 1796363394485.324, size: 512}
    const record: LocalRecord = {node: 'web01', topologyDigest: 'd'.repeat(64), baselines: new IdentityTable(), created: {'/srv/a': 'a'.repeat(64)}}
    record.baselines.set('/srv/a', identity)
    writeLocalRecord(file, record)
    const read = readLocalRecord(file, 'web01')
    assert.deepEqual(read && {...read, baselines: [...read.baselines.entries()]}, {...record, baselines: [['/srv/a', identity]]})
  })

  it('refuses a record of another node, or an identity that is not 7 numbers, naming the file', () => {
    const file = join(tempDir(), 'identities.json')
    writeLocalRecord(file, {node: 'web01', baselines: new IdentityTable(), created: {}})
    assert.throws(() => readLocalRecord(file, 'db02'), (error: unknown) => error instanceof StoreDataError && error.message.includes(file) && /node db02/.test(error.message))
    writeFileSync(file, JSON.stringify({node: 'web01', paths: ['/srv/a'], identities: [1, 2, 3], created: {}}), {mode: 0o600})
    assert.throws(() => readLocalRecord(file, 'web01'), (error: unknown) => error instanceof StoreDataError && error.message.includes('does not hold 7 numbers'))
    writeFileSync(file, JSON.stringify({node: 'web01', paths: ['/srv/a'], identities: [1, 2, 3, 4, 5, 6, 'x'], created: {}}), {mode: 0o600})
    assert.throws(() => readLocalRecord(file, 'web01'), (error: unknown) => error instanceof StoreDataError && error.message.includes('/srv/a is not 7 numbers'))
  })

  it('an absent record or cache reads as undefined; a cache of another node is refused', () => {
    const dir = tempDir()
    assert.equal(readLocalRecord(join(dir, 'none.json'), 'web01'), undefined)
    assert.equal(readTopologyCache(join(dir, 'none.json'), 'web01'), undefined)
    const file = join(dir, 'cache.json')
    const topology: Topology = {node: 'web01', sentinels: [{path: '/srv/a', mode: 'create', checksum: 'a'.repeat(64), procedure: 'p', onRead: 'freeze'}], procedures: {p: 'true'}, allowReaders: []}
    writeTopologyCache(file, {node: 'web01', store: 'file:/x', digest: topologyDigest(topology), topology})
    assert.deepEqual(readTopologyCache(file, 'web01')?.topology, topology)
    assert.throws(() => readTopologyCache(file, 'db02'), StoreDataError)
    // A cache that is not the topology it says it is (an edited procedure) is refused, not fenced with.
    writeTopologyCache(file, {node: 'web01', store: 'file:/x', digest: topologyDigest(topology), topology: {...topology, procedures: {p: 'rm -rf /'}}})
    assert.throws(() => readTopologyCache(file, 'web01'), (error: unknown) => error instanceof StoreDataError && /does not match its own digest/.test(error.message))
  })
})

describe('the journal of created files', () => {
  it('keeps each created file across a crash, ignores a line cut short, and is gone once folded', () => {
    const file = join(tempDir(), 'created.journal')
    const journal = new CreatedJournal(file)
    journal.append('/srv/a b/.~lock#', 'a'.repeat(64))
    journal.append('/srv/c', 'c'.repeat(64))
    journal.close()
    // A crash in the middle of a line.
    appendFileSync(file, `${'d'.repeat(40)}`)
    assert.deepEqual(CreatedJournal.read(file), {'/srv/a b/.~lock#': 'a'.repeat(64), '/srv/c': 'c'.repeat(64)})
    assert.equal(statSync(file).mode & 0o777, 0o600)
    journal.remove()
    assert.deepEqual(CreatedJournal.read(file), {})
  })
})
