import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {IdentityTable} from '../../../src/core/cache/identity-table.js'

const identity = (n: number) => ({dev: 2049, ino: 1000 + n, mode: 0o600, uid: n, gid: n, mtimeMs: 1796363394485.324 + n, size: 512 + n})

describe('IdentityTable', () => {
  it('gives back what was set, grows past its capacity, and forgets what was deleted', () => {
    const table = new IdentityTable(2)
    for (let n = 0; n < 100; n++) table.set(`/srv/${n}`, identity(n))
    assert.equal(table.size, 100)
    assert.deepEqual(table.get('/srv/57'), identity(57))
    assert.equal(table.delete('/srv/57'), true)
    assert.equal(table.delete('/srv/57'), false)
    assert.equal(table.get('/srv/57'), undefined)
    // A freed slot is reused without disturbing the others.
    table.set('/srv/new', identity(999))
    assert.deepEqual(table.get('/srv/new'), identity(999))
    assert.deepEqual(table.get('/srv/58'), identity(58))
    table.set('/srv/58', identity(5))
    assert.deepEqual(table.get('/srv/58'), identity(5))
    assert.equal(table.size, 100)
  })

  it('retain() keeps only the given paths and says whether it dropped any', () => {
    const table = new IdentityTable()
    for (let n = 0; n < 10; n++) table.set(`/srv/${n}`, identity(n))
    assert.equal(table.retain(Array.from({length: 10}, (_, n) => `/srv/${n}`)), false)
    assert.equal(table.retain(['/srv/1', '/srv/2', '/srv/absent']), true)
    assert.deepEqual([...table.entries()], [['/srv/1', identity(1)], ['/srv/2', identity(2)]])
    table.set('/srv/3', identity(3))
    assert.deepEqual(table.get('/srv/1'), identity(1))
    assert.equal(table.size, 3)
  })
})
