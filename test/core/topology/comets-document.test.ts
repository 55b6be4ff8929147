import {describe, it} from 'node:test'
import assert from 'node:assert/strict'

import {StoreDataError} from '../../../src/core/errors/index.js'
import {parseCometsDocument, toCometsDocument} from '../../../src/core/topology/comets-document.js'
import type {SentinelSpec} from '../../../src/core/topology/topology.js'

const KEY = 'comets/web01'
const SUM_A = 'a'.repeat(64)
const SUM_B = '0123456789abcdef'.repeat(4)

/** The seed's layout for web01: one created sentinel already recorded, one not yet, and an existing file. */
function seed(): Record<string, unknown> {
  return {
    'web01:create:/srv/share/.~lock.ledger.ods#': SUM_A,
    'web01:fencing_procedure:/srv/share/.~lock.ledger.ods#': 'isolate',
    'web01:create:/srv/share/aaa-invoices.xlsx': '',
    'web01:fencing_procedure:/srv/share/aaa-invoices.xlsx': 'isolate',
    'web01:already_present:/var/lib/app/orders.db': SUM_B,
    'web01:fencing_procedure:/var/lib/app/orders.db': 'stop-db',
  }
}

function assertRefused(data: Record<string, unknown>, key: string, problem?: RegExp): void {
  assert.throws(
    () => parseCometsDocument('web01', KEY, data),
    (error: unknown) => {
      assert.ok(error instanceof StoreDataError, `expected StoreDataError, got ${String(error)}`)
      assert.ok(error.message.includes(KEY), error.message)
      assert.ok(error.message.includes(JSON.stringify(key)), `message ${JSON.stringify(error.message)} should name the key ${key}`)
      if (problem) assert.match(error.message, problem)
      return true
    },
  )
}

describe('parseCometsDocument', () => {
  it('reads the seed layout into sentinels sorted by path', () => {
    assert.deepEqual(parseCometsDocument('web01', KEY, seed()), [
      {path: '/srv/share/.~lock.ledger.ods#', mode: 'create', checksum: SUM_A, procedure: 'isolate', onRead: 'freeze'},
      {path: '/srv/share/aaa-invoices.xlsx', mode: 'create', checksum: '', procedure: 'isolate', onRead: 'freeze'},
      {path: '/var/lib/app/orders.db', mode: 'already_present', checksum: SUM_B, procedure: 'stop-db', onRead: 'freeze'},
    ])
  })

  it('reads an empty document as no sentinels', () => {
    assert.deepEqual(parseCometsDocument('web01', KEY, {}), [])
  })

  it('keeps colons that belong to the path', () => {
    const [sentinel] = parseCometsDocument('web01', KEY, {'web01:create:/srv/a:b.txt': '', 'web01:fencing_procedure:/srv/a:b.txt': 'isolate'})
    assert.equal(sentinel.path, '/srv/a:b.txt')
  })

  it('refuses a key for another node', () => {
    assertRefused({...seed(), 'db02:create:/srv/x': ''}, 'db02:create:/srv/x', /db02/)
  })

  it('refuses a key without colons', () => {
    assertRefused({...seed(), garbage: ''}, 'garbage')
  })

  it('refuses a key with a single colon', () => {
    assertRefused({'web01:/srv/x': ''}, 'web01:/srv/x')
  })

  it('refuses an unknown kind', () => {
    assertRefused({...seed(), 'web01:created:/srv/x': ''}, 'web01:created:/srv/x', /"created"/)
  })

  it('refuses a relative path', () => {
    assertRefused({'web01:create:srv/x': '', 'web01:fencing_procedure:srv/x': 'isolate'}, 'web01:create:srv/x', /absolute/)
  })

  it('refuses a checksum that is not 64 hex digits', () => {
    assertRefused({'web01:create:/srv/x': 'abc123', 'web01:fencing_procedure:/srv/x': 'isolate'}, 'web01:create:/srv/x', /checksum/)
  })

  it('refuses a checksum of 64 characters that are not all hex', () => {
    assertRefused({'web01:create:/srv/x': 'g'.repeat(64), 'web01:fencing_procedure:/srv/x': 'isolate'}, 'web01:create:/srv/x', /checksum/)
  })

  it('refuses a value that is not a string', () => {
    assertRefused({'web01:create:/srv/x': 42, 'web01:fencing_procedure:/srv/x': 'isolate'}, 'web01:create:/srv/x', /string/)
  })

  it('refuses a sentinel without fencing_procedure', () => {
    const data = seed()
    delete data['web01:fencing_procedure:/var/lib/app/orders.db']
    assertRefused(data, 'web01:already_present:/var/lib/app/orders.db', /fencing_procedure/)
  })

  it('refuses a fencing_procedure without sentinel', () => {
    assertRefused({...seed(), 'web01:fencing_procedure:/srv/orphan': 'isolate'}, 'web01:fencing_procedure:/srv/orphan', /not a sentinel/)
  })

  it('refuses a procedure name that is not a store path segment', () => {
    assertRefused({'web01:create:/srv/x': '', 'web01:fencing_procedure:/srv/x': '../isolate'}, 'web01:fencing_procedure:/srv/x')
  })

  it('refuses the same path as both create and already_present', () => {
    const data = {'web01:create:/srv/x': '', 'web01:already_present:/srv/x': '', 'web01:fencing_procedure:/srv/x': 'isolate'}
    assert.throws(() => parseCometsDocument('web01', KEY, data), StoreDataError)
  })
})

describe('toCometsDocument', () => {
  it('writes the seed layout back', () => {
    const sentinels = parseCometsDocument('web01', KEY, seed())
    assert.deepEqual(toCometsDocument('web01', sentinels), seed())
  })

  it('round-trips through parseCometsDocument', () => {
    const sentinels: SentinelSpec[] = [
      {path: '/a/first', mode: 'create', checksum: '', procedure: 'isolate', onRead: 'freeze'},
      {path: '/b/second:with-colon', mode: 'already_present', checksum: SUM_B, procedure: 'stop-db', onRead: 'freeze'},
    ]
    assert.deepEqual(parseCometsDocument('db01', 'comets/db01', toCometsDocument('db01', sentinels)), sentinels)
  })
})
